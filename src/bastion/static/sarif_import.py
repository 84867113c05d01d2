"""`bastion static --import other.sarif`: other tools' SARIF 2.1.0 results as Bastion findings.

The file is untrusted: it is size-capped, must be UTF-8 JSON whose nesting, node count and result
count stay within limits (the JSON analogue of an alias bomb is a file of millions of tiny
repeated nodes), must say `"version": "2.1.0"` and validate against the SARIF 2.1.0 schema shipped
with Bastion. Any failure raises `InputFileError` naming the file, before anything is written.

Mapping: rule id (result.ruleId, else the rule it references), level → severity (error → high,
warning → medium, note → low, none → info; a numeric `security-severity` property wins), message,
first location's file:line, CWE from properties or tags. The fingerprint is Bastion's own
(`bastion/v1`) when present — so Bastion's SARIF re-imports to the same fingerprints — else a hash
of the tool, the rule and the tool's fingerprints, else of the tool, rule, file and message.
Results of another tool get the check id `static.imported.<tool>.<rule>` and threat
`static.imported-finding`; Bastion's own keep their check and threat ids.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from bastion.errors import InputFileError
from bastion.findings.dedup import dedupe
from bastion.findings.model import Confidence, Evidence, Finding, InputRef, Location, Severity
from bastion.findings.redact import Redactor
from bastion.safeyaml import decode_utf8, read_limited
from bastion.static.deps.cvss import severity_of
from bastion.static.rules import static_rule

MAX_SARIF_BYTES = 32 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 2_000_000
MAX_RESULTS = 50_000
MAX_MESSAGE = 500
IMPORTED_THREAT = "static.imported-finding"
BASTION_FINGERPRINT = "bastion/v1"
_LEVEL = {"error": Severity.high, "warning": Severity.medium, "note": Severity.low, "none": Severity.info}
_CWE_TAG = re.compile(r"(?i)^(?:external/cwe/)?cwe[-_/]?(\d{1,5})$")
_FINGERPRINT = re.compile(r"^[0-9a-f]{24}$")
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


@cache
def _validator() -> Any:
    import jsonschema

    text = (resources.files("bastion.static") / "data" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8")
    schema = json.loads(text)
    return jsonschema.validators.validator_for(schema)(schema)


def _check_shape(raw: bytes, name: str) -> None:
    """Refuse over-deep nesting and node floods before json.loads builds them."""
    depth = nodes = 0
    for m in re.finditer(rb"[\[\]{}]", _STRINGS.sub(b'""', raw)):
        if m.group() in (b"[", b"{"):
            depth += 1
            nodes += 1
            if depth > MAX_DEPTH:
                raise InputFileError(f"JSON nested deeper than {MAX_DEPTH} levels", file=name)
            if nodes > MAX_NODES:
                raise InputFileError(f"more than {MAX_NODES} JSON objects/arrays", file=name)
        else:
            depth -= 1


def load_sarif(path: str | Path) -> dict[str, Any]:
    """A SARIF 2.1.0 log that passed every limit and the schema; InputFileError otherwise."""
    name = str(path)
    raw = read_limited(path, max_bytes=MAX_SARIF_BYTES, error=InputFileError)
    text = decode_utf8(raw, name=name, error=InputFileError)
    _check_shape(raw, name)
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InputFileError(f"not JSON ({str(exc)[:120]})", file=name) from None
    if not isinstance(doc, dict):
        raise InputFileError("not a SARIF log (top level is not an object)", file=name)
    if doc.get("version") != "2.1.0":
        raise InputFileError(f"SARIF version {str(doc.get('version'))[:20]!r} is not supported (need 2.1.0)",
                             file=name)
    runs = doc.get("runs")
    if isinstance(runs, list):
        counts = [len(r["results"]) for r in runs if isinstance(r, dict) and isinstance(r.get("results"), list)]
        if sum(counts) > MAX_RESULTS:
            raise InputFileError(f"more than {MAX_RESULTS} results", file=name)
    error = next(iter(sorted(_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise InputFileError(f"does not match the SARIF 2.1.0 schema at {where}: {error.message[:200]}",
                             file=name)
    return doc


def import_sarif(path: str | Path) -> list[Finding]:
    """Findings for every result in the SARIF file (kind pass / notApplicable skipped), deduplicated."""
    doc = load_sarif(path)
    redactor = Redactor()
    out: list[Finding] = []
    for run in doc.get("runs") or []:
        driver = ((run.get("tool") or {}).get("driver") or {})
        tool = str(driver.get("name") or "unknown")
        rules = [r for r in driver.get("rules") or [] if isinstance(r, dict)]
        by_id = {str(r.get("id")): r for r in rules}
        for result in run.get("results") or []:
            if result.get("kind") in ("pass", "notApplicable"):
                continue
            out.append(redactor.finding(_finding(result, tool, rules, by_id, str(path))))
    return dedupe(out)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "unknown"


def _rule_of(result: dict[str, Any], rules: list[dict[str, Any]], by_id: dict[str, dict[str, Any]]) -> tuple[
        str, dict[str, Any]]:
    index = result.get("ruleIndex")
    if index is None and isinstance(result.get("rule"), dict):
        index = result["rule"].get("index")
    rule = rules[index] if isinstance(index, int) and 0 <= index < len(rules) else {}
    rule_id = result.get("ruleId") or (result.get("rule") or {}).get("id") or rule.get("id") or "unknown"
    return str(rule_id), rule or by_id.get(str(rule_id), {})


def _cwe(*bags: dict[str, Any]) -> int | None:
    for bag in bags:
        props = bag.get("properties") or {}
        value = props.get("cwe")
        if isinstance(value, int) and value > 0:
            return value
        if isinstance(value, str) and (m := _CWE_TAG.match(value.strip())):
            return int(m.group(1))
        for tag in props.get("tags") or []:
            if isinstance(tag, str) and (m := _CWE_TAG.match(tag.strip())):
                return int(m.group(1))
    return None


def _severity(result: dict[str, Any], rule: dict[str, Any]) -> Severity:
    props = result.get("properties") or {}
    try:
        return Severity.parse(str(props["severity"]))
    except (KeyError, ValueError):
        pass
    for bag in (props, rule.get("properties") or {}):
        try:
            return severity_of(float(bag["security-severity"]))
        except (KeyError, ValueError, TypeError):
            continue
    level = result.get("level") or ((rule.get("defaultConfiguration") or {}).get("level")) or "warning"
    return _LEVEL.get(str(level), Severity.medium)


def _message(result: dict[str, Any], rule: dict[str, Any]) -> str:
    msg = result.get("message") or {}
    text = msg.get("text") or msg.get("markdown") or ""
    if not text and msg.get("id"):
        text = ((rule.get("messageStrings") or {}).get(msg["id"]) or {}).get("text", "")
    return str(text).strip()[:MAX_MESSAGE]


def _location(result: dict[str, Any]) -> Location:
    locations = result.get("locations") or []
    first = locations[0] if locations else {}
    physical = first.get("physicalLocation") or {}
    uri = str((physical.get("artifactLocation") or {}).get("uri") or "")
    line = (physical.get("region") or {}).get("startLine")
    props = first.get("properties") or {}
    method = props.get("method") if isinstance(props.get("method"), str) else None
    route = props.get("path") if isinstance(props.get("path"), str) else None
    inp = props.get("input")
    input_ref = None
    if isinstance(inp, dict):
        try:
            input_ref = InputRef.model_validate({"in": inp.get("in"), "name": str(inp.get("name"))})
        except ValueError:
            input_ref = None
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        return Location(method=method, path=route or parsed.path or "/", url=unquote(uri), input=input_ref)
    file = unquote(parsed.path if parsed.scheme == "file" else uri) or None
    return Location(method=method, path=route, input=input_ref, file=file,
                    line=line if isinstance(line, int) and line > 0 else None)


def _fingerprint(result: dict[str, Any], tool: str, rule_id: str, loc: Location, message: str) -> str:
    prints = {**(result.get("partialFingerprints") or {}), **(result.get("fingerprints") or {})}
    own = prints.get(BASTION_FINGERPRINT)
    if isinstance(own, str) and _FINGERPRINT.match(own):
        return own
    parts = [tool, rule_id]
    if prints:
        parts += [f"{k}={v}" for k, v in sorted(prints.items())]
    else:  # no line: fingerprints must survive edits above the finding
        parts += [loc.file or loc.url or loc.path or "", " ".join(message.split())]
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:24]


def _foreign_rule(check_id: str, title: str) -> tuple[str, int, list[str]]:
    rule = static_rule(check_id, IMPORTED_THREAT, title=title)
    return rule.mitigation, rule.cwe, list(rule.owasp)


def _finding(result: dict[str, Any], tool: str, rules: list[dict[str, Any]], by_id: dict[str, dict[str, Any]],
             origin: str) -> Finding:
    from bastion.catalog import load_catalog

    rule_id, rule = _rule_of(result, rules, by_id)
    props = result.get("properties") or {}
    catalog = load_catalog()
    threat = str(props.get("threat") or "")
    own = tool.lower() == "bastion" and threat in catalog
    check_id = rule_id if own else f"static.imported.{_slug(tool)}.{_slug(rule_id)}"
    threat_id = threat if own else IMPORTED_THREAT
    # Bastion's own ids are already rules (DAST checks or static rules): only foreign ones register.
    mitigation, default_cwe, default_owasp = (
        (catalog[threat_id].mitigation, catalog[threat_id].cwe, catalog[threat_id].owasp_refs) if own
        else _foreign_rule(check_id, f"{tool}: {rule_id}"))
    short = ((rule.get("shortDescription") or {}).get("text") or "") if rule else ""
    message = _message(result, rule)
    loc = _location(result)
    confidence = Confidence.tentative
    if own:
        try:
            confidence = Confidence(str(props.get("confidence")))
        except ValueError:
            confidence = Confidence.firm
    elif str((rule.get("properties") or {}).get("precision", "")).lower() in ("high", "very-high"):
        confidence = Confidence.firm
    cwe = _cwe(result, rule) or default_cwe
    first_line = message.splitlines()[0] if message else rule_id
    title = message.rsplit(" at ", 1)[0] if own else f"{tool} {rule_id}: {short or first_line}"
    evidence = Evidence(kind="source", summary=loc.label(), content=message,
                        meta={"tool": tool, "rule": rule_id, "imported_from": origin})
    remediation = str(props.get("remediation") or "") or mitigation
    return Finding(check_id=check_id, threat_id=threat_id, title=title[:200] or rule_id,
                   severity=_severity(result, rule), confidence=confidence, cwe=cwe,
                   owasp=[o for o in props.get("owasp") or [] if isinstance(o, str)] or list(default_owasp),
                   location=loc, role=str(props["role"]) if own and props.get("role") else None,
                   evidence=[evidence], remediation=remediation,
                   fingerprint=_fingerprint(result, tool, rule_id, loc, message))
