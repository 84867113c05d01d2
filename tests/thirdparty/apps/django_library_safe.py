"""The library's well-built twin: the same single-file Django project with every flaw done right.

Scanned as `bastion scan --app tests.thirdparty.apps.django_library_safe:application`; it must scan
clean (nothing above info). Its own process: Django's settings are process-wide.
"""

from __future__ import annotations

from collections.abc import Callable

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="library-safe-test-key",
    ALLOWED_HOSTS=["bastion.local", "127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
    MIDDLEWARE=[
        "django.middleware.security.SecurityMiddleware",  # nosniff, Referrer-Policy
        f"{__name__}.content_security_policy",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ],
    CSRF_COOKIE_HTTPONLY=True,
    CSRF_COOKIE_SAMESITE="Strict",
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3",
                           "NAME": "file:bastion_django_library_safe?mode=memory&cache=shared"}},
    TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": False}],
    USE_TZ=True,
)
django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect  # noqa: E402
from django.template import engines  # noqa: E402
from django.urls import path  # noqa: E402
from django.utils.html import escape  # noqa: E402
from django.utils.http import url_has_allowed_host_and_scheme  # noqa: E402
from django.views.decorators.http import require_http_methods  # noqa: E402

LAYOUT = """<!doctype html><html><head><title>Library</title></head><body>
<nav><a href="/">Books</a> | <a href="/search/?q=django">Search</a> | <a href="/hello/?name=reader">Hello</a>
| <a href="/books/1/">First book</a> | <a href="/go/?next=/">Home again</a>
| <a href="/readers/?name=ada">Readers</a></nav>{}</body></html>"""
MAX_ID = 2**63 - 1


def content_security_policy(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[..., HttpResponse]:
    """A strict CSP on every response (Django 5 has no built-in CSP middleware)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        response.headers.setdefault("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
        return response

    return middleware


def _init_db() -> None:
    call_command("migrate", run_syncdb=True, verbosity=0)  # the auth tables (readers are Django users)
    for username in ("ada", "grace"):
        User.objects.get_or_create(username=username)
    with connection.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS books (id INTEGER PRIMARY KEY, title TEXT, author TEXT)")
        cur.execute("CREATE TABLE IF NOT EXISTS reviews (id INTEGER PRIMARY KEY, book_id INTEGER, body TEXT)")
        cur.execute("DELETE FROM books")
        cur.executemany("INSERT INTO books VALUES (%s, %s, %s)",
                        [(1, "Two Scoops of Django", "Greenfeld"), (2, "Django for APIs", "Vincent")])


def page(body: str, status: int = 200) -> HttpResponse:
    return HttpResponse(LAYOUT.format(body), status=status)


def home(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cur:
        cur.execute("SELECT id, title FROM books ORDER BY id")
        rows = cur.fetchall()
    return page("<ul>" + "".join(f'<li><a href="/books/{i}/">{escape(t)}</a></li>' for i, t in rows) + "</ul>")


def search(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "")
    with connection.cursor() as cur:
        cur.execute("SELECT id, title FROM books WHERE title LIKE %s", [f"%{q}%"])
        rows = cur.fetchall()
    return page(f"<p>{len(rows)} results</p><ul>" + "".join(f"<li>{escape(t)}</li>" for _, t in rows) + "</ul>")


def hello(request: HttpRequest) -> HttpResponse:
    name = request.GET.get("name", "reader")
    template = engines["django"].from_string("<p>Hello {{ name }}!</p>")  # autoescaped
    return page(template.render({"name": name}))


def go(request: HttpRequest) -> HttpResponse:
    target = request.GET.get("next", "/")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/"
    return HttpResponseRedirect(target)


def book(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        page_no = int(request.GET.get("page", "1"))
    except ValueError:
        return page("<p>page must be a number</p>", status=400)
    row = None
    if pk <= MAX_ID:  # sqlite3 cannot bind a larger int (OverflowError): no such book either way
        with connection.cursor() as cur:
            cur.execute("SELECT title, author FROM books WHERE id = %s", [pk])
            row = cur.fetchone()
    if row is None:
        return page("<p>no such book</p>", status=404)
    return page(f"<h1>{escape(row[0])}</h1><p>by {escape(row[1])}</p><p>page {page_no}</p>")


@require_http_methods(["POST"])  # CSRF-protected by CsrfViewMiddleware
def review(request: HttpRequest, pk: int) -> HttpResponse:
    body = request.POST.get("body", "")
    with connection.cursor() as cur:
        cur.execute("INSERT INTO reviews (book_id, body) VALUES (%s, %s)", [pk, body])
    return page("<p>Thanks for your review.</p>")


def readers(request: HttpRequest) -> HttpResponse:
    name = request.GET.get("name", "ada")
    return page(f"<p>{User.objects.filter(username=name).count()} readers</p>")


urlpatterns = [
    path("", home),
    path("search/", search),
    path("hello/", hello),
    path("go/", go),
    path("readers/", readers),
    path("books/<int:pk>/", book),
    path("books/<int:pk>/review/", review),
]

_init_db()
application = get_wsgi_application()
