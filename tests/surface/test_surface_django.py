"""Django URLconf introspection: includes, namespaces, converters, re_path, CBVs, forms, admin.

Django's settings are process-wide, so the project under test is imported in a child process that
prints the introspected surface as JSON; this process never imports Django.
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

PROJECT = textwrap.dedent('''
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False, SECRET_KEY="surface-test", ALLOWED_HOSTS=["bastion.local"], ROOT_URLCONF=__name__,
        INSTALLED_APPS=["django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
                        "django.contrib.sessions", "django.contrib.messages"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    )
    django.setup()

    from django import forms
    from django.contrib import admin
    from django.core.wsgi import get_wsgi_application
    from django.http import HttpResponse
    from django.urls import include, path, re_path
    from django.views import View
    from django.views.decorators.http import require_http_methods
    from django.views.generic.edit import FormView


    class SearchForm(forms.Form):
        term = forms.CharField()
        page = forms.IntegerField(required=False)


    class ContactForm(forms.Form):
        email = forms.EmailField()
        message = forms.CharField()


    def search(request):
        form = SearchForm(request.GET)
        return HttpResponse(str(form.is_valid()))


    @require_http_methods(["GET", "POST"])
    def contact(request):
        form = ContactForm(request.POST or None)
        token = request.headers.get("X-Token")
        return HttpResponse(f"{form.is_valid()} {token}")


    class ItemView(View):
        def get(self, request, item_id):
            return HttpResponse(request.GET.get("fields", ""))

        def delete(self, request, item_id):
            return HttpResponse(status=204)


    class SignupView(FormView):
        form_class = ContactForm
        template_name = "signup.html"


    def archive(request, year, slug):
        return HttpResponse(request.GET["sort"])


    def upload(request):
        return HttpResponse(request.FILES["doc"].name)


    def doc(request, doc_id):
        return HttpResponse(request.COOKIES.get("theme", ""))


    class Books:
        """Shaped like a DRF ViewSet: `as_view({"get": "list", "post": "create"})` sets `cls` and `actions`."""

        def list(self, request):
            return HttpResponse(request.GET.get("ordering", ""))

        def create(self, request):
            return HttpResponse(request.POST.get("title", ""))


    def books(request):
        return HttpResponse()


    books.cls, books.actions = Books, {"get": "list", "post": "create"}

    api = [
        path("books/", books),
        path("items/<int:item_id>/", ItemView.as_view(), name="item"),
        path("docs/<uuid:doc_id>/", doc, name="doc"),
    ]
    urlpatterns = [
        path("search/", search),
        path("contact/", contact),
        path("api/v1/", include((api, "api"), namespace="v1")),
        re_path(r"^archive/(?P<year>[0-9]{4})/(?P<slug>[-\\w]+)/$", archive),
        re_path(r"^legacy/(a|b)/$", archive),
        path("signup/", SignupView.as_view()),
        path("upload/", upload),
        path("admin/", admin.site.urls),
    ]
    application = get_wsgi_application()
''')

DUMP = textwrap.dedent('''
    import json
    from bastion.surface.discover import introspect_app, normalise
    from djsurface_project import application

    surface = normalise(introspect_app(application))
    print(json.dumps([{"method": ep.method, "path": ep.path, "source": ep.source, "file": ep.file,
                       "inputs": [[i.location, i.name, i.kind] for i in ep.inputs]}
                      for ep in surface.entry_points]))
''')


@pytest.fixture(scope="module")
def surface(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict[str, Any]]:
    work: Path = tmp_path_factory.mktemp("djsurface")
    (work / "djsurface_project.py").write_text(PROJECT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(work), os.environ.get("PYTHONPATH", "")])}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run([sys.executable, "-c", DUMP], cwd=work, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return {(ep["method"], ep["path"]): ep for ep in json.loads(done.stdout)}


def _inputs(ep: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {tuple(i) for i in ep["inputs"]}  # type: ignore[misc]


def test_function_view_reads_and_form_fields(surface: dict[tuple[str, str], dict[str, Any]]) -> None:
    ep = surface[("GET", "/search/")]
    assert ep["source"] == "django" and ep["file"] == "djsurface_project.py"
    assert {("query", "term", "string"), ("query", "page", "integer")} <= _inputs(ep)
    assert ("POST", "/search/") not in surface  # reads no body: listed as GET only


def test_require_http_methods_and_post_form(surface: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert {m for m, p in surface if p == "/contact/"} == {"GET", "POST"}
    post = _inputs(surface[("POST", "/contact/")])
    assert {("form", "email", "string"), ("form", "message", "string"), ("header", "X-Token", "string")} <= post
    assert ("header", "X-Token", "string") in _inputs(surface[("GET", "/contact/")])


def test_include_namespace_converters_and_class_based_view(surface: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert {m for m, p in surface if p == "/api/v1/items/{item_id}/"} == {"GET", "DELETE"}
    get = _inputs(surface[("GET", "/api/v1/items/{item_id}/")])
    assert {("path", "item_id", "integer"), ("query", "fields", "string")} <= get
    doc = _inputs(surface[("GET", "/api/v1/docs/{doc_id}/")])
    assert {("path", "doc_id", "string"), ("cookie", "theme", "string")} <= doc


def test_re_path_named_groups_and_unbuildable_regex(surface: dict[tuple[str, str], dict[str, Any]]) -> None:
    ep = surface[("GET", "/archive/{year}/{slug}/")]
    assert {("path", "year", "integer"), ("path", "slug", "string"), ("query", "sort", "string")} <= _inputs(ep)
    assert not [p for _, p in surface if p.startswith("/legacy")]  # an alternation is not one URL


def test_generic_form_view_and_file_upload(surface: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert {("form", "email", "string"), ("form", "message", "string")} <= _inputs(surface[("POST", "/signup/")])
    assert ("multipart", "doc", "file") in _inputs(surface[("POST", "/upload/")])


def test_admin_site_is_listed_but_marked_and_without_inputs(
        surface: dict[tuple[str, str], dict[str, Any]]) -> None:
    admin = [ep for (_, p), ep in surface.items() if p.startswith("/admin/")]
    assert ("GET", "/admin/login/") in surface
    assert admin and all(ep["source"] == "django-admin" for ep in admin)
    assert all(loc == "path" for ep in admin for loc, _, _ in ep["inputs"])
    assert all(ep["source"] == "django" for (_, p), ep in surface.items() if not p.startswith("/admin/"))


def test_viewset_action_map(surface: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert {m for m, p in surface if p == "/api/v1/books/"} == {"GET", "POST"}
    assert ("query", "ordering", "string") in _inputs(surface[("GET", "/api/v1/books/")])
    assert ("form", "title", "string") in _inputs(surface[("POST", "/api/v1/books/")])
