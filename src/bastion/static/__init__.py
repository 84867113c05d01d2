"""Static analysis: Python SAST (bandit + Bastion's framework rules), secrets, IaC/CI rules, route correlation."""

from bastion.static.correlate import correlate, merge_with_dast
from bastion.static.rules import STATIC_RULES
from bastion.static.runner import StaticResult, run_static, static_scan_result

# Rule families whose ids are made at run time from the tool's own ids.
DYNAMIC_RULES = {"static.bandit": "static.bandit.*", "static.hardcoded-secret": "static.secret.*",
                 "static.imported-finding": "static.imported.*"}
# Rules registered when their analyser first reports; listed here so the catalog shows them.
RUN_TIME_RULES = {"deps.vulnerable-dependency": "deps.vulnerable-dependency",
                  "deps.unpinned-dependency": "deps.unpinned-dependency",
                  "secrets.git-history": "secrets.git-history"}


def static_checks_by_threat() -> dict[str, list[str]]:
    """Threat id → static rule ids (sorted), for `bastion catalog` next to the DAST checks."""
    import bastion.static.infra  # noqa: F401 -- importing registers the rules
    import bastion.static.python_rules  # noqa: F401
    import bastion.static.templates  # noqa: F401

    by_threat: dict[str, list[str]] = {}
    for rule in STATIC_RULES.values():
        if not rule.id.startswith(tuple(p.rstrip("*") for p in DYNAMIC_RULES.values())):
            by_threat.setdefault(rule.threat, []).append(rule.id)
    for threat, pattern in {**DYNAMIC_RULES, **RUN_TIME_RULES}.items():
        if pattern not in by_threat.get(threat, []):
            by_threat.setdefault(threat, []).append(pattern)
    return {t: sorted(ids) for t, ids in sorted(by_threat.items())}


__all__ = ["StaticResult", "correlate", "merge_with_dast", "run_static", "static_checks_by_threat",
           "static_scan_result"]
