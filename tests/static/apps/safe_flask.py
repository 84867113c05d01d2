"""The hardened twin of vuln_flask.py: same features, no flaw (parsed by the tests, never imported)."""

import hashlib
import json
import os
import secrets
import sqlite3
import subprocess

import jwt
import requests
import yaml
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from flask import Flask, abort, redirect, render_template, request, send_from_directory
from flask_cors import CORS
from lxml import etree
from markupsafe import escape
from sqlalchemy import text
from werkzeug.security import generate_password_hash
from werkzeug.utils import secure_filename

app = Flask(__name__)
app.config["SECRET_KEY"] = os.environ["SECRET_KEY"]
app.config.update(SESSION_COOKIE_SECURE=True, SESSION_COOKIE_HTTPONLY=True)
CORS(app, origins=["https://app.example.com"], supports_credentials=True)
SORTS = {"name": "name", "date": "created_at"}
PUBLIC_KEY = os.environ.get("JWT_PUBLIC_KEY", "")


def run_report(name):
    return subprocess.check_output(["report.sh", name])


@app.get("/orders")
def orders():
    status = request.args.get("status", "")
    order = SORTS.get(request.args.get("sort", ""), "name")
    page = int(request.args.get("page", "1"))
    sql = f"SELECT * FROM orders WHERE status = ? ORDER BY {order} LIMIT 10 OFFSET {page * 10}"
    return str(sqlite3.connect("db").execute(sql, (status,)).fetchall())


@app.get("/orders/by-customer")
def orders_by_customer(conn=None):
    customer = request.args["customer"]
    return str(conn.execute(text("SELECT * FROM orders WHERE customer = :c"), {"c": customer}))


@app.post("/report")
def report():
    name = request.form["name"]
    if not name.isalnum():
        abort(400)
    return run_report(name)


@app.get("/hello")
def hello():
    return render_template("hello.html", name=request.cookies.get("name", ""))


@app.get("/echo")
def echo():
    return "<b>" + str(escape(request.args.get("msg", ""))) + "</b>"


@app.get("/download/<path:filename>")
def download(filename):
    return send_from_directory("/srv/files", secure_filename(filename))


@app.get("/go")
def go():
    return redirect("/account?tab=" + request.args.get("tab", "home"))


@app.post("/import")
def import_xml():
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.fromstring(request.data, parser).tag


@app.post("/config")
def load_config():
    return str(yaml.safe_load(request.data)) + str(yaml.load(request.data, Loader=yaml.SafeLoader))


@app.post("/restore")
def restore():
    return str(json.loads(request.data))


@app.get("/me")
def me():
    claims = jwt.decode(request.headers["Authorization"], PUBLIC_KEY, algorithms=["RS256"])
    return claims["sub"]


@app.get("/proxy")
def proxy():
    return requests.get("https://internal.example/api", timeout=5).text


@app.post("/login")
def login():
    resp = redirect("/")
    resp.set_cookie("sid", new_session_token(), secure=True, httponly=True, samesite="Lax")
    return resp


def new_session_token():
    token = secrets.token_urlsafe(32)
    return token


def store_password(password):
    return generate_password_hash(password)


def etag(body):
    return hashlib.sha1(body, usedforsecurity=False).hexdigest()


def encrypt(key, data):
    iv = os.urandom(16)
    return iv, Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()


if __name__ == "__main__":
    app.run(debug=os.environ.get("FLASK_DEBUG") == "1")
