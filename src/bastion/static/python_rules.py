"""Bastion's own Python rules for web frameworks: what bandit does not know about Flask/FastAPI/Django.

Request-data rules (SQL, command, template, markup, path, eval) fire only when the taint analysis
(`bastion.static.taint`) shows request data reaching the sink. Configuration rules (debug, secret
key, CORS, CSRF, cookies, JWT, TLS, crypto) fire on the construct itself.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from bastion.static.rules import StaticRule, static_rule
from bastion.static.taint import CallView, Hit, ModuleAnalysis, Taint, data_labels, dotted

R_SQL = static_rule("static.sql-string-building", "injection.sql",
                    title="SQL built from request data")
R_CMD = static_rule("static.command-injection", "injection.command",
                    title="Shell command built from request data")
R_SSTI = static_rule("static.template-from-request", "injection.ssti",
                     title="Template source built from request data")
R_MARKUP = static_rule("static.markup-request-data", "injection.xss-reflected",
                       title="Request data marked safe HTML (Markup / mark_safe)")
R_PATH = static_rule("static.path-from-request", "injection.path-traversal",
                     title="File path taken from request data")
R_REDIRECT = static_rule("static.open-redirect", "injection.open-redirect",
                         title="Redirect to a URL taken from request data")
R_XXE = static_rule("static.xml-external-entities", "injection.xxe",
                    title="XML parser configured to resolve external entities / DTDs")
R_EVAL = static_rule("static.eval-request-data", "injection.code", title="eval/exec of request data")
R_YAML = static_rule("static.yaml-unsafe-load", "static.insecure-deserialization",
                     title="yaml.load without a safe loader")
R_PICKLE = static_rule("static.pickle-loads", "static.insecure-deserialization",
                       title="pickle/marshal deserialization")
R_JWT = static_rule("static.jwt-unverified", "static.jwt-unverified")
R_TLS = static_rule("static.tls-verify-disabled", "static.tls-verify-disabled")
R_CORS = static_rule("static.cors-wildcard-credentials", "static.cors-wildcard-credentials")
R_CSRF = static_rule("static.csrf-disabled", "static.csrf-disabled")
R_COOKIE = static_rule("static.cookie-insecure", "headers.cookie-flags",
                       title="Cookie set without Secure, HttpOnly or SameSite")
R_DEBUG = static_rule("static.debug-enabled", "config.debug-exposed", title="Debug mode enabled in code")
R_SECRET = static_rule("static.hardcoded-secret-key", "static.hardcoded-secret-key")
R_RANDOM = static_rule("static.insecure-random", "static.insecure-random")
R_HASH = static_rule("static.weak-password-hash", "static.weak-password-hash")
R_CIPHER = static_rule("static.weak-cipher", "static.weak-cipher")

PYTHON_RULES: tuple[StaticRule, ...] = (R_SQL, R_CMD, R_SSTI, R_MARKUP, R_PATH, R_REDIRECT, R_XXE, R_EVAL,
                                        R_YAML, R_PICKLE, R_JWT, R_TLS, R_CORS, R_CSRF, R_COOKIE, R_DEBUG,
                                        R_SECRET, R_RANDOM, R_HASH, R_CIPHER)

_SQL_METHODS = {"execute", "executemany", "executescript", "raw", "read_sql", "read_sql_query", "exec_driver_sql"}
_SUBPROCESS = {"subprocess.run", "subprocess.call", "subprocess.Popen", "subprocess.check_output",
               "subprocess.check_call"}
_SHELL_FUNCS = {"os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput",
                "asyncio.create_subprocess_shell"}
_TEMPLATE_FUNCS = {"flask.render_template_string", "jinja2.Template", "mako.template.Template",
                   "django.template.Template", "quart.render_template_string"}
_MARKUP_FUNCS = {"markupsafe.Markup", "flask.Markup", "jinja2.Markup", "django.utils.safestring.mark_safe"}
_PATH_FUNCS = {"open", "io.open", "flask.send_file", "starlette.responses.FileResponse",
               "fastapi.responses.FileResponse", "os.remove", "os.unlink", "shutil.copy", "shutil.copyfile",
               "shutil.rmtree", "django.http.FileResponse"}
_PATH_METHODS = {"read_text", "read_bytes", "write_text", "write_bytes", "unlink", "open"}
_PICKLE_FUNCS = {"pickle.loads", "pickle.load", "pickle.Unpickler", "cPickle.loads", "dill.loads",
                 "marshal.loads", "jsonpickle.decode", "shelve.open"}
_SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader"}
_SECRET_NAME = re.compile(r"(token|secret|passw|pwd|api_?key|nonce|salt|otp|csrf|session_?id|reset_?code"
                          r"|auth_?code|verification_?code)", re.IGNORECASE)
_PASSWORD_NAME = re.compile(r"(passw|pwd|pass_?hash|pw_?hash)", re.IGNORECASE)
_WEAK_KEYS = {"dev", "secret", "changeme", "change-me", "development", "test", "key", "default", "password",
              "secret_key", "mysecret", "supersecret", "s3cr3t", "your-secret-key", "insecure"}
_SECRET_KEY_NAMES = {"SECRET_KEY", "JWT_SECRET_KEY", "secret_key", "SESSION_SECRET", "JWT_SECRET"}
_SETTINGS_FILE = re.compile(r"(^|[/\\])(settings[^/\\]*|config|conf)\.py$")


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _is_false(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def _has_star(node: ast.AST | None) -> bool:
    if isinstance(node, ast.Constant):
        return node.value == "*"
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return any(_has_star(e) for e in node.elts)
    return False


def _taint_hit(rule: StaticRule, view: CallView, taint: Taint, detail: str) -> Iterator[Hit]:
    if data_labels(taint) or any(lab[0] == "param" for lab in taint):
        yield Hit(rule.id, view.node.lineno, taint, detail)


# -- request-data sinks --------------------------------------------------------------------------


def sql_sink(view: CallView) -> Iterator[Hit]:
    is_text = view.qualname.endswith(("sqlalchemy.text", "sqlalchemy.sql.text", "sql.expression.text"))
    if view.attr in _SQL_METHODS or is_text:
        query = view.arg(0, "sql") or view.kw("statement") or view.kw("query")
        if query is not None:
            yield from _taint_hit(R_SQL, view, view.taint_of(query), f"request data reaches {view.attr}()")


def command_sink(view: CallView) -> Iterator[Hit]:
    cmd = view.arg(0, "args") or view.kw("cmd") or view.kw("command")
    if cmd is None:
        return
    if view.qualname in _SHELL_FUNCS or view.qualname.startswith(("os.exec", "os.spawn")):
        yield from _taint_hit(R_CMD, view, view.taint_of(cmd), f"request data reaches {view.qualname}()")
    elif view.qualname in _SUBPROCESS:
        if _is_true(view.kw("shell")):
            yield from _taint_hit(R_CMD, view, view.taint_of(cmd), "request data in a shell=True command")
        elif isinstance(cmd, ast.List | ast.Tuple) and cmd.elts:
            # An argv list is only injectable when request data picks the program itself.
            yield from _taint_hit(R_CMD, view, view.taint_of(cmd.elts[0]), "request data chooses the program")


def template_sink(view: CallView) -> Iterator[Hit]:
    source = view.arg(0, "source")
    if source is not None and (view.qualname in _TEMPLATE_FUNCS or view.attr == "from_string"):
        yield from _taint_hit(R_SSTI, view, view.taint_of(source), f"request data is template source ({view.attr})")


def markup_sink(view: CallView) -> Iterator[Hit]:
    value = view.arg(0)
    if value is not None and (view.qualname in _MARKUP_FUNCS or view.qualname in ("Markup", "mark_safe")):
        yield from _taint_hit(R_MARKUP, view, view.taint_of(value), "request data marked as safe HTML")


def path_sink(view: CallView) -> Iterator[Hit]:
    if view.qualname in _PATH_FUNCS:
        target = view.arg(0, "path") or view.kw("file") or view.kw("path_or_file")
        if target is not None:
            yield from _taint_hit(R_PATH, view, view.taint_of(target), f"request data is the path of {view.attr}()")
    elif view.attr in _PATH_METHODS and isinstance(view.node.func, ast.Attribute) \
            and not view.qualname.startswith(("?", "self.")):
        receiver = view.node.func.value
        if isinstance(receiver, ast.Call | ast.Name):
            taint = view.taint_of(receiver)
            if any(lab[0] != "json" for lab in data_labels(taint)):
                yield from _taint_hit(R_PATH, view, taint, f"request data is the path of .{view.attr}()")


def eval_sink(view: CallView) -> Iterator[Hit]:
    if view.qualname in ("eval", "exec", "compile", "builtins.eval", "builtins.exec") and view.node.args:
        yield from _taint_hit(R_EVAL, view, view.taint_of(view.node.args[0]), f"request data reaches {view.attr}()")


_REDIRECT_FUNCS = {"flask.redirect", "werkzeug.utils.redirect", "quart.redirect", "django.shortcuts.redirect",
                   "starlette.responses.RedirectResponse", "fastapi.responses.RedirectResponse",
                   "django.http.HttpResponseRedirect"}


def _local_prefix(node: ast.expr) -> bool:
    """True when the URL starts with a constant same-site path ("/login?next=" + ...)."""
    while isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        node = node.left
    first = node.values[0] if isinstance(node, ast.JoinedStr) and node.values else node
    text = _const_str_value(first)
    return text is not None and text.startswith("/") and not text.startswith(("//", "/\\"))


def redirect_sink(view: CallView) -> Iterator[Hit]:
    target = view.arg(0, "location") or view.kw("url")
    if target is not None and view.qualname in _REDIRECT_FUNCS and not _local_prefix(target):
        yield from _taint_hit(R_REDIRECT, view, view.taint_of(target), "request data chooses the redirect target")


def xxe_parser(view: CallView) -> Iterator[Hit]:
    if view.attr in ("XMLParser", "XMLPullParser", "XSLTAccessControl") and (
            _is_true(view.kw("resolve_entities")) or _is_true(view.kw("load_dtd")) or _is_false(view.kw("no_network"))):
        yield Hit(R_XXE.id, view.node.lineno, detail="lxml parser resolves entities / loads DTDs")


# -- deserialization, tokens, TLS ----------------------------------------------------------------


def deserialization(view: CallView) -> Iterator[Hit]:
    first = view.arg(0)
    taint = view.taint_of(first) if first is not None else frozenset()
    tainted = bool(data_labels(taint))
    severity = "critical" if tainted else None
    if view.qualname in ("yaml.load", "yaml.load_all"):
        loader = view.arg(1, "Loader")
        name = dotted(loader).rsplit(".", 1)[-1] if loader is not None else ""
        if name not in _SAFE_YAML_LOADERS:
            yield Hit(R_YAML.id, view.node.lineno, taint, f"yaml.load with {name or 'no'} Loader",
                      severity=severity)
    elif view.qualname in ("yaml.unsafe_load", "yaml.full_load", "yaml.unsafe_load_all"):
        yield Hit(R_YAML.id, view.node.lineno, taint, f"{view.qualname} builds arbitrary objects", severity=severity)
    elif view.qualname in _PICKLE_FUNCS:
        yield Hit(R_PICKLE.id, view.node.lineno, taint, f"{view.qualname} runs code from the data",
                  severity=severity, confidence=None if tainted else "tentative")


def jwt_decode(view: CallView) -> Iterator[Hit]:
    if not (view.qualname in ("jwt.decode", "jose.jwt.decode", "jwt.api_jwt.decode") or
            (view.attr == "decode" and view.qualname.split(".")[0] in ("jwt", "pyjwt"))):
        return
    options = view.kw("options")
    if isinstance(options, ast.Dict):
        for key, value in zip(options.keys, options.values, strict=True):
            if isinstance(key, ast.Constant) and key.value in ("verify_signature", "verify_exp", "verify_aud") \
                    and _is_false(value):
                yield Hit(R_JWT.id, view.node.lineno, detail=f"options {key.value}=False")
                return
    if _is_false(view.kw("verify")):
        yield Hit(R_JWT.id, view.node.lineno, detail="verify=False")
        return
    algorithms = view.kw("algorithms")
    if algorithms is None:
        yield Hit(R_JWT.id, view.node.lineno, detail="no algorithms= allowlist", severity="medium")
    elif isinstance(algorithms, ast.List | ast.Tuple) and any(
            isinstance(e, ast.Constant) and str(e.value).lower() == "none" for e in algorithms.elts):
        yield Hit(R_JWT.id, view.node.lineno, detail='algorithms allow "none"')


def tls_verify(view: CallView) -> Iterator[Hit]:
    if view.attr == "decode" and "jwt" in view.qualname:
        return
    if _is_false(view.kw("verify")):
        yield Hit(R_TLS.id, view.node.lineno, detail=f"{view.qualname.lstrip('?.')}(verify=False)")
    elif view.qualname in ("ssl._create_unverified_context", "ssl._create_stdlib_context"):
        yield Hit(R_TLS.id, view.node.lineno, detail=f"{view.qualname}()")
    elif _is_cert_none(view.kw("cert_reqs")):  # ssl.wrap_socket(cert_reqs=CERT_NONE), urllib3 PoolManager
        yield Hit(R_TLS.id, view.node.lineno, detail=f"{view.qualname.lstrip('?.')}(cert_reqs=CERT_NONE)")


def _is_cert_none(node: ast.AST | None) -> bool:
    """`ssl.CERT_NONE`, `CERT_NONE` or urllib3's string spelling "CERT_NONE" / "NONE"."""
    if isinstance(node, ast.Constant):
        return node.value in ("CERT_NONE", "NONE")
    return node is not None and dotted(node).split(".")[-1] == "CERT_NONE"


# -- framework configuration ---------------------------------------------------------------------


def cors(view: CallView) -> Iterator[Hit]:
    if view.qualname.endswith("flask_cors.CORS") or view.qualname.endswith("flask_cors.cross_origin"):
        origins = view.kw("origins") or view.kw("resources")
        if _is_true(view.kw("supports_credentials")) and (origins is None or _has_star(origins)):
            yield Hit(R_CORS.id, view.node.lineno, detail="flask-cors: any origin with supports_credentials=True")
    middleware = view.arg(0) if view.attr == "add_middleware" else None
    is_cors_mw = (middleware is not None and dotted(middleware).endswith("CORSMiddleware")) \
        or view.qualname.endswith("CORSMiddleware")
    if is_cors_mw and _is_true(view.kw("allow_credentials")) and (
            _has_star(view.kw("allow_origins")) or view.kw("allow_origin_regex") is not None
            and _const_str_is(view.kw("allow_origin_regex"), (".*", "^.*$", ".+"))):
        yield Hit(R_CORS.id, view.node.lineno, detail="CORSMiddleware: allow_origins * with allow_credentials")


def _const_str_is(node: ast.AST | None, values: tuple[str, ...]) -> bool:
    return isinstance(node, ast.Constant) and node.value in values


def cookie_flags(view: CallView) -> Iterator[Hit]:
    if view.attr != "set_cookie" or len(view.node.args) + len(view.node.keywords) < 2:
        return
    missing = [flag for flag in ("secure", "httponly", "samesite")
               if view.kw(flag) is None or _is_false(view.kw(flag)) or _is_none_const(view.kw(flag))]
    if any(k.arg is None for k in view.node.keywords):
        return  # **options: the flags may be in there
    if missing:
        yield Hit(R_COOKIE.id, view.node.lineno, detail="cookie without " + ", ".join(missing))


def _is_none_const(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def debug_call(view: CallView) -> Iterator[Hit]:
    if _is_true(view.kw("debug")) and (view.attr == "run" or view.qualname.endswith(
            ("flask.Flask", "fastapi.FastAPI", "starlette.applications.Starlette", "quart.Quart"))):
        yield Hit(R_DEBUG.id, view.node.lineno, detail=f"{view.qualname.lstrip('?.')}(debug=True)")
    elif view.qualname.endswith("DebuggedApplication") and _is_true(view.kw("evalex")):
        yield Hit(R_DEBUG.id, view.node.lineno, detail="DebuggedApplication(evalex=True)")
    elif view.attr == "update" and dotted(view.node.func).endswith("config"):
        for kw in view.node.keywords:
            yield from _config_value(kw.arg or "", kw.value, view.node.lineno, view.analysis)


def csrf_exempt(view: CallView) -> Iterator[Hit]:
    if view.attr == "exempt" and "csrf" in dotted(view.node.func).lower():
        yield Hit(R_CSRF.id, view.node.lineno, detail="csrf.exempt(...)")


def insecure_random(view: CallView) -> Iterator[Hit]:
    if not view.qualname.startswith("random.") or view.qualname == "random.SystemRandom":
        return
    target = view.assigned_to or ""
    where = view.function.rsplit(".", 1)[-1] if view.function else ""
    if _SECRET_NAME.search(target.rsplit(".", 1)[-1]) or (not target and _SECRET_NAME.search(where)):
        yield Hit(R_RANDOM.id, view.node.lineno, detail=f"{view.qualname}() used for {target or where}")


def weak_password_hash(view: CallView) -> Iterator[Hit]:
    algo = view.qualname.rsplit(".", 1)[-1].lower() if view.qualname.startswith("hashlib.") else ""
    if algo == "new" and view.node.args:
        algo = str(getattr(view.node.args[0], "value", "")).lower()
    if algo not in ("md5", "sha1") or _is_false(view.kw("usedforsecurity")):
        return
    names = [dotted(n) for n in ast.walk(view.node) if isinstance(n, ast.Name | ast.Attribute)]
    context = [*names, view.assigned_to or "", (view.function or "").rsplit(".", 1)[-1]]
    if any(_PASSWORD_NAME.search(n) for n in context):
        yield Hit(R_HASH.id, view.node.lineno, detail=f"{algo} over a password")


def weak_cipher(view: CallView) -> Iterator[Hit]:
    q = view.qualname
    if q.endswith("modes.ECB") or (view.attr == "new" and any(
            dotted(a).endswith("MODE_ECB") for a in [*view.node.args, *(k.value for k in view.node.keywords)])):
        yield Hit(R_CIPHER.id, view.node.lineno, detail="ECB mode")
        return
    iv: ast.expr | None = None
    if q.rsplit(".", 1)[-1] in ("CBC", "CFB", "OFB", "CTR", "GCM") and "modes" in q:
        iv = view.arg(0)
    elif view.attr == "new" and ("Cipher" in q or "AES" in q):
        iv = view.kw("iv") or view.kw("nonce") or (view.node.args[2] if len(view.node.args) > 2 else None)
    if iv is not None and _constant_bytes(iv, view):
        yield Hit(R_CIPHER.id, view.node.lineno, detail="static IV/nonce")


def _constant_bytes(node: ast.expr, view: CallView) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, bytes | str):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        return _constant_bytes(node.left, view) or _constant_bytes(node.right, view)
    if isinstance(node, ast.Name):
        return node.id in _bytes_constants(view.analysis)
    return False


def _bytes_constants(analysis: ModuleAnalysis) -> set[str]:
    """Names assigned a bytes literal (module-wide): a fixed IV kept in a variable."""
    cached = getattr(analysis, "_bytes_consts", None)
    if cached is None:
        cached = set()
        for node in ast.walk(analysis.tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                    and isinstance(node.value.value, bytes):
                cached |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        analysis._bytes_consts = cached  # type: ignore[attr-defined]
    return cached


CALL_RULES = (sql_sink, command_sink, template_sink, markup_sink, path_sink, redirect_sink, xxe_parser, eval_sink,
              deserialization, jwt_decode, tls_verify, cors, cookie_flags, debug_call, csrf_exempt, insecure_random,
              weak_password_hash, weak_cipher)


# -- statement rules (assignments, decorators) ---------------------------------------------------


def _config_value(key: str, value: ast.expr, line: int, analysis: ModuleAnalysis) -> Iterator[Hit]:
    """One configuration key set to a literal: debug, secret key, CSRF and cookie flags."""
    if key in _SECRET_KEY_NAMES and isinstance(value, ast.Constant) and isinstance(value.value, str | bytes):
        raw = value.value if isinstance(value.value, str) else value.value.decode("latin-1")
        weak = raw.lower() in _WEAK_KEYS or len(raw) < 16
        yield Hit(R_SECRET.id, line, detail=("weak " if weak else "") + f"{key} is a literal ({len(raw)} chars)",
                  severity="critical" if weak else None)
    elif key == "DEBUG" and _is_true(value) and (_SETTINGS_FILE.search(analysis.file) or "INSTALLED_APPS"
                                                    in {dotted(t) for n in analysis.tree.body
                                                        if isinstance(n, ast.Assign) for t in n.targets}):
        yield Hit(R_DEBUG.id, line, detail="DEBUG = True in settings")
    elif key in ("WTF_CSRF_ENABLED", "CSRF_ENABLED", "WTF_CSRF_CHECK_DEFAULT") and _is_false(value):
        yield Hit(R_CSRF.id, line, detail=f"{key} = False")
    elif key in ("SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "CSRF_COOKIE_SECURE",
                 "REMEMBER_COOKIE_SECURE", "REMEMBER_COOKIE_HTTPONLY") and _is_false(value):
        yield Hit(R_COOKIE.id, line, detail=f"{key} = False")
    elif key in ("CORS_ALLOW_ALL_ORIGINS", "CORS_ORIGIN_ALLOW_ALL") and _is_true(value) \
            and _django_credentials(analysis):
        yield Hit(R_CORS.id, line, detail=f"{key} = True with CORS_ALLOW_CREDENTIALS = True")


def _django_credentials(analysis: ModuleAnalysis) -> bool:
    return any(isinstance(n, ast.Assign) and _is_true(n.value)
               and any(dotted(t) == "CORS_ALLOW_CREDENTIALS" for t in n.targets) for n in analysis.tree.body)


def config_assignment(node: ast.stmt, analysis: ModuleAnalysis, function: str | None) -> Iterator[Hit]:
    """`SECRET_KEY = "..."`, `app.secret_key = ...`, `app.config["DEBUG"] = True`, `app.debug = True`."""
    if not isinstance(node, ast.Assign):
        return
    for target in node.targets:
        key: str | None = None
        if isinstance(target, ast.Name):
            key = target.id if target.id.isupper() or target.id == "secret_key" else None
        elif isinstance(target, ast.Attribute):
            key = {"secret_key": "SECRET_KEY", "debug": "DEBUG_ATTR"}.get(target.attr)
        elif isinstance(target, ast.Subscript) and dotted(target.value).endswith("config"):
            key = _const_str_value(target.slice)
        if key == "DEBUG_ATTR":
            if _is_true(node.value):
                yield Hit(R_DEBUG.id, node.lineno, detail=f"{dotted(target)} = True")
        elif key == "DEBUG" and isinstance(target, ast.Subscript):
            if _is_true(node.value):
                yield Hit(R_DEBUG.id, node.lineno, detail="config['DEBUG'] = True")
        elif key:
            yield from _config_value(key, node.value, node.lineno, analysis)


def _const_str_value(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def csrf_decorator(node: ast.stmt, analysis: ModuleAnalysis, function: str | None) -> Iterator[Hit]:
    """`@csrf_exempt` (Django) and `@csrf.exempt` (Flask-WTF) on a view."""
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return
    for dec in node.decorator_list:
        name = dotted(dec.func if isinstance(dec, ast.Call) else dec)
        if name.endswith("csrf_exempt") or (name.endswith(".exempt") and "csrf" in name.lower()):
            yield Hit(R_CSRF.id, dec.lineno, detail=f"@{name} on {node.name}")


def tls_assignment(node: ast.stmt, analysis: ModuleAnalysis, function: str | None) -> Iterator[Hit]:
    """`ctx.check_hostname = False`, `ctx.verify_mode = ssl.CERT_NONE`, `session.verify = False`."""
    if not isinstance(node, ast.Assign):
        return
    for target in node.targets:
        if not isinstance(target, ast.Attribute):
            continue
        if target.attr in ("check_hostname", "verify") and _is_false(node.value):
            yield Hit(R_TLS.id, node.lineno, detail=f"{dotted(target)} = False")
        elif target.attr == "verify_mode" and _is_cert_none(node.value):
            yield Hit(R_TLS.id, node.lineno, detail=f"{dotted(target)} = CERT_NONE")


STMT_RULES = (config_assignment, csrf_decorator, tls_assignment)
