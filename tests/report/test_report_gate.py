"""exit_code: the --fail-on gate."""

from __future__ import annotations

import pytest
from report_samples import make_result

from bastion.errors import BastionError
from bastion.findings.model import Severity
from bastion.report import exit_code


@pytest.mark.parametrize(("fail_on", "expected"), [
    ("critical", 1), ("high", 1), ("HIGH", 1), ("info", 1), (None, 0), ("none", 0),
])
def test_fails_when_a_finding_reaches_the_threshold(result, fail_on, expected):
    assert exit_code(result, fail_on) == expected


def test_threshold_is_inclusive_and_ordered(result):
    only_medium = make_result(findings=[f for f in result.findings if f.severity == Severity.medium])
    assert exit_code(only_medium, "medium") == 1
    assert exit_code(only_medium, "high") == 0
    assert exit_code(only_medium, "low") == 1


def test_no_findings_passes_at_every_threshold():
    clean = make_result(findings=[])
    assert all(exit_code(clean, s.value) == 0 for s in Severity)


def test_unknown_threshold_is_a_user_error(result):
    with pytest.raises(BastionError, match="severe.*critical, high, medium, low, info"):
        exit_code(result, "severe")
