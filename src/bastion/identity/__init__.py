"""Identities the scan acts as: login flows and the per-role session state they produce."""

from bastion.identity.login import login_role, login_roles
from bastion.identity.matrix import AuthzCell
from bastion.identity.session import RoleSession

__all__ = ["AuthzCell", "RoleSession", "login_role", "login_roles"]
