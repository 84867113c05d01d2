"""The threat model: bastion.yaml schema, loading with limits, and `bastion init` generation."""

from bastion.model.loader import load_config, load_config_text
from bastion.model.schema import (
    AcceptedRisk,
    AccessRule,
    AssetConfig,
    BastionConfig,
    BudgetsConfig,
    ChecksConfig,
    LoginConfig,
    MfaConfig,
    RoleConfig,
    ScopeConfig,
    TargetConfig,
)

__all__ = [
    "AcceptedRisk",
    "AccessRule",
    "AssetConfig",
    "BastionConfig",
    "BudgetsConfig",
    "ChecksConfig",
    "LoginConfig",
    "MfaConfig",
    "RoleConfig",
    "ScopeConfig",
    "TargetConfig",
    "load_config",
    "load_config_text",
]
