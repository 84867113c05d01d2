"""Threat-model coverage: each threat × entry point × role as tested / finding / not tested (and why)."""

from bastion.coverage.compute import compute_coverage, coverage_of
from bastion.coverage.model import FINDING, NOT_TESTED, TESTED, Coverage, CoverageRow, ThreatCoverage
from bastion.coverage.user_tests import UserTests, load_user_tests, merge_user_tests

__all__ = ["FINDING", "NOT_TESTED", "TESTED", "Coverage", "CoverageRow", "ThreatCoverage", "UserTests",
           "compute_coverage", "coverage_of", "load_user_tests", "merge_user_tests"]
