"""Backup checks in a scan and `bastion drill backup`: third-party-style services and the demo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from backup_fixtures import age_file, fernet_encrypt, make_live, sqlite_bytes, write_backup
from click.testing import CliRunner
from cryptography.fernet import Fernet

from bastion.cli import cli
from bastion.engine.runner import ScanOptions, ScanResult, run_scan
from bastion.model import BastionConfig, load_config
from bastion.surface.model import Surface
from bastion.target.target import Target
from bastion.testing import findings_of

KEY_ENV = "BASTION_TEST_SHOP_BACKUP_KEY"


def _service() -> Any:
    from flask import Flask

    app = Flask("inventory")

    @app.get("/")
    def index() -> str:
        return "inventory"

    return app


def _model(folder: Path, encrypted: bool) -> Path:
    """A bastion.yaml for a service whose SQLite store is backed up into backups/."""
    backup = {"path": "backups/*", "encrypted": encrypted, **({"key_env": KEY_ENV} if encrypted else {})}
    doc = {"target": {"url": "http://127.0.0.1:9"},
           "data_stores": {"inventory": {"kind": "sqlite", "path": "shop.db", "backup": backup,
                                         "rto": "15m", "rpo": "24h"}}}
    path = folder / "bastion.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def _scan(model: Path) -> ScanResult:
    config = load_config(model)
    target = Target.from_app(_service(), spec="inventory:app")
    return run_scan(target, Surface(), ScanOptions(checks=["backup"], config=config))


@pytest.fixture
def careless(tmp_path: Path) -> Path:
    """Backups are plain copies, the newest two days old, although the policy says encrypted and 24h."""
    live = make_live(tmp_path)
    age_file(live, 3 * 86400)
    write_backup(tmp_path / "backups", "inventory-mon.db", sqlite_bytes(live), age_s=2 * 86400)
    return _model(tmp_path, encrypted=True)


@pytest.fixture
def careful(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Nightly Fernet-encrypted backups with the key in the environment."""
    live = make_live(tmp_path)
    age_file(live, 7200)
    key = Fernet.generate_key()
    monkeypatch.setenv(KEY_ENV, key.decode())
    write_backup(tmp_path / "backups", "inventory.db.fernet", fernet_encrypt(sqlite_bytes(live), key))
    return _model(tmp_path, encrypted=True)


def test_careless_service_fires_stale_and_unencrypted(careless: Path) -> None:
    result = _scan(careless)
    stale, = findings_of(result, "backup.stale")
    plain, = findings_of(result, "backup.unencrypted")
    assert findings_of(result, "backup.restore") == []
    assert stale.location.file == "data_stores.inventory" and "RPO" in stale.title
    assert any("data-loss window (backup age): 48h" in e.content for e in stale.evidence)
    assert plain.severity.value == "high" and plain.cwe == 311


def test_careful_service_is_silent(careful: Path) -> None:
    result = _scan(careful)
    assert [f.check_id for f in result.findings] == []
    assert not [u.skipped for c in result.checks for u in c.unit_records if u.skipped]


def test_key_never_appears_in_findings(careless: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, Fernet.generate_key().decode())
    import os

    text = json.dumps([f.public_dict() for f in _scan(careless).findings])
    assert os.environ[KEY_ENV] not in text


def test_model_without_data_stores_skips() -> None:
    config = BastionConfig.model_validate({"target": {"url": "http://127.0.0.1:9"}})
    result = run_scan(Target.from_url("http://127.0.0.1:9"), Surface(), ScanOptions(checks=["backup"], config=config))
    assert result.findings == []


def test_model_validation_names_the_key() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="path"):
        BastionConfig.model_validate({"target": {"url": "http://127.0.0.1:9"},
                                      "data_stores": {"s": {"kind": "sqlite", "backup": {"path": "b/*"}}}})
    with pytest.raises(ValidationError, match="duration|pattern"):
        BastionConfig.model_validate({"target": {"url": "http://127.0.0.1:9"},
                                      "data_stores": {"s": {"kind": "sqlite", "path": "a.db", "rpo": "a day"}}})


def test_cli_drill_reports_and_exits_1(careless: Path) -> None:
    result = CliRunner().invoke(cli, ["drill", "backup", "--config", str(careless), "--format", "json"])
    assert result.exit_code == 1, result.output
    doc = json.loads(result.output)
    store, = doc["stores"]
    assert sorted(p["threat"] for p in store["problems"]) == ["backup.stale", "backup.unencrypted"]
    assert store["backup_age_s"] > 24 * 3600 and store["rpo_s"] == 86400


def test_cli_drill_passes_and_exits_0(careful: Path) -> None:
    result = CliRunner().invoke(cli, ["drill", "backup", "--config", str(careful)])
    assert result.exit_code == 0, result.output
    assert "recovery time" in result.output and "ok:" in result.output


# --- the demo ---------------------------------------------------------------------------------------

def test_demo_unencrypted_backup_found(scan_demo: Any) -> None:
    result = scan_demo(flaws="unencrypted_backup", checks=["backup"])
    assert [f.check_id for f in result.findings] == ["backup.unencrypted"]


@pytest.mark.parametrize(("flaw", "check_id"), [("stale_backup", "backup.stale"),
                                                ("truncated_backup", "backup.restore")])
def test_demo_backup_flaws_found(scan_demo: Any, flaw: str, check_id: str) -> None:
    result = scan_demo(flaws=flaw, checks=["backup"])
    assert [f.check_id for f in result.findings] == [check_id]


def test_demo_hardened_backup_is_silent_and_restores(scan_demo: Any) -> None:
    result = scan_demo(flaws="none", checks=["backup"])
    assert result.findings == []
    restore = next(c for c in result.checks if c.check_id == "backup.restore")
    assert not [u.skipped for u in restore.unit_records if u.skipped]  # decrypted, restored, compared


def test_cli_drill_demo() -> None:
    assert CliRunner().invoke(cli, ["drill", "backup", "--demo"]).exit_code == 1
    assert CliRunner().invoke(cli, ["drill", "backup", "--demo", "--flaws", "none"]).exit_code == 0
