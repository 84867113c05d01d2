"""Django projects Bastion has never seen, scanned as a user would: `bastion scan --app module:application`.

Django's settings are process-wide (one project per process), so every scan runs the CLI in a child
process. `django_library` plants its flaws; `django_library_safe` does each thing right and must scan
clean. A standard project layout (settings.py / urls.py / wsgi.py / asgi.py setting
DJANGO_SETTINGS_MODULE) checks the `target.app` forms and the ALLOWED_HOSTS configuration error.

Found / missed on django_library (seed 0):
| planted flaw                               | found by                                            |
|--------------------------------------------|-----------------------------------------------------|
| cursor.execute(f"...") in /search/         | injection.sql, confirmed by the Django SQL sensor    |
| User.objects.raw(f"...") in /readers/      | injection.sql, confirmed by the Django SQL sensor    |
| {{ name|safe }} in /hello/                 | injection.xss-reflected                             |
| HttpResponseRedirect(request.GET["next"])  | injection.open-redirect                             |
| DEBUG = True (404 and 500 pages)           | config.debug-exposed, config.stack-trace            |
| no SecurityMiddleware                      | headers.xcto-missing, headers.referrer-policy-missing |
| no XFrameOptionsMiddleware, no CSP         | headers.frame-options-missing, headers.csp-missing  |
| @csrf_exempt POST /books/{pk}/review/      | static.csrf-disabled only (no dynamic CSRF check)   |
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("django")

ROOT = Path(__file__).resolve().parents[2]
Finding = dict[str, Any]


def _bastion(args: list[str], cwd: Path = ROOT, extra_env: dict[str, str] | None = None,
             ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), str(ROOT), os.environ.get("PYTHONPATH", "")]),
           **(extra_env or {})}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run([sys.executable, "-m", "bastion.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600, check=False)


def _scan(app: str, out: Path) -> list[Finding]:
    done = _bastion(["scan", "--app", app, "-q", "--no-history", "--seed", "0", "--format", "json",
                     "--fail-on", "none", "--out", str(out)])
    assert done.returncode == 0, done.stdout + done.stderr
    findings: list[Finding] = json.loads((out / "findings.json").read_text())["findings"]
    return findings


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> list[Finding]:
    return _scan("tests.thirdparty.apps.django_library:application", tmp_path_factory.mktemp("dj-library"))


@pytest.fixture(scope="module")
def library_safe(tmp_path_factory: pytest.TempPathFactory) -> list[Finding]:
    return _scan("tests.thirdparty.apps.django_library_safe:application", tmp_path_factory.mktemp("dj-library-safe"))


def _hits(findings: list[Finding], check_id: str, path: str | None, method: str | None) -> list[Finding]:
    return [f for f in findings if f["check_id"] == check_id
            and (path is None or f["location"].get("path") == path)
            and (method is None or f["location"].get("method") == method)]


# planted flaw, check id, method, path (None: anywhere)
PLANTED: list[tuple[str, str, str | None, str | None]] = [
    ("cursor.execute(f-string)", "injection.sql", "GET", "/search/"),
    ("Manager.raw(f-string)", "injection.sql", "GET", "/readers/"),
    ("|safe on a query parameter", "injection.xss-reflected", "GET", "/hello/"),
    ("redirect to ?next=", "injection.open-redirect", "GET", "/go/"),
    ("DEBUG = True error pages", "config.debug-exposed", None, None),
    ("DEBUG = True tracebacks", "config.stack-trace", "GET", "/books/{pk}/"),
    ("no SecurityMiddleware: nosniff", "headers.xcto-missing", None, None),
    ("no SecurityMiddleware: Referrer-Policy", "headers.referrer-policy-missing", None, None),
    ("no XFrameOptionsMiddleware", "headers.frame-options-missing", None, None),
    ("no CSP", "headers.csp-missing", None, None),
]


@pytest.mark.parametrize(("flaw", "check_id", "method", "path"), PLANTED, ids=[f"{c}-{p}" for _, c, _, p in PLANTED])
def test_planted_flaw_is_found(library: list[Finding], flaw: str, check_id: str, method: str | None,
                               path: str | None) -> None:
    assert _hits(library, check_id, path, method), \
        f"{flaw} not found by {check_id}; got {sorted({f['check_id'] for f in library})}"


@pytest.mark.parametrize("path", ["/search/", "/readers/"])
def test_sql_injection_is_confirmed_by_the_sensor_at_the_apps_line(library: list[Finding], path: str) -> None:
    [finding] = _hits(library, "injection.sql", path, "GET")
    sensed = [e for e in finding["evidence"] if e["kind"] == "sensor" and e.get("meta", {}).get("sensor") == "sql"]
    assert finding["confidence"] == "confirmed"
    assert sensed and sensed[0]["meta"]["file"] == "tests/thirdparty/apps/django_library.py"
    source = (ROOT / "tests/thirdparty/apps/django_library.py").read_text().splitlines()
    assert "f\"SELECT" in source[int(sensed[0]["meta"]["line"]) - 1]


def test_well_built_twin_scans_clean(library_safe: list[Finding]) -> None:
    assert [(f["check_id"], f["title"]) for f in library_safe if f["severity"] != "info"] == []


def test_sound_routes_of_the_vulnerable_project_stay_quiet(library: list[Finding]) -> None:
    attack = [f for f in library if f["check_id"].startswith(("injection.", "authz.", "ssrf."))
              and f["location"].get("path") in ("/", "/books/{pk}/", "/books/{pk}/review/")]
    assert attack == []


def test_surface_of_the_urlconf() -> None:
    done = _bastion(["surface", "--app", "tests.thirdparty.apps.django_library:application", "--no-crawl",
                     "--format", "json"])
    assert done.returncode == 0, done.stderr
    rows = {(r["method"], r["path"], r["in"], r["name"]) for r in json.loads(done.stdout)}
    assert {("GET", "/search/", "query", "q"), ("GET", "/hello/", "query", "name"), ("GET", "/go/", "query", "next"),
            ("GET", "/books/{pk}/", "path", "pk"), ("GET", "/books/{pk}/", "query", "page"),
            ("POST", "/books/{pk}/review/", "form", "body"), ("GET", "/readers/", "query", "name")} <= rows
    assert {m for m, p, _, _ in rows if p == "/books/{pk}/review/"} == {"POST"}  # @require_http_methods


def test_csrf_exempt_post_is_a_static_finding(tmp_path: Path) -> None:
    apps = "tests/thirdparty/apps/"
    done = _bastion(["static", f"{apps}django_library.py", f"{apps}django_library_safe.py", "--no-bandit",
                     "--no-secrets", "--format", "json", "--fail-on", "none", "--out", str(tmp_path)])
    assert done.returncode == 0, done.stderr
    findings = json.loads((tmp_path / "findings.json").read_text())["findings"]
    csrf = [(f["location"]["file"], f["location"]["line"]) for f in findings if f["check_id"] == "static.csrf-disabled"]
    source = (ROOT / apps / "django_library.py").read_text().splitlines()
    assert [file for file, _ in csrf] == [f"{apps}django_library.py"]
    assert "@csrf_exempt" in source[csrf[0][1] - 1]


# A project in the standard layout: wsgi.py / asgi.py set DJANGO_SETTINGS_MODULE, settings.py reads env.
SHOP = {
    "shopsite/__init__.py": "",
    "shopsite/settings.py": '''
        import os
        SECRET_KEY = "shop-test"
        DEBUG = False
        ALLOWED_HOSTS = os.environ.get("SHOP_ALLOWED_HOSTS", "bastion.local").split(",")
        ROOT_URLCONF = "shopsite.urls"
        INSTALLED_APPS = []
        DATABASES = {}
    ''',
    "shopsite/urls.py": '''
        from django.http import HttpResponse
        from django.urls import path
        from django.utils.html import escape

        def product(request, sku):
            return HttpResponse(escape(request.GET.get("colour", "any")))

        def hi(request):
            return HttpResponse("<p>Hi " + request.GET.get("who", "you") + "</p>")

        urlpatterns = [path("products/<slug:sku>/", product), path("hi/", hi)]
    ''',
    "shopsite/wsgi.py": '''
        import os
        from django.core.wsgi import get_wsgi_application
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopsite.settings")
        application = get_wsgi_application()
    ''',
    "shopsite/asgi.py": '''
        import os
        from django.core.asgi import get_asgi_application
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopsite.settings")
        application = get_asgi_application()
    ''',
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shop")
    for name, text in SHOP.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    return root


def test_standard_project_layout_wsgi(shop: Path) -> None:
    done = _bastion(["surface", "--app", "shopsite.wsgi:application", "--no-crawl", "--format", "json"], cwd=shop)
    assert done.returncode == 0, done.stderr
    rows = {(r["method"], r["path"], r["in"], r["name"]) for r in json.loads(done.stdout)}
    assert {("GET", "/products/{sku}/", "path", "sku"), ("GET", "/products/{sku}/", "query", "colour")} <= rows


def test_standard_project_layout_asgi_is_scanned(shop: Path, tmp_path: Path) -> None:
    scan = _bastion(["scan", "--app", "shopsite.asgi:application", "--checks", "injection.xss-reflected", "-q",
                     "--no-history", "--format", "json", "--fail-on", "none", "--out", str(tmp_path)], cwd=shop)
    assert scan.returncode == 0, scan.stdout + scan.stderr
    findings = json.loads((tmp_path / "findings.json").read_text())["findings"]
    assert {(f["check_id"], f["location"]["path"]) for f in findings} == {("injection.xss-reflected", "/hi/")}


def test_allowed_hosts_without_the_scan_host_is_a_configuration_error(shop: Path) -> None:
    done = _bastion(["scan", "--app", "shopsite.wsgi:application", "-q", "--no-history"], cwd=shop,
                    extra_env={"SHOP_ALLOWED_HOSTS": "shop.example"})
    assert done.returncode == 2
    message = done.stdout + done.stderr
    assert "ALLOWED_HOSTS" in message and "'bastion.local'" in message and "Traceback" not in message
