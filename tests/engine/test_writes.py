"""The `writes:` policy and the reset seam state-changing checks rely on."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bastion.demo import create_app, reset_app
from bastion.engine.writes import WritePolicy
from bastion.model import BastionConfig
from bastion.session import plan_scan


def test_auto_allows_writes_in_process_only() -> None:
    assert WritePolicy.resolve("auto", in_process=True).allows("DELETE", "/api/users/1")
    assert not WritePolicy.resolve("auto", in_process=False).allows("DELETE", "/api/users/1")
    assert not WritePolicy.resolve("none", in_process=True).allows("POST", "/x")
    assert WritePolicy.resolve("all", in_process=False).allows("POST", "/x")


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("PATCH", "/api/users/{user_id}", True),   # another template name for the same segment
    ("PATCH", "/api/users/7", True),
    ("DELETE", "/api/users/7", False),
    ("PUT", "/api/profile", True),            # "*" = any method
    ("POST", "/api/imports/2024/jan", True),  # trailing "*" = any rest of the path
    ("POST", "/api/other", False),
])
def test_explicit_entries(method: str, path: str, allowed: bool) -> None:
    policy = WritePolicy.resolve(["patch /api/users/{id}", "* /api/profile", "POST /api/imports/*"],
                                 in_process=False)
    assert policy.allows(method, path) is allowed


def test_config_writes_and_reset_reach_the_scan_options(tmp_path: Any) -> None:
    cfg = BastionConfig.model_validate({
        "target": {"app": "bastion.demo:create_app(flaws='none')", "reset": "bastion.demo:reset_app"},
        "writes": ["POST /api/profile"],
    })
    plan = plan_scan(config=cfg, crawl=False)
    assert plan.options.writes is not None
    assert plan.options.writes.allows("POST", "/api/profile")
    assert not plan.options.writes.allows("DELETE", "/api/profile")
    assert plan.target.reset_hook is reset_app
    assert asyncio.run(plan.target.reset()) is True


def test_unknown_writes_mode_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="writes"):
        BastionConfig.model_validate({"target": {"app": "m:app"}, "writes": "sometimes"})


def test_demo_reset_restores_seeded_data_and_keeps_sessions() -> None:
    app = create_app(flaws="none")
    db = app.extensions["bastion_demo"].workspace.db
    with db.connect() as conn:
        conn.execute("INSERT INTO sessions (sid, user_id) VALUES ('s1', 2)")
        conn.execute("UPDATE users SET role = 'admin' WHERE username = 'alice'")
        conn.execute("DELETE FROM invoices")
    reset_app(app)
    with db.connect() as conn:
        assert conn.execute("SELECT role FROM users WHERE username = 'alice'").fetchone()[0] == "user"
        assert conn.execute("SELECT count(*) FROM invoices").fetchone()[0] > 0
        assert conn.execute("SELECT user_id FROM sessions WHERE sid = 's1'").fetchone()[0] == 2
