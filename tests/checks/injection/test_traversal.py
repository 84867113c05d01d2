"""injection.path-traversal: fires when a file outside the folder is read, silent with containment."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from flask import Flask, abort, jsonify, request
from werkzeug.security import safe_join

from bastion.engine import ScanOptions, run_scan
from bastion.findings.model import Finding
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.target.target import Target
from bastion.testing import findings_of, reproduction_passes, scan_app

CHECK = "injection.path-traversal"
PASSWD_DOC = "<p>Each line of /etc/passwd looks like <code>root:x:0:0:root:/root:/bin/bash</code>.</p>"

pytestmark = pytest.mark.skipif(not Path("/etc/passwd").is_file(), reason="needs a unix /etc/passwd")


def _files_dir() -> str:
    folder = Path(tempfile.mkdtemp(prefix="bastion-files-")) / "public"
    folder.mkdir()
    (folder / "report.txt").write_text("quarterly report\n")
    return str(folder)


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except (OSError, ValueError):
        abort(404)


def vulnerable_app() -> Flask:
    app = Flask("vulnerable_app")
    base = _files_dir()

    @app.get("/files/<path:name>")
    def files(name: str):  # path segment, plain join
        return _read(os.path.join(base, name))

    @app.get("/download")
    def download():  # query, a filter that strips "../" once
        name = request.args.get("file", "report.txt").replace("../", "")
        return _read(os.path.join(base, name))

    @app.post("/api/preview")
    def preview():  # JSON, absolute paths win in os.path.join
        path = (request.get_json(silent=True) or {}).get("path", "report.txt")
        return jsonify({"content": _read(os.path.join(base, path))})

    return app


def safe_app() -> Flask:
    app = Flask("safe_app")
    base = _files_dir()

    @app.get("/files/<path:name>")
    def files(name: str):
        path = safe_join(base, name)
        if path is None:
            abort(404)
        return _read(path)

    @app.get("/download")
    def download():  # echoes the name, serves only files inside the folder
        name = request.args.get("file", "report.txt")
        target = (Path(base) / name).resolve()
        if not target.is_relative_to(Path(base).resolve()) or not target.is_file():
            return f"<p>file {name} not found</p>", 404
        return target.read_text()

    @app.post("/api/preview")
    def preview():  # documentation page quoting passwd lines whatever the input
        return PASSWD_DOC

    return app


class RawPathApp:
    """An ASGI server that routes on the raw path (like servers that keep %2F encoded)."""

    def __init__(self) -> None:
        self.base = _files_dir()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        raw = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        status, body = 404, b"not found"
        if raw.startswith("/static/") and "%2f" not in raw.lower():
            try:
                with open(os.path.join(self.base, unquote(raw[len("/static/"):])), "rb") as fh:
                    status, body = 200, fh.read()
            except OSError:
                pass
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})


def raw_path_app() -> RawPathApp:
    return RawPathApp()


def _surface() -> Surface:
    return Surface([
        EntryPoint("GET", "/files/{name}", [Input("path", "name", example="report.txt")]),
        EntryPoint("GET", "/download", [Input("query", "file", example="report.txt")]),
        EntryPoint("POST", "/api/preview", [Input("json", "path", example="report.txt")],
                   consumes=["application/json"]),
    ])


def _scan(app: Any, name: str, surface: Surface) -> list[Finding]:
    result = scan_app(app, surface, checks=[CHECK], spec=f"{__name__}:{name}()")
    return [f for f in result.findings if f.check_id == CHECK]


@pytest.fixture(scope="module")
def findings() -> dict[str, Finding]:
    return {f.location.input.name: f for f in _scan(vulnerable_app(), "vulnerable_app", _surface())
            if f.location.input}


def test_path_segment(findings: dict[str, Finding]) -> None:
    f = findings["name"]
    assert f.confidence == "confirmed" and f.cwe == 22 and f.severity == "high"
    assert f.location.path == "/files/{name}" and f.location.input and f.location.input.in_ == "path"
    assert "/etc/passwd" in f.title


def test_filter_evasion_in_query(findings: dict[str, Finding]) -> None:
    assert findings["file"].confidence == "confirmed"


def test_absolute_path_in_json(findings: dict[str, Finding]) -> None:
    assert findings["path"].confidence == "confirmed"


def test_raw_path_variant_for_servers_that_keep_slashes_encoded() -> None:
    surface = Surface([EntryPoint("GET", "/static/{name}", [Input("path", "name", example="report.txt")])])
    found = _scan(raw_path_app(), "raw_path_app", surface)
    assert len(found) == 1 and found[0].confidence == "confirmed"
    assert "%2e%2e/" in (found[0].location.url or "")


def test_reproduction_fails_while_flawed_and_passes_once_fixed(findings: dict[str, Finding]) -> None:
    for name in ("name", "file"):
        source = findings[name].reproduction.pytest
        assert not reproduction_passes(source)
        assert reproduction_passes(source, replace=("vulnerable_app()", "safe_app()"))


def test_contained_paths_echoes_and_docs_scan_clean() -> None:
    assert _scan(safe_app(), "safe_app", _surface()) == []


def test_fires_on_demo_flaw(scan_demo) -> None:
    result = scan_demo(flaws="path_traversal", checks=[CHECK])
    hits = findings_of(result, CHECK)
    assert [(f.location.path, f.location.input.in_, f.confidence) for f in hits if f.location.input] == [
        ("/files/{name}", "path", "confirmed")]


def test_silent_on_hardened_demo(scan_demo) -> None:
    result = scan_demo(flaws="none", checks=[CHECK])
    assert all(not c.errors for c in result.checks), [c.errors for c in result.checks]
    assert [f.title for f in result.findings if f.check_id == CHECK] == []


def test_request_budget_per_input() -> None:
    result = run_scan(Target.from_app(safe_app(), spec=f"{__name__}:safe_app()"), _surface(),
                      ScanOptions(checks=[CHECK]))
    assert result.checks[0].requests <= 10 * len(result.checks[0].units)


def test_silent_on_hardened_fastapi_demo(scan_demo) -> None:
    result = scan_demo(flaws="none", checks=[CHECK], framework="fastapi")
    assert all(not c.errors for c in result.checks)
    assert [f.title for f in result.findings if f.check_id == CHECK] == []
