"""Threat coverage is computed once per scan result and shared by every report format (console included)."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

import bastion.coverage.compute as compute
from bastion.coverage import Coverage
from bastion.engine.runner import ScanResult
from bastion.report import write_reports
from bastion.report.console import print_summary

CHECKS = ("headers.csp-missing",)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[ScanResult]:
    """Every call of the real coverage computation, in order."""
    calls: list[ScanResult] = []
    real = compute.compute_coverage

    def counting(result: ScanResult) -> Coverage:
        calls.append(result)
        return real(result)

    monkeypatch.setattr(compute, "compute_coverage", counting)
    return calls


def test_all_formats_share_one_coverage(scan_demo: Callable[..., ScanResult], counted: list[ScanResult],
                                        tmp_path: Path) -> None:
    # A fresh result object (the session-cached scan may already have its coverage memoized).
    result = dataclasses.replace(scan_demo(flaws="all", checks=CHECKS))
    assert result.coverage_plan is not None
    paths = {p.name: p for p in write_reports(result, ["json", "sarif", "junit", "html", "md"], tmp_path)}
    print_summary(result, Console(file=io.StringIO(), width=120))
    assert counted == [result]
    doc = json.loads(paths["findings.json"].read_text("utf-8"))
    assert doc["coverage"] == compute.compute_coverage(result).as_dict()  # the shared one is the real one
    assert "## " in paths["report.md"].read_text("utf-8")


def test_a_changed_result_gets_its_coverage_recomputed(scan_demo: Callable[..., ScanResult],
                                                       counted: list[ScanResult]) -> None:
    result = dataclasses.replace(scan_demo(flaws="all", checks=CHECKS))
    first = compute.coverage_of(result)
    assert compute.coverage_of(result) is first and len(counted) == 1
    result.findings = []  # e.g. suppressed by a baseline before the reports are written
    again = compute.coverage_of(result)
    assert len(counted) == 2 and again is not first
    assert again.as_dict() != first.as_dict()
