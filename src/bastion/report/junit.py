"""`junit.xml`: one testcase per check × entry point, failing where the check found something.

One `<testsuite>` per check family (`injection`, `headers`, ...); `classname` is the check id and
`name` the entry point ("GET /users/{id}") or "target". Input-level units collapse to their entry
point. Findings at locations the check did not plan (static files, other paths) get a testcase of
their own, so every finding fails exactly one testcase.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field

from bastion.engine.runner import ScanResult
from bastion.findings.model import Finding, Location
from bastion.surface.model import INPUT_LOCATIONS

TARGET = "target"
_INPUT_SUFFIX = re.compile(r"^(.*?) \[(?:" + "|".join(INPUT_LOCATIONS) + r"):.*\]$", re.DOTALL)
# XML 1.0 cannot carry these code points at all, not even escaped.
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: str) -> str:
    """Replace characters XML 1.0 forbids (NUL, other C0 controls, lone surrogates) with visible escapes."""
    return _XML_INVALID.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                            else f"\\u{ord(m.group()):04x}", value)


def entry_of_unit(label: str) -> str:
    """`GET /x [query:q]` -> `GET /x`; entry and target labels are unchanged."""
    m = _INPUT_SUFFIX.match(label)
    return m.group(1) if m else label


def entry_of_location(loc: Location) -> str:
    """The testcase name a finding belongs to: its entry point, else its file, else the target."""
    if loc.method and loc.path:
        return f"{loc.method} {loc.path}"
    if loc.path:
        return loc.path
    if loc.file:
        return loc.file
    return TARGET


@dataclass
class _Case:
    check_id: str
    name: str
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _error_unit(error: str, units: set[str]) -> str | None:
    """The unit label an engine error starts with (`"<label>: Type: message"`), if any."""
    head = error.split("\n", 1)[0]
    start = 0
    while (pos := head.find(": ", start)) != -1:
        if head[:pos] in units:
            return head[:pos]
        start = pos + 1
    return None


def _plan_cases(result: ScanResult) -> dict[str, list[_Case]]:
    """Testcases per check id, in unit order, then unplanned finding locations sorted."""
    cases: dict[str, dict[str, _Case]] = {}
    for stats in result.checks:
        per_check = cases.setdefault(stats.check_id, {})
        for unit in stats.units:
            name = entry_of_unit(unit)
            per_check.setdefault(name, _Case(stats.check_id, name))
        units = set(stats.units)
        for err in stats.errors:
            err_unit = _error_unit(err, units)
            name = entry_of_unit(err_unit) if err_unit else "(check)"
            per_check.setdefault(name, _Case(stats.check_id, name)).errors.append(err)
    extra: dict[str, dict[str, _Case]] = defaultdict(dict)
    for f in result.findings:
        name = entry_of_location(f.location)
        planned = cases.setdefault(f.check_id, {})
        case = planned.get(name) or extra[f.check_id].setdefault(name, _Case(f.check_id, name))
        case.findings.append(f)
    return {cid: [*per_check.values(), *(extra[cid][k] for k in sorted(extra.get(cid, {})))]
            for cid, per_check in cases.items()}


def _finding_text(f: Finding) -> str:
    lines = [f"[{f.severity.value}/{f.confidence.value}] {f.title}", f"  at {f.location.label()}",
             f"  check {f.check_id}, threat {f.threat_id}, fingerprint {f.fingerprint}"]
    if f.cwe is not None:
        lines.append(f"  CWE-{f.cwe}")
    if f.remediation:
        lines.append(f"  fix: {f.remediation}")
    if f.reproduction.curl:
        lines.append(f"  reproduce: {f.reproduction.curl}")
    return "\n".join(lines)


def _testcase(case: _Case, seconds: float) -> ET.Element:
    el = ET.Element("testcase", {"classname": xml_text(case.check_id), "name": xml_text(case.name),
                                 "time": f"{seconds:.3f}"})
    if case.findings:
        worst = max(case.findings, key=lambda f: f.severity.rank)
        count = len(case.findings)
        message = f"{worst.severity.value}: {worst.title}" + (f" (+{count - 1} more)" if count > 1 else "")
        failure = ET.SubElement(el, "failure", {"message": xml_text(message), "type": worst.severity.value})
        failure.text = xml_text("\n\n".join(_finding_text(f) for f in case.findings))
        if case.errors:
            # JUnit readers expect one outcome per testcase: the failure wins, the error is kept as output.
            ET.SubElement(el, "system-err").text = xml_text("\n\n".join(case.errors))
    elif case.errors:
        error = ET.SubElement(el, "error", {"message": xml_text(case.errors[0].splitlines()[0]),
                                           "type": "check-error"})
        error.text = xml_text("\n\n".join(case.errors))
    return el


def junit_element(result: ScanResult) -> ET.Element:
    """The `<testsuites>` tree: one suite per check family, sorted by family."""
    durations = {c.check_id: c.duration_s for c in result.checks}
    by_family: dict[str, list[_Case]] = defaultdict(list)
    for cid, cases in _plan_cases(result).items():
        by_family[cid.split(".", 1)[0]].extend(cases)
    root = ET.Element("testsuites", {"name": "bastion"})
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for family in sorted(by_family):
        cases = by_family[family]
        per_check: dict[str, int] = defaultdict(int)
        for case in cases:
            per_check[case.check_id] += 1
        suite = ET.SubElement(root, "testsuite", {"name": xml_text(family)})
        failures = errors = 0
        seconds = 0.0
        for case in cases:
            share = durations.get(case.check_id, 0.0) / per_check[case.check_id]
            seconds += share
            suite.append(_testcase(case, share))
            failures += bool(case.findings)
            errors += bool(case.errors and not case.findings)
        suite.attrib.update({"tests": str(len(cases)), "failures": str(failures), "errors": str(errors),
                             "skipped": "0", "time": f"{seconds:.3f}"})
        totals["tests"] += len(cases)
        totals["failures"] += failures
        totals["errors"] += errors
    root.attrib.update({k: str(v) for k, v in totals.items()})
    root.set("time", f"{result.duration_s:.3f}")
    return root


def junit_xml(result: ScanResult) -> str:
    """`junit.xml` text (UTF-8, with an XML declaration)."""
    root = junit_element(result)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
