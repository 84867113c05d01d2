"""The role × entry-point authorization matrix: what the policy expects and what the target did."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from bastion.target.exchange import Exchange

# Where apps send someone who must log in first; matched on the redirect's path.
_LOGIN_PATH = re.compile(r"(^|/)(log-?in|sign-?in|auth|sso|session/new)(/|$|\?)", re.IGNORECASE)
ALLOW, DENY, UNKNOWN, UNTESTED = "allow", "deny", "unknown", "untested"
# Why a cell was not probed: the `writes:` setting forbids state-changing requests there.
WRITES_DENIED = "writes not allowed"


@dataclass(frozen=True)
class AuthzCell:
    """One matrix cell: `role` calling `method path` — expected vs actual access."""

    method: str
    path: str
    role: str
    expected: str  # allow | deny | owner (depends on the object) | untested
    actual: str  # allow | deny | unknown | untested
    status: int = 0
    reason: str = ""  # why the cell is untested (e.g. WRITES_DENIED)

    @property
    def drift(self) -> bool:
        return self.expected in (ALLOW, DENY) and self.actual in (ALLOW, DENY) and self.expected != self.actual


def is_login_redirect(ex: Exchange, login_paths: tuple[str, ...] = ()) -> bool:
    """A 3xx whose Location is a login page (the generic names, or a configured login path)."""
    if ex.status not in (301, 302, 303, 307, 308):
        return False
    path = urlsplit(ex.header("location") or "").path
    return bool(_LOGIN_PATH.search(path)) or any(p and path.rstrip("/") == p.rstrip("/") for p in login_paths)


def access_outcome(ex: Exchange, login_paths: tuple[str, ...] = ()) -> str:
    """allow (2xx, or 3xx not to a login page), deny (401/403/404, or 3xx to login), else unknown."""
    if ex.status in (401, 403, 404) or is_login_redirect(ex, login_paths):
        return DENY
    if 200 <= ex.status < 400:
        return ALLOW
    return UNKNOWN


def cell_label(cell: AuthzCell) -> str:
    """Short text for a report cell: the actual outcome, flagged when it contradicts the policy."""
    if cell.actual == UNTESTED:
        return f"untested ({cell.reason})" if cell.reason else UNTESTED
    if cell.drift:
        return f"{cell.actual.upper()} (policy: {cell.expected})"
    suffix = " (owner-dependent)" if cell.expected == "owner" else ""
    return f"{cell.actual}{suffix}"


def matrix_table(cells: list[AuthzCell]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Roles (columns, first-seen order) and one row per `METHOD /path` with a label per role."""
    roles = list(dict.fromkeys(c.role for c in cells))
    rows: dict[str, dict[str, str]] = {}
    for c in cells:
        rows.setdefault(f"{c.method} {c.path}", {})[c.role] = cell_label(c)
    return roles, [(key, [rows[key].get(r, "") for r in roles]) for key in sorted(rows)]
