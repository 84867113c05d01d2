"""Check families. One module per family; each check registers itself with @check."""

from bastion.checks.registry import REGISTRY, CheckSpec, check, load_checks, select_checks

__all__ = ["REGISTRY", "CheckSpec", "check", "load_checks", "select_checks"]
