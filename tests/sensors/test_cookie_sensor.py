"""Cookie sensor: the app's own `set_cookie` line becomes the cookie-flags finding's file:line."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from flask import Flask, Response, session
from starlette.responses import Response as StarletteResponse
from werkzeug.sansio.response import Response as WerkzeugResponse

from bastion.engine.runner import ScanResult
from bastion.sensors import SensorSession, cookies, sensor_session
from bastion.surface.model import EntryPoint, Surface
from bastion.testing import findings_of, scan_app

CHECK = "headers.cookie-flags"
PAGE = "<!doctype html><html><body><p>hello</p></body></html>"
SURFACE = Surface([EntryPoint("GET", "/")])
SECRET_VALUE = "s3cr3t-cookie-value-1"


def _line_of(func: Callable[..., Any], text: str) -> int:
    """The line in this file where `func`'s source contains `text`."""
    lines, start = inspect.getsourcelines(func)
    return start + next(i for i, line in enumerate(lines) if text in line)


def _issue_cookie(resp: Any) -> None:
    """Where the flaw is: a hand-written set_cookie without the flags (not in the view)."""
    resp.set_cookie("sessionid", SECRET_VALUE, path="/", httponly=False)  # the planted call


def flask_app(*, safe: bool = False) -> Flask:
    app = Flask(__name__)

    @app.get("/")
    def home() -> Response:
        resp = Response(PAGE, mimetype="text/html")
        if safe:
            resp.set_cookie("sessionid", SECRET_VALUE, secure=True, httponly=True, samesite="Lax")
        else:
            _issue_cookie(resp)
        return resp

    return app


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.get("/", response_class=HTMLResponse)
    def home() -> HTMLResponse:
        resp = HTMLResponse(PAGE)
        # Starlette defaults to SameSite=lax: HttpOnly and Secure are what is missing.
        resp.set_cookie("sessionid", SECRET_VALUE, httponly=False)  # the planted FastAPI call
        return resp

    return app


def flask_session_app() -> Flask:
    """The session cookie is Flask's own: its flags come from the config, not from a line of the app."""
    app = Flask(__name__)
    app.secret_key = "test-only-key"

    @app.get("/")
    def home() -> str:
        session["visited"] = True
        return PAGE

    return app


def _scan(app: Any, spec: str) -> ScanResult:
    return scan_app(app, SURFACE, checks=[CHECK], spec=spec, base_url="https://app.example.test")


def _sensor_evidence(f: Any) -> list[Any]:
    return [e for e in f.evidence if e.kind == "sensor" and e.meta.get("sensor") == "cookie"]


def test_flask_set_cookie_line_is_the_finding_location() -> None:
    (f,) = findings_of(_scan(flask_app(), f"{__name__}:flask_app()"), CHECK)
    assert f.location.file and f.location.file.endswith("test_cookie_sensor.py")
    assert f.location.line == _line_of(_issue_cookie, "the planted call")
    (ev,) = _sensor_evidence(f)
    assert f"test_cookie_sensor.py:{f.location.line}" in ev.summary
    assert "httponly=False" in ev.content and "secure=False" in ev.content
    assert SECRET_VALUE not in ev.content  # flags only, never the value
    assert f.confidence == "confirmed" and f.location.path == "/"  # one finding, still on its route


def test_fastapi_set_cookie_line_is_the_finding_location() -> None:
    (f,) = findings_of(_scan(fastapi_app(), f"{__name__}:fastapi_app()"), CHECK)
    assert "HttpOnly" in f.title and "Secure" in f.title
    assert f.location.file and f.location.file.endswith("test_cookie_sensor.py")
    assert f.location.line == _line_of(fastapi_app, "the planted FastAPI call")
    (ev,) = _sensor_evidence(f)
    assert "samesite='lax'" in ev.content


def test_framework_session_cookie_points_at_the_config() -> None:
    (f,) = findings_of(_scan(flask_session_app(), f"{__name__}:flask_session_app()"), CHECK)
    assert f.location.file is None  # not framework code, not a random app line
    (ev,) = _sensor_evidence(f)
    assert "framework" in ev.summary and "SESSION_COOKIE_SECURE" in ev.content
    assert ev.meta["setter"] == "flask.sessions"


def test_safe_near_miss_is_clean() -> None:
    assert findings_of(_scan(flask_app(safe=True), f"{__name__}:flask_app(safe=True)"), CHECK) == []


def test_wrappers_exist_only_while_a_session_is_active() -> None:
    originals = (WerkzeugResponse.__dict__["set_cookie"], StarletteResponse.__dict__["set_cookie"])
    with sensor_session(SensorSession()):
        assert getattr(WerkzeugResponse.set_cookie, "__bastion_sensor__", False)
        assert getattr(StarletteResponse.set_cookie, "__bastion_sensor__", False)
        with sensor_session(SensorSession()):
            pass
        assert getattr(WerkzeugResponse.set_cookie, "__bastion_sensor__", False)  # the outer one still runs
    assert (WerkzeugResponse.__dict__["set_cookie"], StarletteResponse.__dict__["set_cookie"]) == originals


def test_sessions_in_other_threads_see_only_their_own_cookies() -> None:
    seen: dict[str, list[str]] = {}
    barrier = threading.Barrier(2)

    def worker(name: str) -> None:
        s = SensorSession()
        with sensor_session(s):
            barrier.wait()
            Response("x").set_cookie(name, "v")
            barrier.wait()
        seen[name] = [c.name for c in cookies.cookie_calls(s)]

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("first", "second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"first": ["first"], "second": ["second"]}
    Response("x").set_cookie("outside", "v")  # no session, no wrapper: nothing to record, no error


def test_explaining_call_needs_every_missing_flag() -> None:
    s = SensorSession()
    with sensor_session(s):
        Response("x").set_cookie("sid", "v", httponly=True)
        Response("x").set_cookie("sid", "", max_age=0)  # a deletion explains nothing
    assert cookies.explaining_call(s, "sid", ["Secure", "SameSite"]) is not None
    assert cookies.explaining_call(s, "sid", ["HttpOnly"]) is None
    assert cookies.explaining_call(s, "other", ["Secure"]) is None
    assert cookies.explaining_call(None, "sid", ["Secure"]) is None


def test_demo_insecure_session_cookie_points_at_the_demo_line(scan_demo: Callable[..., ScanResult]) -> None:
    (f,) = findings_of(scan_demo(flaws="insecure_session_cookie", checks=[CHECK]), CHECK)
    assert f.location.file and f.location.file.endswith("demo/flask_app.py")
    (ev,) = _sensor_evidence(f)
    import bastion.demo.flask_app as demo_app

    source = inspect.getsource(demo_app).splitlines()
    assert "set_cookie(" in source[f.location.line - 1]
    assert "httponly=False" in ev.content and "samesite=None" in ev.content


@pytest.mark.parametrize("flaws", ["none"])
def test_demo_hardened_twin_is_clean(scan_demo: Callable[..., ScanResult], flaws: str) -> None:
    assert findings_of(scan_demo(flaws=flaws, checks=[CHECK]), CHECK) == []
