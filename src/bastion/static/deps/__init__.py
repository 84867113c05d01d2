"""Dependency audit: manifests and installed environments checked against OSV advisories."""

from bastion.static.deps.audit import DepsOptions, DepsReport, audit_dependencies
from bastion.static.deps.manifests import ManifestError, is_manifest
from bastion.static.deps.osv import OsvError

__all__ = ["DepsOptions", "DepsReport", "ManifestError", "OsvError", "audit_dependencies", "is_manifest"]
