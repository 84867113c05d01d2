"""Integrations: webhook test delivery, settings and rules imports, the staff directory, the product
catalog feed, search analytics and report archiving — and an internal inventory service.

Runtime-injection flaws live here, each next to its safe twin behind `planted(...)`:
`webhook_ssrf`, `pickle_import`, `yaml_load`, `ldap_injection`, `xpath_injection`, `blind_sqli`,
`blind_command_injection`. The internal service is a loopback HTTP listener the app itself calls
(`GET /api/integrations/status`); a forged webhook can reach it, which is what SSRF is about.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import pickle
import re
import socket
import sqlite3
import subprocess
import threading
import urllib.error
import urllib.request
import weakref
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import yaml
from flask import Blueprint, Flask, current_app, jsonify, request
from ldap3 import MOCK_SYNC, OFFLINE_SLAPD_2_4, Connection, Server
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from lxml import etree

from bastion.demo.flask_app import login_required, planted, state

integrations_bp = Blueprint("integrations", __name__)

_ARCHIVE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_MAX_BLOB = 64_000
_FETCH_TIMEOUT_S = 3.0
_INTERNAL_KEY = "bastion_demo.internal_service"
# No proxies from the environment: the demo's own calls stay on this machine.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_DIRECTORY_BASE = "ou=people,dc=democorp,dc=example"
_PEOPLE = (
    ("alice", "Alice Liddell", "alice@democorp.example", "Finance"),
    ("bob", "Bob Builder", "bob@democorp.example", "Sales"),
    ("carol", "Carol Danvers", "carol@democorp.example", "Engineering"),
)
_CATALOG = etree.fromstring(
    b"<catalog>"
    b"<product sku='SKU-1001'><name>Blue mug</name><stock>12</stock></product>"
    b"<product sku='SKU-1002'><name>Green notebook</name><stock>40</stock></product>"
    b"<product sku='SKU-1003'><name>Desk lamp</name><stock>3</stock></product>"
    b"</catalog>"
)


# --- the internal inventory service (loopback only) ------------------------------------------------


class _InventoryHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = json.dumps({"service": "inventory", "status": "ok", "warehouses": 2}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base class signature
        return


def internal_service_url(app: Flask) -> str:
    """The inventory service's base URL, started on first use and stopped with the app."""
    with _START_LOCK:
        server = app.extensions.get(_INTERNAL_KEY)
        if server is None:
            server = ThreadingHTTPServer(("127.0.0.1", 0), _InventoryHandler)
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
                             name="demo-inventory").start()
            app.extensions[_INTERNAL_KEY] = server
            weakref.finalize(app, _stop, server)
    return f"http://127.0.0.1:{server.server_address[1]}"


_START_LOCK = threading.Lock()


def _stop(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


@integrations_bp.get("/api/integrations/status")
def integrations_status() -> Any:
    url = internal_service_url(current_app._get_current_object())  # type: ignore[attr-defined]
    try:
        with _OPENER.open(url + "/health", timeout=_FETCH_TIMEOUT_S) as resp:
            inventory = json.loads(resp.read(10_000))
    except (OSError, ValueError):
        inventory = {"status": "unreachable"}
    return jsonify(inventory=inventory.get("status", "unknown"))


# --- webhooks: test delivery -------------------------------------------------------------------------


@integrations_bp.post("/api/webhooks/test")
@login_required
def webhook_test() -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error="expected a JSON object"), 400
    url = str(body.get("url", ""))
    if planted("webhook_ssrf"):
        target = url  # "it's only a test ping": any URL, redirects followed
    else:
        refusal = _refuse_destination(url)
        if refusal is not None:
            return jsonify(error=refusal), 400
        target = url
    payload = json.dumps({"event": "webhook.test", "data": {}}).encode()
    try:
        # Any scheme when the flaw is planted; the safe twin checked https and the address above.
        req = urllib.request.Request(target, data=payload, headers={"Content-Type": "application/json"})  # noqa: S310
        opener = _OPENER if planted("webhook_ssrf") else _NO_REDIRECTS
        with opener.open(req, timeout=_FETCH_TIMEOUT_S) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError):
        return jsonify(delivered=False, error="the endpoint could not be reached"), 502
    return jsonify(delivered=200 <= status < 300, status=status)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is the receiver's answer, not a new destination


_NO_REDIRECTS = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def _refuse_destination(url: str) -> str | None:
    """Why a webhook URL may not be called: https only, and every address it resolves to is public."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or len(url) > 500:
        return "webhook URLs must be https:// URLs"
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError:
        return "the webhook host does not resolve"
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not address.is_global:
            return "webhook URLs must point to a public address"
    return None


# --- imports: preferences (pickle) and automation rules (YAML) ----------------------------------------


@integrations_bp.post("/api/preferences/import")
def import_preferences() -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error="expected a JSON object"), 400
    blob = str(body.get("blob", ""))
    if len(blob) > _MAX_BLOB:
        return jsonify(error="blob too large"), 413
    try:
        raw = base64.b64decode(blob, validate=True)
        # The export used to be a pickled dict; old clients still send those.
        prefs = pickle.loads(raw) if planted("pickle_import") else json.loads(raw)
    except Exception:  # a malformed blob is the client's mistake, whatever the loader raised
        return jsonify(error="not a preferences export"), 400
    if not isinstance(prefs, dict):
        return jsonify(error="not a preferences export"), 400
    return jsonify(imported=sorted(str(k) for k in prefs)[:50])


@integrations_bp.post("/api/rules/import")
def import_rules() -> Any:
    text = request.get_data(as_text=True)
    if len(text) > _MAX_BLOB:
        return jsonify(error="document too large"), 413
    try:
        # The unsafe loader "because the rules use custom tags".
        rules = yaml.load(text, Loader=yaml.Loader) if planted("yaml_load") else yaml.safe_load(text)  # noqa: S506
    except Exception:  # YAMLError, or whatever the unsafe loader's constructors raised
        return jsonify(error="not a YAML document"), 400
    if not isinstance(rules, list):
        return jsonify(error="expected a list of rules"), 400
    return jsonify(imported=len(rules))


# --- staff directory (LDAP) ----------------------------------------------------------------------------


def _directory() -> Connection:
    """An offline directory (ldap3's mock server) with the staff entries."""
    server = Server("directory.democorp.example", get_info=OFFLINE_SLAPD_2_4)
    conn = Connection(server, user="cn=reader,dc=democorp,dc=example", password="reader",
                      client_strategy=MOCK_SYNC)
    conn.strategy.add_entry("cn=reader,dc=democorp,dc=example", {"userPassword": "reader", "sn": "reader"})
    for uid, name, mail, department in _PEOPLE:
        conn.strategy.add_entry(f"cn={uid},{_DIRECTORY_BASE}", {
            "objectClass": ["inetOrgPerson"], "cn": uid, "sn": name.split()[-1], "displayName": name,
            "mail": mail, "departmentNumber": department})
    conn.bind()
    return conn


@integrations_bp.get("/api/directory")
def directory_lookup() -> Any:
    name = request.args.get("name", "")
    if not name or len(name) > 100:
        return jsonify(error="give a name to look up"), 400
    value = name if planted("ldap_injection") else escape_filter_chars(name)
    conn = _directory()
    try:
        conn.search(_DIRECTORY_BASE, f"(&(objectClass=inetOrgPerson)(cn={value}))",
                    attributes=["cn", "displayName", "mail"])
    except LDAPException:
        return jsonify(error="invalid search"), 400
    people = sorted(({"name": str(e.displayName), "mail": str(e.mail)} for e in conn.entries),
                    key=lambda p: p["name"])
    return jsonify(people=people)


# --- product catalog feed (XPath) ----------------------------------------------------------------------


@integrations_bp.get("/api/catalog/lookup")
def catalog_lookup() -> Any:
    sku = request.args.get("sku", "")
    if not sku or len(sku) > 100:
        return jsonify(error="give a sku"), 400
    try:
        if planted("xpath_injection"):
            found = _CATALOG.xpath(f"//product[@sku='{sku}']")
        else:
            found = _CATALOG.xpath("//product[@sku=$sku]", sku=sku)
    except (etree.XPathError, ValueError):  # ValueError: lxml refuses control characters in strings
        return jsonify(error="invalid sku"), 400
    items = [{"sku": p.get("sku"), "name": p.findtext("name"), "stock": int(p.findtext("stock") or 0)}
             for p in found if isinstance(p, etree._Element)]
    return jsonify(products=items)


# --- search analytics (blind SQL) ----------------------------------------------------------------------


@integrations_bp.get("/api/catalog/search")
def catalog_search() -> Any:
    q = request.args.get("q", "")[:100]
    path = state().workspace.db.path
    with sqlite3.connect(path, timeout=10) as conn:
        rows = conn.execute("SELECT name FROM products WHERE name LIKE ? ORDER BY name LIMIT 20",
                            (f"%{q}%",)).fetchall()
        _record_search(conn, q)
    return jsonify(results=[r[0] for r in rows])


def _record_search(conn: sqlite3.Connection, q: str) -> None:
    """Popularity metering: best effort, the result is not used by the response."""
    try:
        if planted("blind_sqli"):
            conn.execute(f"SELECT count(*) FROM products WHERE name LIKE '%{q}%'").fetchone()  # noqa: S608
        else:
            conn.execute("SELECT count(*) FROM products WHERE name LIKE ?", (f"%{q}%",)).fetchone()
    except (sqlite3.Error, ValueError):
        pass


# --- report archiving (blind command) -------------------------------------------------------------------


@integrations_bp.post("/api/archives")
def archive_report() -> Any:
    name = request.form.get("name", "")
    scratch = state().workspace.root
    if planted("blind_command_injection"):
        # Fire and forget: the archiver's output is thrown away and nobody waits for it.
        proc = subprocess.Popen(f"echo archiving {name} > /dev/null", shell=True, cwd=scratch,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        if not _ARCHIVE_NAME.match(name):
            return jsonify(error="invalid archive name"), 400
        proc = subprocess.Popen(["echo", "archiving", name], cwd=scratch, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    threading.Thread(target=proc.wait, daemon=True).start()  # reaped in the background
    return jsonify(queued=True), 202
