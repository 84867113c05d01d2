"""Findings: the model, fingerprints, dedup, redaction and reproduction."""

from bastion.findings.model import (
    Confidence,
    Evidence,
    Finding,
    InputRef,
    Location,
    Proof,
    ProofCondition,
    Reproduction,
    Severity,
)

__all__ = ["Confidence", "Evidence", "Finding", "InputRef", "Location", "Proof", "ProofCondition",
           "Reproduction", "Severity"]
