"""Payload corpora (data files in payloads/data/) and canary tokens."""

from bastion.payloads.canary import CanaryFactory
from bastion.payloads.corpus import Payloads, load_payloads

__all__ = ["CanaryFactory", "Payloads", "load_payloads"]
