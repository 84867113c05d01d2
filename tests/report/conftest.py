"""Fixtures for the report tests (data in report_samples.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from report_samples import make_result

from bastion.engine.runner import ScanResult


@pytest.fixture
def result() -> ScanResult:
    return make_result()


@pytest.fixture
def result_factory() -> Callable[..., ScanResult]:
    return make_result
