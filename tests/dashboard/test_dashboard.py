"""`bastion dashboard`: one self-contained page whose numbers are the history JSON's, inert to hostile text."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import html5lib
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "history"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "report"))

from history_fakes import make_finding, make_result  # noqa: E402
from report_samples import XSS  # noqa: E402
from test_report_html import _load, _pwned  # noqa: E402
from test_report_html import chromium as chromium  # noqa: E402,F401 - the module's browser fixture

from bastion.cli import cli  # noqa: E402
from bastion.dashboard import build_dashboard_data, dashboard_html  # noqa: E402
from bastion.dashboard.data import NO_ASSET, asset_of  # noqa: E402
from bastion.history import open_store, record_run  # noqa: E402

HOSTILE = {**XSS, "svg_close": "</svg><script>document.title='PWNED'</script>",
           "quote": "a\"b'c\" onmouseover=\"document.title='PWNED'"}
ASSETS = {"invoice": "/api/invoices/{id}", "admin": "/admin"}


def _history(db: Path) -> None:
    """Six daily runs: invoices found and fixed, an admin finding that persists, hostile text everywhere."""
    engine = open_store(str(db))
    try:
        for day in range(6):
            found = [make_finding(path=f"/api/invoices/{{id}}/item{j}", severity=("critical", "high", "low")[j % 3])
                     for j in range(day % 3, day % 3 + 3)]
            found.append(make_finding(check_id="authz.bfla", path="/admin/export", severity="high", param=None))
            for n, (name, payload) in enumerate(HOSTILE.items()):
                found.append(make_finding(check_id="injection.xss-reflected", path=f"/x/{name}{payload}",
                                          param=payload, severity="medium", threat_id=payload if n % 2 else None))
            record_run(make_result(found, started_at=f"2026-03-0{day + 1}T09:00:00+00:00", target="app:shop"),
                       engine=engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("dash") / "history.db"
    _history(path)
    return path


@pytest.fixture(scope="module")
def history_json(db: Path) -> dict:
    res = CliRunner().invoke(cli, ["history", "--db", str(db), "--format", "json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


@pytest.fixture(scope="module")
def page(db: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("page") / "dash.html"
    config = tmp_path_factory.mktemp("cfg") / "bastion.yaml"
    config.write_text("target: {url: 'http://127.0.0.1:9'}\nassets:\n"
                      + "".join(f"  {k}: {{path: '{v}'}}\n" for k, v in ASSETS.items()), encoding="utf-8")
    res = CliRunner().invoke(cli, ["dashboard", "--db", str(db), "--out", str(out), "--config", str(config)])
    assert res.exit_code == 0, res.output
    return out


def _metric(doc, name: str) -> list[str]:
    return [(el.text or "").strip() for el in doc.iter() if el.get("data-metric") == name]


def test_data_is_the_history_json(db: Path, history_json: dict) -> None:
    engine = open_store(str(db), create=False)
    try:
        data = build_dashboard_data(engine, assets=ASSETS)
    finally:
        engine.dispose()
    assert data.history == history_json
    last = history_json["open_by_severity"][-1]
    assert data.open_total == last["total"]
    assert sum(r["total"] for r in data.by_asset) == sum(r["total"] for r in data.by_threat) == last["total"]
    assets = {r["asset"]: r["total"] for r in data.by_asset}
    assert assets["invoice"] == 3 and assets["admin"] == 1 and assets[NO_ASSET] == len(HOSTILE)
    assert data.audit is not None and data.audit["window"]["targets"] == ["app:shop"]


@pytest.mark.parametrize("path,asset", [
    ("/api/invoices/{invoice_id}", "invoice"), ("/api/invoices/7", "invoice"), ("/api/invoices/7/lines", "invoice"),
    ("/api/invoicesX", NO_ASSET), ("/api", NO_ASSET), ("/admin", "admin"), ("/admin/users/3", "admin"),
    ("", NO_ASSET),
])
def test_asset_matching(path: str, asset: str) -> None:
    assert asset_of(path, ASSETS) == asset


def test_self_contained_with_csp(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    doc = html5lib.parse(text, namespaceHTMLElements=False)
    csp = doc.find(".//head/meta[@http-equiv='Content-Security-Policy']").get("content")
    assert csp.startswith("default-src 'none'") and "script-src" not in csp and "unsafe" not in csp
    assert doc.find(".//script") is None
    for el in doc.iter():
        for attr in ("src", "href"):
            assert not el.get(attr), f"external reference {el.tag}[{attr}]"
        assert el.get("style") is None  # the CSP would block inline style attributes
    assert "</svg><script>" not in text and "&lt;/svg&gt;&lt;script&gt;" in text


def test_renders_in_chromium_with_the_json_numbers(chromium, page: Path, history_json: dict, tmp_path: Path) -> None:
    doc = _load(chromium, page, tmp_path)
    assert _pwned(doc) == []
    assert doc.find(".//title").text == "Bastion risk dashboard"
    last = history_json["open_by_severity"][-1]
    assert _metric(doc, "runs") == [str(len(history_json["runs"]))]
    assert _metric(doc, "open-total") == [str(last["total"])] == _metric(doc, "last-total")
    for sev in ("critical", "high", "medium", "low", "info"):
        assert _metric(doc, f"open-{sev}") == [str(last[sev])] == _metric(doc, f"last-{sev}")
    ttf = history_json["time_to_fix"]
    shown = [(el.get("data-severity"), [td.text for td in el.iter("td") if td.get("data-metric")])
             for el in doc.iter("tr") if el.get("data-severity")]
    assert shown == [(sev, [str(v["fixed"]), _num(v["mean_days"]), _num(v["median_days"])]) for sev, v in ttf.items()]
    assert _metric(doc, "discovery-mean") == [str(history_json["discovery"]["mean_per_run"])]
    assert _metric(doc, "reopen-rate") == [str(history_json["reopen"]["rate"])]
    polylines = [el for el in doc.iter() if el.tag.endswith("polyline")]
    assert len(polylines) == 6 and all(len(p.get("points").split()) == len(history_json["runs"]) for p in polylines)
    body = "".join(doc.find("body").itertext())
    for payload in HOSTILE.values():
        assert payload in body  # shown as text, not run
    assert not [el for el in doc.iter() if el.tag == "script"]


def _num(value: float | None) -> str:
    return "-" if value is None else str(value)


def test_empty_history_renders(tmp_path: Path) -> None:
    engine = open_store(str(tmp_path / "h.db"))
    try:
        page = dashboard_html(build_dashboard_data(engine))
    finally:
        engine.dispose()
    assert "No runs recorded." in page and 'data-metric="open-total">0<' in page


def test_missing_history_is_exit_2(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["dashboard", "--db", str(tmp_path / "none.db"), "--out", str(tmp_path / "d.html")])
    assert res.exit_code == 2
    assert not (tmp_path / "d.html").exists()
