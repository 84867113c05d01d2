"""injection.xxe against small XML-consuming apps: file disclosure, DTD-only, safe parsers."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from flask import Flask, Response, request
from lxml import etree

from bastion.engine.runner import ScanResult
from bastion.surface.model import EntryPoint, Input, Surface
from bastion.testing import scan_app

XXE = "injection.xxe"
INVOICE = "<invoice><customer>acme</customer><amount>3</amount></invoice>"


def _scan(app: Flask, surface: Surface) -> ScanResult:
    result = scan_app(app, surface, checks=[XXE], spec="tests:app")
    return result


HITS: dict[str, int] = {}


def xml_app() -> Flask:
    app = Flask("xml_app")

    @app.before_request
    def count() -> None:
        HITS[request.path] = HITS.get(request.path, 0) + 1
    unsafe = dict(resolve_entities=True, load_dtd=True, no_network=True)

    @app.post("/import")
    def import_any() -> str:
        doc = etree.fromstring(request.get_data(), etree.XMLParser(**unsafe))
        return "Imported: " + " ".join(doc.itertext())

    @app.post("/invoices/upload")
    def invoice() -> str:
        # Only one field is echoed, and the surface knows the document shape from an example.
        doc = etree.fromstring(request.get_data(), etree.XMLParser(**unsafe))
        return f"Invoice for {doc.findtext('customer')}"

    @app.put("/settings")
    def settings() -> str:
        # The standard library expands internal entities but refuses external ones.
        doc = ET.fromstring(request.get_data())
        return "saved " + " ".join(doc.itertext())

    @app.post("/safe/lxml")
    def safe_lxml() -> bytes:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        return etree.tostring(etree.fromstring(request.get_data(), parser))

    @app.post("/safe/reject")
    def safe_reject() -> tuple[str, int]:
        data = request.get_data(as_text=True)
        if "<!DOCTYPE" in data:
            return "DTDs are not allowed", 400
        return "ok " + " ".join(ET.fromstring(data).itertext()), 200

    @app.post("/safe/echo")
    def safe_echo() -> Response:
        # Echoes the raw document: the canaries come back, but never concatenated.
        return Response(request.get_data(), mimetype="text/plain")

    @app.post("/form")
    def form() -> str:
        return "thanks " + request.form.get("name", "")

    return app


def _body(path: str, method: str = "POST", example: str | None = None, consumes: list[str] | None = None,
          ) -> EntryPoint:
    return EntryPoint(method, path, [Input("body", "body", example=example)], consumes=consumes or [])


@pytest.fixture(scope="module")
def result() -> ScanResult:
    return _scan(xml_app(), Surface([
        _body("/import", consumes=["application/xml"]),
        _body("/invoices/upload", example=INVOICE),
        _body("/settings", method="PUT"),
        _body("/safe/lxml", consumes=["text/xml"]), _body("/safe/reject"), _body("/safe/echo"),
        EntryPoint("POST", "/form", [Input("form", "name")]),
        EntryPoint("GET", "/import"),
    ]))


def _by_path(result: ScanResult) -> dict[str, object]:
    return {f.location.path: f for f in result.findings}


def test_xxe_file_disclosure_is_confirmed(result: ScanResult) -> None:
    found = _by_path(result)
    for path in ("/import", "/invoices/upload"):
        f = found[path]
        assert f.check_id == XXE and f.confidence == "confirmed" and f.severity == "high"  # type: ignore[attr-defined]
        assert f.cwe == 611 and "/etc/passwd" in f.title  # type: ignore[attr-defined]
        assert f.location.input.in_ == "body"  # type: ignore[attr-defined]
        assert "root:" in f.evidence[1].content  # type: ignore[attr-defined]
        assert "file:///etc/passwd" in f.reproduction.curl  # type: ignore[attr-defined]


def test_internal_entity_only_is_firm_medium(result: ScanResult) -> None:
    f = _by_path(result)["/settings"]
    assert f.confidence == "firm" and f.severity == "medium" and "DTD" in f.title  # type: ignore[attr-defined]


def test_safe_parsers_and_raw_echo_are_silent(result: ScanResult) -> None:
    assert set(_by_path(result)) == {"/import", "/invoices/upload", "/settings"}


def test_xxe_requests_are_bounded(result: ScanResult) -> None:
    # At most 13 requests per XML entry point; form-only and GET routes are not attacked.
    assert HITS and max(HITS.values()) <= 13
    assert "/form" not in HITS


# --- demo oracle ---------------------------------------------------------------------------------

# The same tuple in every injection-client test module, so the session cache scans the demo once.
CLIENT_CHECKS = ("injection.crlf", "injection.open-redirect", "injection.xss-reflected",
                 "injection.xss-stored", "injection.xxe")


def _located(result: ScanResult, check_id: str) -> set[tuple[str, str, str, str]]:
    return {(f.location.method or "", f.location.path or "", f.location.input.in_, f.location.input.name)
            for f in result.findings if f.check_id == check_id and f.location.input is not None}


def test_demo_xxe_found(scan_demo) -> None:  # type: ignore[no-untyped-def]
    result = scan_demo(flaws="all", checks=CLIENT_CHECKS)
    assert _located(result, XXE) == {("POST", "/api/import", "body", "body")}
    f = next(f for f in result.findings if f.check_id == XXE)
    assert f.confidence == "confirmed" and f.severity == "high"


def test_demo_hardened_twin_has_no_xxe(scan_demo) -> None:  # type: ignore[no-untyped-def]
    result = scan_demo(flaws="none", checks=CLIENT_CHECKS)
    assert not [f for f in result.findings if f.check_id == XXE]
    assert all(not c.errors for c in result.checks)
