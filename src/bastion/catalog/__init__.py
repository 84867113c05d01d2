"""Threat catalog: threats as data (one YAML file per family under catalog/threats/)."""

from bastion.catalog.loader import Threat, get_threat, load_catalog

__all__ = ["Threat", "get_threat", "load_catalog"]
