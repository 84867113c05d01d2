"""Template rule: `|safe` filters and `autoescape false` blocks in Jinja/Django templates."""

from __future__ import annotations

import re

from bastion.findings.model import Confidence, Finding
from bastion.static.rules import static_finding, static_rule

R_UNESCAPED = static_rule("static.template-unescaped", "static.template-unescaped")
TEMPLATE_SUFFIXES = (".html", ".htm", ".jinja", ".jinja2", ".j2", ".tmpl")
_SAFE = re.compile(r"\{\{[^}]*\|\s*safe\b[^}]*\}\}|\{%-?\s*autoescape\s+(false|off)\b")


def scan_template(text: str, file: str) -> list[Finding]:
    """One finding per line that bypasses autoescaping; tentative (the value's origin is unknown)."""
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if _SAFE.search(line):
            out.append(static_finding(R_UNESCAPED, file=file, line=number, code_line=line,
                                      confidence=Confidence.tentative, meta={"rule": R_UNESCAPED.id}))
    return out
