"""Dependency audit: manifest readers, CVSS, OSV matching, offline directory, a fake OSV server, CLI."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from packaging.version import Version
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from bastion.static.cli import static
from bastion.static.deps import DepsOptions, ManifestError, OsvError
from bastion.static.deps.cvss import CvssError, base_score
from bastion.static.deps.manifests import read_installed, read_lock, read_pyproject, read_requirements
from bastion.static.deps.osv import OfflineOsv, OsvClient, in_range, match_advisory
from bastion.static.runner import run_static

OSV_DIR = Path(__file__).parent / "data" / "osv"
INFRA = Path(str(resources.files("bastion.demo") / "infra"))
DEMO = Path(str(resources.files("bastion.demo")))


def _advisories() -> dict[str, dict[str, Any]]:
    out = {}
    for path in OSV_DIR.rglob("*.json"):
        try:
            doc = json.loads(path.read_text())
        except ValueError:
            continue
        out[doc["id"]] = doc
    return out


# ---------------------------------------------------------------- manifests


def test_requirements_includes_markers_hashes_and_unpinned(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("Django==4.2.1  # LTS\n-r requirements.txt\n")  # a cycle: read once
    (tmp_path / "requirements.txt").write_text(
        "-r base.txt\n--index-url https://pypi.org/simple\nrequests==2.19.1 \\\n"
        "    --hash=sha256:63b52e3c866428a224f97cab011de738c36aec0185aa91cfacd418b5d58911d1\n"
        "flask>=2.0\nold-thing==1.0 ; python_version < '3.0'\ngit-dep @ git+https://example.com/x.git\n"
        "-e .\nnumpy===1.26.0\nwild==1.*\n")
    pins = {p.name: p for p in read_requirements(tmp_path / "requirements.txt", "requirements.txt")}
    assert pins["django"].version == "4.2.1" and pins["django"].file == "base.txt"
    assert pins["requests"].version == "2.19.1" and pins["requests"].line == 3
    assert pins["flask"].version is None and pins["git-dep"].version is None and pins["wild"].version is None
    assert pins["numpy"].version == "1.26.0"
    assert "old-thing" not in pins  # marker false for this interpreter


@pytest.mark.parametrize("text, message", [
    ("-r missing.txt\n", "file not found"),
    ("-r https://evil.example/req.txt\n", "URL"),
    ("--frobnicate\n", "unknown pip option"),
    ("flask==(\n", "not a valid requirement"),
])
def test_requirements_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "requirements.txt").write_text(text)
    with pytest.raises(ManifestError, match=message) as err:
        read_requirements(tmp_path / "requirements.txt", "requirements.txt")
    assert "requirements.txt:1" in str(err.value)


def test_requirements_include_depth_is_bounded(tmp_path: Path) -> None:
    for i in range(10):
        (tmp_path / f"r{i}.txt").write_text(f"-r r{i + 1}.txt\n")
    (tmp_path / "r10.txt").write_text("flask==3.0.0\n")
    with pytest.raises(ManifestError, match="deeper than"):
        read_requirements(tmp_path / "r0.txt", "r0.txt")


def test_pyproject_pep621_optional_groups_and_poetry(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "app"\ndependencies = ["httpx==0.27.0", "rich>=13"]\n'
        '[project.optional-dependencies]\ndev = ["pytest==8.0.0", "app[extra]"]\n'
        '[dependency-groups]\nlint = ["ruff==0.4.0"]\n'
        '[tool.poetry.dependencies]\npython = "^3.11"\nrequests = "2.31.0"\nclick = "^8.1"\n'
        'pydantic = { version = "==2.6.0", extras = ["email"] }\n')
    pins = {p.name: p.version for p in read_pyproject(tmp_path / "pyproject.toml", "pyproject.toml")}
    assert pins == {"httpx": "0.27.0", "rich": None, "pytest": "8.0.0", "ruff": "0.4.0", "requests": "2.31.0",
                    "click": None, "pydantic": "2.6.0"}


def test_lock_files(tmp_path: Path) -> None:
    (tmp_path / "uv.lock").write_text(
        'version = 1\n[[package]]\nname = "app"\nversion = "0.1.0"\nsource = { editable = "." }\n'
        '[[package]]\nname = "PyYAML"\nversion = "5.3.1"\nsource = { registry = "https://pypi.org/simple" }\n')
    (tmp_path / "poetry.lock").write_text('[[package]]\nname = "jinja2"\nversion = "2.11.2"\n')
    uv = read_lock(tmp_path / "uv.lock", "uv.lock", "uv.lock")
    assert [(p.name, p.version, p.line) for p in uv] == [("pyyaml", "5.3.1", 7)]
    assert [(p.name, p.version) for p in read_lock(tmp_path / "poetry.lock", "poetry.lock", "poetry.lock")] == [
        ("jinja2", "2.11.2")]


@pytest.mark.parametrize("content", ['[[package]\nname = "x"', "package = 3\n", '[[package]]\nversion = "1"\n',
                                     "x = " + "[" * 5000])
def test_malformed_lock_files_are_clear_errors(tmp_path: Path, content: str) -> None:
    (tmp_path / "uv.lock").write_text(content)
    with pytest.raises(ManifestError, match="uv.lock"):
        read_lock(tmp_path / "uv.lock", "uv.lock", "uv.lock")


def test_installed_environment_and_bad_site_packages(tmp_path: Path) -> None:
    installed = {p.name: p.version for p in read_installed(None)}
    assert installed.get("bandit") and installed.get("packaging")
    with pytest.raises(ManifestError, match="not a directory"):
        read_installed(str(tmp_path / "nope"))


# ---------------------------------------------------------------- CVSS and matching


@pytest.mark.parametrize("vector, score", [
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8), ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
    ("CVSS:3.0/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H", 9.9), ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
    ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6), ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
])
def test_cvss_base_scores_match_the_specification(vector: str, score: float) -> None:
    assert base_score(vector) == score


@pytest.mark.parametrize("vector", ["CVSS:2.0/AV:N", "CVSS:3.1/AV:N/AC:L", "garbage",
                                    "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"])
def test_cvss_rejects_malformed_vectors(vector: str) -> None:
    with pytest.raises(CvssError):
        base_score(vector)


def test_range_evaluation() -> None:
    events = [{"introduced": "0"}, {"fixed": "1.2"}, {"introduced": "2.0"}, {"last_affected": "2.3"}]
    assert [in_range(Version(v), events) for v in ("0.1", "1.2", "1.9", "2.0", "2.3", "2.3.1")] == [
        True, False, False, True, True, False]
    assert not in_range(Version("1.0"), [{"introduced": "not a version"}])


def test_matching_uses_names_ecosystems_versions_and_withdrawn() -> None:
    adv = _advisories()
    assert match_advisory(adv["GHSA-8q59-q68h-6hv4"], "pyyaml", "5.3.1").fixed == ("5.4",)
    assert match_advisory(adv["GHSA-8q59-q68h-6hv4"], "pyyaml", "5.4") is None
    assert match_advisory(adv["PYSEC-2099-1"], "example-pkg", "1.0.0") is not None  # version list, PEP 503 name
    assert match_advisory(adv["PYSEC-2099-1"], "example-pkg", "2.3") is not None
    assert match_advisory(adv["PYSEC-2099-1"], "example-pkg", "1.5") is None
    assert match_advisory(adv["GHSA-npm0-only-test"], "pyyaml", "1.0") is None
    assert match_advisory(adv["PYSEC-2099-2"], "pyyaml", "1.0") is None


# ---------------------------------------------------------------- offline mode on the demo twins


def _deps(findings: list[Any]) -> dict[str, Any]:
    return {f.evidence[0].meta.get("advisory", f.check_id): f for f in findings if f.check_id.startswith("deps.")}


def test_offline_audit_fires_on_the_vulnerable_demo_requirements() -> None:
    opts = DepsOptions(offline_dir=str(OSV_DIR))
    result = run_static([INFRA / "vulnerable", DEMO / "fastapi_app.py"], bandit=False, secrets=False, deps=opts)
    found = _deps(result.findings)
    yaml_f, jinja_f = found["GHSA-8q59-q68h-6hv4"], found["GHSA-g3rq-g295-4j3m"]
    assert yaml_f.evidence[0].meta["fixed"] == "5.4" and "CVE-2020-14343" in yaml_f.evidence[0].meta["aliases"]
    assert yaml_f.evidence[0].meta["cvss_score"] == "9.8" and yaml_f.location.line == 5
    # PyYAML is not imported by the scanned app: one step below its CVSS rating, tentative.
    assert yaml_f.evidence[0].meta["imported"] == "false" and yaml_f.severity == "high"
    assert yaml_f.confidence == "tentative"
    # jinja2 is imported by the FastAPI app: CVSS 5.3 keeps medium, firm.
    assert jinja_f.evidence[0].meta["imported"] == "true" and jinja_f.severity == "medium"
    assert jinja_f.confidence == "firm"
    assert found["deps.unpinned-dependency"].severity == "info"  # flask>=3.0: version unknown, not guessed
    assert any("broken.json" in s.path for s in result.skipped)


def test_offline_audit_is_silent_on_the_hardened_demo_requirements() -> None:
    result = run_static([INFRA / "hardened"], bandit=False, secrets=False, deps=DepsOptions(offline_dir=str(OSV_DIR)))
    assert not [f for f in result.findings if f.check_id.startswith("deps.")]


def test_fingerprints_are_per_package_and_advisory(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("pyyaml==5.3.1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "requirements-dev.txt").write_text("PyYAML==5.1\n")
    result = run_static([tmp_path], bandit=False, secrets=False, deps=DepsOptions(offline_dir=str(OSV_DIR)))
    (finding,) = [f for f in result.findings if f.check_id == "deps.vulnerable-dependency"]
    assert finding.evidence[0].meta["versions"] == "5.1,5.3.1" and len(finding.evidence) == 3
    again = run_static([tmp_path], bandit=False, secrets=False, deps=DepsOptions(offline_dir=str(OSV_DIR)))
    assert [f.fingerprint for f in again.findings] == [f.fingerprint for f in result.findings]


def test_bad_offline_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(OsvError, match="directory"):
        OfflineOsv(tmp_path / "missing")


def test_malformed_manifest_in_the_tree_is_skipped_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "poetry.lock").write_text("[[package]\n")
    (tmp_path / "requirements.txt").write_text("pyyaml==5.3.1\n")
    result = run_static([tmp_path], bandit=False, secrets=False, deps=DepsOptions(offline_dir=str(OSV_DIR)))
    assert any("poetry.lock" in s.path and "invalid TOML" in s.reason for s in result.skipped)
    assert "GHSA-8q59-q68h-6hv4" in _deps(result.findings)


# ---------------------------------------------------------------- a fake OSV server on 127.0.0.1


class FakeOsv:
    """OSV's two endpoints over the test advisories; `mode` makes it lie in one specific way."""

    def __init__(self) -> None:
        self.mode = "honest"
        self.requests: list[str] = []
        self.release = threading.Event()
        self.advisories = _advisories()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        self.requests.append(f"{request.method} {request.path}")
        return self.respond(request)(environ, start_response)

    def respond(self, request: Request) -> Response:
        if self.mode == "slow":
            self.release.wait(10)
            return Response("{}", mimetype="application/json")
        if self.mode == "not-json":
            return Response("<html>rate limited</html>", mimetype="text/html")
        if self.mode == "huge":
            return Response(b"[" + b"0," * (9 * 1024 * 1024) + b"0]", mimetype="application/json")
        if self.mode == "error":
            return Response("nope", status=503)
        if request.path == "/v1/querybatch":
            queries = json.loads(request.get_data())["queries"]
            results = [{"vulns": [{"id": i, "modified": "x"} for i in self._ids(q)]} for q in queries]
            if self.mode == "short":
                results = results[:-1]
            if self.mode == "bad-id":
                results = [{"vulns": [{"id": "../../../etc/passwd"}]} for _ in queries]
            return Response(json.dumps({"results": results}), mimetype="application/json")
        vid = request.path.rsplit("/", 1)[-1]
        doc = self.advisories.get(vid)
        if doc is None:
            return Response("{}", status=404)
        if self.mode == "wrong-advisory":
            doc = self.advisories["PYSEC-2099-1"]
        return Response(json.dumps(doc), mimetype="application/json")

    def _ids(self, query: dict[str, Any]) -> list[str]:
        name, version = query["package"]["name"], query["version"]
        if self.mode == "lying":  # claims every advisory of the package affects every version
            return [i for i, a in self.advisories.items()
                    if any(str(x.get("package", {}).get("name", "")).lower() == name for x in a.get("affected", []))]
        return [i for i, a in self.advisories.items() if match_advisory(a, name, version)]


@pytest.fixture
def fake_osv() -> Iterator[tuple[FakeOsv, str]]:
    app = FakeOsv()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{server.server_port}"
    finally:
        app.release.set()
        server.shutdown()
        thread.join(timeout=10)


def test_online_audit_with_cache(fake_osv: tuple[FakeOsv, str], tmp_path: Path) -> None:
    app, url = fake_osv
    client = OsvClient(url, cache_dir=tmp_path / "cache")
    keys = [("pyyaml", "5.3.1"), ("jinja2", "2.11.2"), ("jinja2", "3.1.6")]
    found = client.advisories(keys)
    assert [m.advisory["id"] for m in found[("pyyaml", "5.3.1")]] == ["GHSA-8q59-q68h-6hv4"]
    assert found[("jinja2", "3.1.6")] == []
    assert app.requests.count("POST /v1/querybatch") == 1 and "GET /v1/vulns/GHSA-8q59-q68h-6hv4" in app.requests
    app.requests.clear()
    assert OsvClient(url, cache_dir=tmp_path / "cache").advisories(keys) == found
    assert app.requests == []  # everything came from the cache
    expired = OsvClient(url, cache_dir=tmp_path / "cache", ttl_s=0).advisories(keys)
    assert expired == found and app.requests


def test_a_lying_server_is_not_believed(fake_osv: tuple[FakeOsv, str], tmp_path: Path) -> None:
    app, url = fake_osv
    app.mode = "lying"
    found = OsvClient(url, cache_dir=None).advisories([("pyyaml", "6.0.2")])
    assert found[("pyyaml", "6.0.2")] == []  # ranges say 6.0.2 is fixed, whatever the server claims


@pytest.mark.parametrize("mode, message", [
    ("not-json", "invalid JSON"), ("huge", "larger than"), ("error", "HTTP 503"), ("short", "querybatch result"),
    ("bad-id", "not a valid OSV id"), ("wrong-advisory", "not 'GHSA"), ("slow", "no answer within"),
])
def test_hostile_osv_answers_are_clear_errors(fake_osv: tuple[FakeOsv, str], monkeypatch: pytest.MonkeyPatch,
                                             mode: str, message: str) -> None:
    app, url = fake_osv
    app.mode = mode
    monkeypatch.setattr("bastion.static.deps.osv.MAX_RESPONSE_BYTES", 8 * 1024 * 1024)
    with pytest.raises(OsvError, match=message) as err:
        OsvClient(url, cache_dir=None, timeout_s=0.5).advisories([("pyyaml", "5.3.1")])
    assert url in str(err.value)


def test_cli_online_and_offline(fake_osv: tuple[FakeOsv, str], tmp_path: Path) -> None:
    app, url = fake_osv
    vulnerable = str(INFRA / "vulnerable" / "requirements.txt")
    offline = CliRunner().invoke(static, [vulnerable, "--osv-offline", str(OSV_DIR), "--format", "json",
                                          "--out", str(tmp_path / "a"), "--fail-on", "high"])
    assert offline.exit_code == 1, offline.output
    online = CliRunner().invoke(static, [vulnerable, "--osv-url", url, "--osv-cache", str(tmp_path / "c"),
                                         "--format", "json", "--out", str(tmp_path / "b"), "--fail-on", "high"])
    assert online.exit_code == 1, online.output
    fps = [{f["fingerprint"] for f in json.loads((tmp_path / d / "findings.json").read_text())["findings"]}
           for d in ("a", "b")]
    assert fps[0] == fps[1] and len(fps[0]) == 3
    hardened = CliRunner().invoke(static, [str(INFRA / "hardened" / "requirements.txt"), "--osv-url", url,
                                           "--osv-cache", str(tmp_path / "c"), "--fail-on", "low"])
    assert hardened.exit_code == 0, hardened.output
    app.mode = "not-json"
    broken = CliRunner().invoke(static, [vulnerable, "--osv-url", url, "--osv-cache", "", "--out",
                                         str(tmp_path / "d"), "--format", "json"])
    assert broken.exit_code == 2 and url in broken.output and not (tmp_path / "d").exists()
    bad_site = CliRunner().invoke(static, [vulnerable, "--site-packages", str(tmp_path / "none"),
                                           "--osv-offline", str(OSV_DIR)])
    assert bad_site.exit_code == 2 and "not a directory" in bad_site.output
