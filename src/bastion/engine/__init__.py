"""Plans checks × entry points into probes and runs them."""

from bastion.engine.context import CheckContext, CheckStats
from bastion.engine.runner import ScanOptions, ScanResult, run_scan, run_scan_async

__all__ = ["CheckContext", "CheckStats", "ScanOptions", "ScanResult", "run_scan", "run_scan_async"]
