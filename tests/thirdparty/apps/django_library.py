"""A small, deliberately vulnerable single-file Django project (a book library), written in a hurry.

Scanned as `bastion scan --app tests.thirdparty.apps.django_library:application`. Settings are
configured in this module (a real project's wsgi.py sets DJANGO_SETTINGS_MODULE instead); Django's
settings are process-wide, so each Django project is scanned in its own process.
"""

from __future__ import annotations

import django
from django.conf import settings

settings.configure(
    DEBUG=True,  # FLAW: debug error pages with tracebacks and settings
    SECRET_KEY="library-dev-key-not-for-production",
    ALLOWED_HOSTS=["bastion.local", "127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
    # FLAW: no SecurityMiddleware (nosniff, Referrer-Policy) and no XFrameOptionsMiddleware.
    MIDDLEWARE=["django.middleware.common.CommonMiddleware", "django.middleware.csrf.CsrfViewMiddleware"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3",
                           "NAME": "file:bastion_django_library?mode=memory&cache=shared"}},
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
from django.utils.safestring import mark_safe  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402
from django.views.decorators.http import require_http_methods  # noqa: E402

LAYOUT = """<!doctype html><html><head><title>Library</title></head><body>
<nav><a href="/">Books</a> | <a href="/search/?q=django">Search</a> | <a href="/hello/?name=reader">Hello</a>
| <a href="/books/1/">First book</a> | <a href="/go/?next=/">Home again</a>
| <a href="/readers/?name=ada">Readers</a></nav>{}</body></html>"""


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


def page(body: str) -> HttpResponse:
    return HttpResponse(LAYOUT.format(body))


def home(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cur:
        cur.execute("SELECT id, title FROM books ORDER BY id")
        rows = cur.fetchall()
    return page("<ul>" + "".join(f'<li><a href="/books/{i}/">{escape(t)}</a></li>' for i, t in rows) + "</ul>")


def search(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "")
    with connection.cursor() as cur:
        # FLAW: SQL built with an f-string
        cur.execute(f"SELECT id, title FROM books WHERE title LIKE '%{q}%'")
        rows = cur.fetchall()
    return page(f"<p>{len(rows)} results</p><ul>" + "".join(f"<li>{escape(t)}</li>" for _, t in rows) + "</ul>")


def hello(request: HttpRequest) -> HttpResponse:
    name = request.GET.get("name", "reader")
    # FLAW: |safe on a query parameter
    template = engines["django"].from_string("<p>Hello {{ name|safe }}!</p>")
    return page(template.render({"name": name}))


def go(request: HttpRequest) -> HttpResponse:
    # FLAW: redirects wherever `next` says
    return HttpResponseRedirect(request.GET.get("next", "/"))


def book(request: HttpRequest, pk: int) -> HttpResponse:
    page_no = int(request.GET.get("page", "1"))  # a non-number crashes: DEBUG shows the traceback
    with connection.cursor() as cur:
        cur.execute("SELECT title, author FROM books WHERE id = %s", [pk])
        row = cur.fetchone()
    if row is None:
        return HttpResponse("no such book", status=404)
    return page(f"<h1>{escape(row[0])}</h1><p>by {escape(row[1])}</p><p>page {page_no}</p>"
                f'<form method="post" action="/books/{pk}/review/"><textarea name="body"></textarea>'
                "<button>Review</button></form>")


@csrf_exempt  # FLAW: a state-changing POST without CSRF protection
@require_http_methods(["POST"])
def review(request: HttpRequest, pk: int) -> HttpResponse:
    body = request.POST.get("body", "")
    with connection.cursor() as cur:
        cur.execute("INSERT INTO reviews (book_id, body) VALUES (%s, %s)", [pk, body])
    return HttpResponse(mark_safe(f"<p>Thanks for reviewing book {pk}.</p>"))


def readers(request: HttpRequest) -> HttpResponse:
    name = request.GET.get("name", "ada")
    # FLAW: raw SQL through the ORM, built with an f-string
    found = list(User.objects.raw(f"SELECT id, username FROM auth_user WHERE username = '{name}'"))
    return page(f"<p>{len(found)} readers</p>")


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
