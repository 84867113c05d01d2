"""`dash.html`: the risk dashboard as one self-contained page: inline CSS, inline SVG charts, no script.

Same two defences as the HTML report: jinja2 autoescaping for every value that came from the history
(finding titles, paths, threat ids are attacker-influenced), and a Content-Security-Policy that allows
only the page's own stylesheet by hash and no script at all. Chart geometry is computed here as numbers;
the template only places numbers and escaped text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from jinja2 import Environment, StrictUndefined
from markupsafe import Markup

from bastion import __version__
from bastion.dashboard.data import MAX_LISTED_FINDINGS, SEVERITIES, DashboardData
from bastion.report.html_report import csp_hash

_TEMPLATES = resources.files("bastion.dashboard") / "templates"
CHART_W, CHART_H, PAD = 720.0, 220.0, 36.0
SEVERITY_COLOURS = {"critical": "#7b1fa2", "high": "#c62828", "medium": "#ef6c00", "low": "#1565c0",
                    "info": "#546e7a"}
HEAT_LEVELS = 5


def content_security_policy(style: str) -> str:
    """Nothing from anywhere and no script: only this inline stylesheet (and data: images)."""
    return (f"default-src 'none'; style-src {csp_hash(style)}; img-src data:; base-uri 'none'; "
            "form-action 'none'")


@dataclass(frozen=True)
class _Assets:
    template: Any
    style: str


@cache
def _assets() -> _Assets:
    env = Environment(autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True)
    template = env.from_string((_TEMPLATES / "dashboard.html.j2").read_text(encoding="utf-8"))
    style = (_TEMPLATES / "dashboard.css").read_text(encoding="utf-8")
    if "</style" in style.lower():
        raise RuntimeError("dashboard stylesheet must not contain a closing </style>")
    return _Assets(template, style)


def _num(value: float) -> str:
    return f"{value:.1f}"


def trend_chart(points: list[dict[str, Any]]) -> dict[str, Any]:
    """One polyline per severity (open findings per run, oldest first) plus the total."""
    top = max((p["total"] for p in points), default=0) or 1
    span = max(len(points) - 1, 1)

    def xy(i: int, v: int) -> str:
        x = PAD + (CHART_W - 2 * PAD) * i / span
        y = CHART_H - PAD - (CHART_H - 2 * PAD) * v / top
        return f"{_num(x)},{_num(y)}"

    lines = [{"severity": sev, "colour": SEVERITY_COLOURS[sev],
              "points": " ".join(xy(i, p[sev]) for i, p in enumerate(points))} for sev in SEVERITIES]
    lines.append({"severity": "total", "colour": "#1d2125",
                  "points": " ".join(xy(i, p["total"]) for i, p in enumerate(points))})
    return {"width": CHART_W, "height": CHART_H, "pad": PAD, "max": top, "lines": lines,
            "first": points[0]["started_at"] if points else "", "last": points[-1]["started_at"] if points else "",
            "baseline_y": _num(CHART_H - PAD), "top_y": _num(PAD), "right_x": _num(CHART_W - PAD)}


def mttr_chart(time_to_fix: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Horizontal bars: mean days to fix per severity (no bar where nothing was fixed)."""
    top = max((v["mean_days"] or 0.0 for v in time_to_fix.values()), default=0.0) or 1.0
    rows = []
    for i, sev in enumerate(SEVERITIES):
        v = time_to_fix.get(sev, {"fixed": 0, "mean_days": None, "median_days": None})
        width = (CHART_W - 200) * (v["mean_days"] or 0.0) / top
        rows.append({"severity": sev, "colour": SEVERITY_COLOURS[sev], "y": _num(10 + i * 28),
                     "text_y": _num(26 + i * 28), "width": _num(width), "label_x": _num(130 + width + 6), **v})
    return {"width": CHART_W, "height": 10 + len(SEVERITIES) * 28, "rows": rows}


def severity_bar(row: dict[str, Any], scale: int, width: float = 240.0) -> list[dict[str, Any]]:
    """Stacked segments for one row of severity counts, `scale` = the largest total on the page."""
    x, out = 0.0, []
    for sev in SEVERITIES:
        if row[sev]:
            w = width * row[sev] / max(scale, 1)
            out.append({"x": _num(x), "w": _num(w), "colour": SEVERITY_COLOURS[sev], "n": row[sev],
                        "severity": sev})
            x += w
    return out


def heat_level(units: int, top: int) -> int:
    """0 (nothing ran) .. HEAT_LEVELS, on a log scale of units run."""
    if units <= 0:
        return 0
    return max(1, math.ceil(HEAT_LEVELS * math.log1p(units) / math.log1p(max(top, 1))))


def _heat_view(data: DashboardData) -> dict[str, Any]:
    top = max(data.heat.values(), default=0)
    rows = []
    for threat in data.heat_threats:
        cells = []
        for entry in data.heat_entries:
            units = data.heat.get((threat, entry), 0)
            found = data.heat_findings.get((threat, entry), 0)
            cells.append({"units": units, "findings": found, "level": heat_level(units, top), "entry": entry})
        rows.append({"threat": threat, "cells": cells})
    return {"entries": data.heat_entries, "rows": rows}


def dashboard_html(data: DashboardData, *, title: str = "Bastion risk dashboard",
                   generated_at: str = "") -> str:
    """The dashboard page's text."""
    assets = _assets()
    history = data.history
    scale = max([r["total"] for r in data.by_asset + data.by_threat] or [1])
    last = history["open_by_severity"][-1] if history["open_by_severity"] else None
    return assets.template.render(
        csp=content_security_policy(assets.style), css=Markup(assets.style),  # noqa: S704 - packaged asset
        title=title, version=__version__, generated_at=generated_at, targets=data.targets,
        severities=SEVERITIES, colours=SEVERITY_COLOURS, runs=len(history["runs"]), last=last,
        open_total=data.open_total, open_counts={s: sum(1 for f in data.open_findings if f.severity == s)
                                                 for s in SEVERITIES},
        trend=trend_chart(history["open_by_severity"]), mttr=mttr_chart(history["time_to_fix"]),
        discovery=history["discovery"], reopen=history["reopen"],
        by_asset=[{**r, "bar": severity_bar(r, scale)} for r in data.by_asset],
        by_threat=[{**r, "path": "", "bar": severity_bar(r, scale)} for r in data.by_threat],
        heat=_heat_view(data), audit=data.audit,
        findings=data.open_findings[:MAX_LISTED_FINDINGS],
        findings_more=max(0, data.open_total - MAX_LISTED_FINDINGS),
    )
