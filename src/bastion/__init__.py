"""Bastion: threat-model-driven security testing for Python web services."""

__version__ = "0.1.0"

from bastion.api import scan  # noqa: E402

__all__ = ["scan", "__version__"]
