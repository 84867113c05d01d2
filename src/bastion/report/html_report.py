"""`report.html`: one self-contained, XSS-safe HTML file (inline CSS and JS, strict CSP, no network).

Two independent defences keep hostile evidence inert: jinja2 autoescaping, and a Content-Security-
Policy that only allows the report's own inline script and style by their SHA-256 hashes, so even
an escaping bug could not run injected script or load anything from the network.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from jinja2 import Environment, StrictUndefined
from markupsafe import Markup

from bastion.engine.runner import ScanResult
from bastion.findings.model import Finding
from bastion.identity.matrix import matrix_table
from bastion.report.rules import check_rows, severity_counts

_TEMPLATES = resources.files("bastion.report") / "templates"


def csp_hash(source: str) -> str:
    """The CSP source expression ('sha256-…') allowing exactly this inline script or style."""
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def content_security_policy(script: str, style: str) -> str:
    """Nothing from anywhere, except this inline script and style (and data: images)."""
    return ("default-src 'none'; "
            f"script-src {csp_hash(script)}; style-src {csp_hash(style)}; "
            "img-src data:; base-uri 'none'; form-action 'none'")


@dataclass(frozen=True)
class _Assets:
    template: Any
    script: str
    style: str


@cache
def _assets() -> _Assets:
    env = Environment(autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True)
    template = env.from_string((_TEMPLATES / "report.html.j2").read_text(encoding="utf-8"))
    script = (_TEMPLATES / "report.js").read_text(encoding="utf-8")
    style = (_TEMPLATES / "report.css").read_text(encoding="utf-8")
    # The assets are inserted unescaped (as Markup): they must not be able to end their own element.
    if "</script" in script.lower() or "</style" in style.lower():
        raise RuntimeError("report assets must not contain closing </script> or </style>")
    return _Assets(template, script, style)


def _finding_view(f: Finding) -> dict[str, Any]:
    """Template data for a finding; the template only reads plain values (autoescaped)."""
    data = f.public_dict()
    data["location_label"] = f.location.label()
    return data


def html_report(result: ScanResult) -> str:
    """`report.html` text."""
    assets = _assets()
    counts = [(sev.value, n) for sev, n in severity_counts(result.findings).items()]
    return assets.template.render(
        csp=content_security_policy(assets.script, assets.style),
        css=Markup(assets.style),  # noqa: S704 - packaged asset, not data
        script=Markup(assets.script),  # noqa: S704 - packaged asset, not data
        run=result.run_info(),
        events=result.events,
        counts=counts,
        findings=[_finding_view(f) for f in result.findings],
        checks=check_rows(result),
        matrix=matrix_table(result.authz_matrix) if result.authz_matrix else None,
        coverage=_coverage_view(result),
    )


def _coverage_view(result: ScanResult) -> dict[str, Any] | None:
    """Template data for the threat-coverage section (engine runs only), rows included for each threat."""
    if result.coverage_plan is None:
        return None
    from bastion.coverage import coverage_of
    from bastion.coverage.render import entry_summary

    coverage = coverage_of(result)
    threats = [{"id": t.id, "title": t.title, "status": t.status, "label": t.summary_label(),
                "entries": entry_summary(t), "roles": ", ".join(t.roles()), "checks": ", ".join(t.checks),
                "rows": [{**r.as_dict(), "label": r.label()} for r in t.rows]} for t in coverage.threats]
    return {"summary": coverage.summary_line(), "threats": threats, "warnings": coverage.warnings}
