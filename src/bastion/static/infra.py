"""Infrastructure and CI configuration rules: Dockerfile, docker-compose, Kubernetes, GitHub Actions, .env.

YAML is parsed with `bastion.safeyaml` (size, depth, alias and node limits); a file it refuses is
recorded as skipped with the reason and yields no finding. Secret values are never copied into a
finding: evidence shows the key with the value replaced by `<redacted>`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from bastion.errors import ConfigError
from bastion.findings.model import Finding, Severity
from bastion.safeyaml import YamlDocument, load_yaml_text
from bastion.static.files import Skipped
from bastion.static.rules import StaticRule, static_finding, static_rule

R_ROOT = static_rule("iac.container-root", "iac.container-root")
R_UNPINNED = static_rule("iac.unpinned-image", "iac.unpinned-image")
R_SECRET = static_rule("iac.secret-in-config", "iac.secret-in-config")
R_ADD = static_rule("iac.remote-add", "iac.remote-add")
R_PRIV = static_rule("iac.privileged-container", "iac.privileged-container")
R_DBPORT = static_rule("iac.exposed-database-port", "iac.exposed-database-port")
R_LIMITS = static_rule("iac.no-resource-limits", "iac.no-resource-limits")
R_ENVFILE = static_rule("iac.env-file", "iac.secret-in-config", title=".env file committed to the tree")
R_PRT = static_rule("ci.untrusted-checkout", "ci.untrusted-checkout")
R_SCRIPT = static_rule("ci.script-injection", "ci.script-injection")
R_ACTION = static_rule("ci.unpinned-action", "ci.unpinned-action")
R_PERMS = static_rule("ci.write-all-permissions", "ci.write-all-permissions")

INFRA_RULES: tuple[StaticRule, ...] = (R_ROOT, R_UNPINNED, R_SECRET, R_ADD, R_PRIV, R_DBPORT, R_LIMITS, R_ENVFILE,
                                       R_PRT, R_SCRIPT, R_ACTION, R_PERMS)

_SECRET_KEY = re.compile(r"(passw(or)?d|passwd|secret|token|api_?key|private_?key|access_?key|credential)",
                         re.IGNORECASE)
_DB_PORTS = {"5432": "PostgreSQL", "3306": "MySQL", "6379": "Redis", "27017": "MongoDB"}
_POD_KINDS = {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob",
              "ReplicationController"}
_SHA = re.compile(r"^[0-9a-f]{40}$")
_EVENT_EXPR = re.compile(r"\$\{\{\s*(github\.event\.[A-Za-z0-9_.\[\]'\"*-]+|github\.head_ref)\s*\}\}")
# Event fields that are numbers, ids or hashes: not attacker-chosen text.
_SAFE_EVENT_FIELD = re.compile(r"(\.number|\.id|_id|\.sha|_at|\.count|\.size)$")
_DOC_SPLIT = re.compile(r"^---[ \t]*(#.*)?$", re.MULTILINE)
_ENV_EXAMPLES = {".env.example", ".env.sample", ".env.template", ".env.dist", ".env.defaults"}


@dataclass(frozen=True)
class InfraFile:
    kind: str  # dockerfile | compose | workflow | yaml | env
    path: str


def classify(path: PurePath) -> str | None:
    """Which infra parser a file needs, from its name and place (None: not an infra file)."""
    name = path.name
    lower = name.lower()
    if name in ("Dockerfile", "Containerfile") or name.startswith("Dockerfile.") or lower.endswith(".dockerfile"):
        return "dockerfile"
    if name == ".env" or (name.startswith(".env.") and name not in _ENV_EXAMPLES):
        return "env"
    if lower.endswith((".yml", ".yaml")):
        if re.fullmatch(r"(docker-)?compose([.-][\w-]+)?\.ya?ml", lower):
            return "compose"
        if ".github/workflows/" in path.as_posix() or ".github\\workflows\\" in str(path):
            return "workflow"
        return "yaml"
    return None


def scan_infra(kind: str, text: str, file: str, skipped: list[Skipped]) -> list[Finding]:
    """Findings of one infra file; unparsable or over-limit YAML is skipped with a reason."""
    lines = text.splitlines()
    if kind == "dockerfile":
        return list(_dockerfile(lines, file))
    if kind == "env":
        return list(_env_file(lines, file))
    if kind == "yaml" and not ("apiVersion" in text and "kind" in text):
        return []
    out: list[Finding] = []
    for offset, chunk in _documents(text):
        try:
            doc = load_yaml_text(chunk, name=file)
        except ConfigError as exc:
            skipped.append(Skipped(file, f"YAML not scanned: {exc}"))
            continue
        ctx = _Ctx(file, lines, doc, offset)
        rules = _compose if kind == "compose" else _workflow if kind == "workflow" else _kubernetes
        try:
            out.extend(rules(ctx))
        except (TypeError, AttributeError, ValueError) as exc:  # a key holding an unexpected type
            skipped.append(Skipped(file, f"unexpected {kind} structure: {type(exc).__name__}"))
    return out


def _documents(text: str) -> list[tuple[int, str]]:
    """A multi-document YAML stream split at `---` lines, with each part's line offset."""
    parts: list[tuple[int, str]] = []
    start = 0
    for m in _DOC_SPLIT.finditer(text):
        parts.append((text.count("\n", 0, start), text[start:m.start()]))
        start = m.end()
    parts.append((text.count("\n", 0, start), text[start:]))
    return [(off, chunk) for off, chunk in parts if chunk.strip()]


@dataclass
class _Ctx:
    file: str
    lines: list[str]
    doc: YamlDocument
    offset: int

    def finding(self, rule: StaticRule, path: tuple[Any, ...], detail: str, *, redact: bool = False,
                severity: Severity | None = None) -> Finding:
        line = (self.doc.line_of(path) or 1) + self.offset
        code = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        if redact:
            code = _redact_line(code)
        return static_finding(rule, file=self.file, line=line, code_line=code, detail=detail, severity=severity,
                              meta={"rule": rule.id})


def _redact_line(code: str) -> str:
    """Keep the key, hide the value: `PASSWORD: hunter2` → `PASSWORD: <redacted>`."""
    m = re.match(r"^(\s*-?\s*[\"']?[\w.-]+[\"']?\s*[:=]\s*)", code)
    return (m.group(1) + "<redacted>") if m else "<redacted>"


def _literal_secret(key: Any, value: Any) -> bool:
    """A secret-looking key with a literal value (not `${VAR}`, not a *_FILE path, not empty)."""
    if not isinstance(key, str) or not _SECRET_KEY.search(key) or key.upper().endswith("_FILE"):
        return False
    if value is None or isinstance(value, bool) or (isinstance(value, dict | list)):
        return False
    text = str(value).strip()
    return bool(text) and "${" not in text and not text.startswith(("$", "/run/secrets/"))


# -- Dockerfile ----------------------------------------------------------------------------------


def _instructions(lines: list[str]) -> Iterator[tuple[int, str, str]]:
    """(line, INSTRUCTION, arguments) with backslash continuations joined and comments skipped."""
    buf, start = "", 0
    for number, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if not buf:
            start = number
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        head, _, rest = buf.partition(" ")
        yield start, head.upper(), rest.strip()
        buf = ""


def _dockerfile(lines: list[str], file: str) -> Iterator[Finding]:
    stages: set[str] = set()
    last_from: int | None = None
    user: tuple[int, str] | None = None
    for number, instr, args in _instructions(lines):
        code = lines[number - 1]
        if instr == "FROM":
            last_from, user = number, None
            words = [w for w in args.split() if not w.startswith("--")]
            image = words[0] if words else ""
            if len(words) >= 3 and words[1].lower() == "as":
                stages.add(words[2].lower())
            if _unpinned(image, stages):
                yield static_finding(R_UNPINNED, file=file, line=number, code_line=code,
                                     detail=f"image {image!r} has no pinned tag", meta={"rule": R_UNPINNED.id})
        elif instr == "USER":
            user = (number, args.split(":")[0].strip())
        elif instr in ("ENV", "ARG"):
            for key, value in _env_pairs(args, instr):
                if _literal_secret(key, value):
                    yield static_finding(R_SECRET, file=file, line=number, code_line=f"{instr} {key}=<redacted>",
                                         detail=f"{instr} {key} holds a literal secret", meta={"rule": R_SECRET.id})
        elif instr == "ADD":
            if re.search(r"(^|\s)https?://", args):
                yield static_finding(R_ADD, file=file, line=number, code_line=code, detail="ADD from a URL",
                                     meta={"rule": R_ADD.id})
    if last_from is not None and (user is None or user[1] in ("root", "0")):
        line = user[0] if user else last_from
        yield static_finding(R_ROOT, file=file, line=line, code_line=lines[line - 1],
                             detail="final stage runs as root" if user else "final stage has no USER",
                             meta={"rule": R_ROOT.id})


def _unpinned(image: str, stages: set[str]) -> bool:
    if not image or image.lower() == "scratch" or image.lower() in stages or "$" in image:
        return False
    if "@sha256:" in image:
        return False
    last = image.rsplit("/", 1)[-1]
    return ":" not in last or last.endswith(":latest")


def _env_pairs(args: str, instr: str) -> list[tuple[str, str | None]]:
    """`ENV A=1 B="x y"`, legacy `ENV A 1`, `ARG NAME[=default]`."""
    if "=" not in args.split(" ", 1)[0]:
        key, _, value = args.partition(" ")
        return [(key, value.strip() or None)] if instr == "ENV" else [(key, None)]
    pairs = []
    for m in re.finditer(r"([\w.-]+)=(\"[^\"]*\"|'[^']*'|\S*)", args):
        pairs.append((m.group(1), m.group(2).strip("\"'")))
    return pairs


# -- .env files -----------------------------------------------------------------------------------


def _env_file(lines: list[str], file: str) -> Iterator[Finding]:
    keys: list[str] = []
    first_line = 1
    for number, raw in enumerate(lines, start=1):
        key, sep, value = raw.strip().removeprefix("export ").partition("=")
        if sep and _literal_secret(key.strip(), value.strip().strip("\"'")):
            if not keys:
                first_line = number
            keys.append(key.strip())
    detail = f"secret-looking keys: {', '.join(keys[:10])}" if keys else "environment file in the source tree"
    yield static_finding(R_ENVFILE, file=file, line=first_line,
                         code_line=f"{keys[0]}=<redacted>" if keys else PurePath(file).name, detail=detail,
                         severity=None if keys else Severity.low, meta={"rule": R_ENVFILE.id})


# -- docker-compose -------------------------------------------------------------------------------


def _compose(ctx: _Ctx) -> Iterator[Finding]:
    services = ctx.doc.data.get("services") if isinstance(ctx.doc.data, dict) else None
    if not isinstance(services, dict):
        return
    for name, svc in services.items():
        if not isinstance(svc, dict):
            continue
        base = ("services", name)
        if svc.get("privileged") is True:
            yield ctx.finding(R_PRIV, (*base, "privileged"), f"service {name} is privileged")
        if str(svc.get("network_mode", "")) == "host":
            yield ctx.finding(R_PRIV, (*base, "network_mode"), f"service {name} uses the host network")
        for i, port in enumerate(svc.get("ports") or []):
            exposed = _exposed_db_port(port)
            if exposed:
                yield ctx.finding(R_DBPORT, (*base, "ports", i),
                                  f"service {name} publishes {exposed} on all interfaces")
        yield from _env_secrets(ctx, svc.get("environment"), (*base, "environment"), f"service {name}")


def _exposed_db_port(port: Any) -> str | None:
    if isinstance(port, dict):  # long syntax
        target, host_ip = str(port.get("target", "")), str(port.get("host_ip", ""))
        published = port.get("published")
        if published is None or host_ip in ("127.0.0.1", "localhost", "::1"):
            return None
        return _DB_PORTS.get(target)
    text = str(port).split("/")[0]
    parts = text.rsplit(":", 2) if text.count(":") <= 2 else [text]
    if len(parts) < 2:
        return None  # "5432" alone publishes nothing on the host (container-side only)
    if len(parts) == 3 and parts[0] in ("127.0.0.1", "localhost", "[::1]", "::1"):
        return None
    return _DB_PORTS.get(parts[-1])


def _env_secrets(ctx: _Ctx, env: Any, path: tuple[Any, ...], where: str) -> Iterator[Finding]:
    items: list[tuple[Any, Any, tuple[Any, ...]]] = []
    if isinstance(env, dict):
        items = [(k, v, (*path, k)) for k, v in env.items()]
    elif isinstance(env, list):
        for i, entry in enumerate(env):
            if isinstance(entry, str) and "=" in entry:
                key, _, value = entry.partition("=")
                items.append((key, value, (*path, i)))
    for key, value, p in items:
        if _literal_secret(key, value):
            yield ctx.finding(R_SECRET, p, f"{where}: {key} is a literal secret", redact=True)


# -- Kubernetes -----------------------------------------------------------------------------------


def _pod_spec(doc: dict[str, Any]) -> tuple[dict[str, Any] | None, tuple[Any, ...]]:
    kind = doc.get("kind")
    spec = doc.get("spec")
    path: tuple[Any, ...] = ("spec",)
    if kind == "CronJob":
        for key in ("jobTemplate", "spec", "template", "spec"):
            spec = spec.get(key) if isinstance(spec, dict) else None
            path = (*path, key)
    elif kind != "Pod":
        for key in ("template", "spec"):
            spec = spec.get(key) if isinstance(spec, dict) else None
            path = (*path, key)
    return (spec if isinstance(spec, dict) else None), path


def _kubernetes(ctx: _Ctx) -> Iterator[Finding]:
    doc = ctx.doc.data
    if not isinstance(doc, dict) or doc.get("kind") not in _POD_KINDS:
        return
    spec, path = _pod_spec(doc)
    if spec is None:
        return
    name = (doc.get("metadata") or {}).get("name", "?") if isinstance(doc.get("metadata"), dict) else "?"
    pod_sc: dict[str, Any] = spec["securityContext"] if isinstance(spec.get("securityContext"), dict) else {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag) is True:
            yield ctx.finding(R_PRIV, (*path, flag), f"{name}: {flag}: true")
    for i, vol in enumerate(spec.get("volumes") or []):
        if isinstance(vol, dict) and "hostPath" in vol:
            yield ctx.finding(R_PRIV, (*path, "volumes", i), f"{name}: hostPath volume {vol.get('name', '')}")
    for group in ("containers", "initContainers"):
        for i, container in enumerate(spec.get(group) or []):
            if isinstance(container, dict):
                yield from _container(ctx, container, (*path, group, i), pod_sc, name)


def _container(ctx: _Ctx, c: dict[str, Any], path: tuple[Any, ...], pod_sc: dict[str, Any],
               workload: str) -> Iterator[Finding]:
    cname = f"{workload}/{c.get('name', '?')}"
    sc: dict[str, Any] = c["securityContext"] if isinstance(c.get("securityContext"), dict) else {}
    if sc.get("privileged") is True:
        yield ctx.finding(R_PRIV, (*path, "securityContext", "privileged"), f"{cname} is privileged")
    non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
    run_as = sc.get("runAsUser", pod_sc.get("runAsUser"))
    if non_root is not True and not (isinstance(run_as, int) and run_as > 0):
        yield ctx.finding(R_ROOT, path, f"{cname}: runAsNonRoot not set")
    limits = (c.get("resources") or {}).get("limits") if isinstance(c.get("resources"), dict) else None
    if not isinstance(limits, dict) or "memory" not in limits or "cpu" not in limits:
        yield ctx.finding(R_LIMITS, path, f"{cname}: no CPU/memory limits")
    for j, env in enumerate(c.get("env") or []):
        if isinstance(env, dict) and "value" in env and _literal_secret(env.get("name"), env.get("value")):
            yield ctx.finding(R_SECRET, (*path, "env", j, "value"), f"{cname}: {env.get('name')} is a literal secret",
                              redact=True)


# -- GitHub Actions -------------------------------------------------------------------------------


def _triggers(data: dict[Any, Any]) -> set[str]:
    on = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on:` key as True
    if isinstance(on, str):
        return {on}
    if isinstance(on, list):
        return {str(x) for x in on}
    if isinstance(on, dict):
        return {str(k) for k in on}
    return set()


def _workflow(ctx: _Ctx) -> Iterator[Finding]:
    data = ctx.doc.data
    if not isinstance(data, dict):
        return
    privileged = "pull_request_target" in _triggers(data)
    if data.get("permissions") == "write-all":
        yield ctx.finding(R_PERMS, ("permissions",), "workflow permissions: write-all")
    jobs = data.get("jobs")
    if not isinstance(jobs, dict):
        return
    for job_id, job in jobs.items():
        if not isinstance(job, dict):
            continue
        if job.get("permissions") == "write-all":
            yield ctx.finding(R_PERMS, ("jobs", job_id, "permissions"), f"job {job_id}: permissions: write-all")
        for i, step in enumerate(job.get("steps") or []):
            if isinstance(step, dict):
                yield from _step(ctx, step, ("jobs", job_id, "steps", i), privileged)


def _step(ctx: _Ctx, step: dict[str, Any], path: tuple[Any, ...], privileged: bool) -> Iterator[Finding]:
    uses = step.get("uses")
    if isinstance(uses, str) and "@" in uses and not uses.startswith(("./", "docker://")):
        action, _, ref = uses.partition("@")
        owner = action.split("/")[0].lower()
        if owner not in ("actions", "github") and not _SHA.match(ref):
            yield ctx.finding(R_ACTION, (*path, "uses"), f"{action} pinned to {ref!r}, not a commit SHA")
        if privileged and action.lower() == "actions/checkout":
            ref_value = str((step.get("with") or {}).get("ref", "")) if isinstance(step.get("with"), dict) else ""
            if "pull_request.head" in ref_value or "head_ref" in ref_value or "refs/pull/" in ref_value:
                yield ctx.finding(R_PRT, (*path, "with", "ref"), "pull_request_target checks out the PR head")
    run = step.get("run")
    if isinstance(run, str):
        fields = [m.group(1) for m in _EVENT_EXPR.finditer(run) if not _SAFE_EVENT_FIELD.search(m.group(1))]
        if fields:
            yield ctx.finding(R_SCRIPT, (*path, "run"), "run: expands " + ", ".join(sorted(set(fields))[:5]))
