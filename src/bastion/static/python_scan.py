"""Run Bastion's Python rules over one source file and turn their hits into Findings."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from bastion.findings.model import Confidence, Finding, InputRef, Severity
from bastion.static.files import Skipped
from bastion.static.python_rules import CALL_RULES, STMT_RULES
from bastion.static.rules import STATIC_RULES, static_finding
from bastion.static.taint import Hit, Label, ModuleAnalysis, data_labels

_INPUT_LOCATIONS = ("path", "query", "form", "json", "multipart", "header", "cookie", "body")


@dataclass
class ModuleInfo:
    """What route correlation needs of a module: its local call graph."""

    file: str
    calls: dict[str, set[str]] = field(default_factory=dict)
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)

    def function_at(self, line: int) -> str | None:
        """The innermost function whose span (decorators included) holds `line`."""
        best: tuple[int, str] | None = None
        for qual, (start, end) in self.spans.items():
            if start <= line <= end and (best is None or start > best[0]):
                best = (start, qual)
        return best[1] if best else None


def analyse_python(text: str, file: str, skipped: list[Skipped]) -> tuple[list[Finding], ModuleInfo]:
    """Findings of Bastion's own rules in one module; a file that does not parse is skipped, not fatal."""
    info = ModuleInfo(file)
    try:
        tree = ast.parse(text, filename=file)
    except SyntaxError as exc:
        skipped.append(Skipped(file, f"syntax error at line {exc.lineno}: {exc.msg}"))
        return [], info
    except (ValueError, RecursionError, MemoryError) as exc:
        skipped.append(Skipped(file, f"cannot parse: {type(exc).__name__}"))
        return [], info
    lines = text.splitlines()
    analysis = ModuleAnalysis(tree, file, lines, list(CALL_RULES), list(STMT_RULES))
    try:
        hits = analysis.run()
    except RecursionError:
        skipped.append(Skipped(file, "nesting too deep to analyse"))
        return [], info
    except Exception as exc:  # Bastion's own bug on odd code: record it, keep scanning the tree
        skipped.append(Skipped(file, f"internal error in Bastion's Python rules ({type(exc).__name__}); "
                                     "please report it"))
        return [], info
    info.calls, info.spans = analysis.calls, analysis.spans
    return [_finding(hit, analysis, info) for hit in hits], info


def best_input(labels: frozenset[Label]) -> InputRef | None:
    """The most specific request input among the labels (named before whole-body, stable order)."""
    named = sorted(lab for lab in labels if lab[0] in _INPUT_LOCATIONS and lab[1])
    if named:
        return InputRef.model_validate({"in": named[0][0], "name": named[0][1]})
    if any(lab[0] in ("json", "body") for lab in labels):
        return InputRef.model_validate({"in": "body", "name": "body"})
    return None


def _finding(hit: Hit, analysis: ModuleAnalysis, info: ModuleInfo) -> Finding:
    rule = STATIC_RULES[hit.rule]
    labels = data_labels(hit.taint)
    function = hit.function or info.function_at(hit.line)
    chain = [*hit.chain, function] if function else list(hit.chain)
    meta = {"rule": rule.id, "function": function or "<module>", "entry": chain[0] if chain else "<module>",
            "chain": " -> ".join(chain)}
    if labels:
        meta["sources"] = ",".join(f"{loc}:{name}" for loc, name in sorted(labels))
    code = analysis.lines[hit.line - 1] if 0 < hit.line <= len(analysis.lines) else ""
    return static_finding(rule, file=analysis.file, line=hit.line, code_line=code, detail=hit.detail,
                          confidence=Confidence(hit.confidence) if hit.confidence else Confidence.firm,
                          severity=Severity(hit.severity) if hit.severity else None,
                          input=best_input(labels), meta=meta)
