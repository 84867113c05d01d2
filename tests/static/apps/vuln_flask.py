"""A small Flask app with one instance of each Python rule (parsed by the tests, never imported)."""

import hashlib
import os
import pickle
import random
import sqlite3
import subprocess

import jwt
import requests
import yaml
from Crypto.Cipher import AES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from flask import Flask, Markup, redirect, render_template_string, request, send_file
from flask_cors import CORS
from flask_wtf.csrf import CSRFProtect
from lxml import etree
from sqlalchemy import text

app = Flask(__name__)
app.config["SECRET_KEY"] = "dev"
app.config["WTF_CSRF_ENABLED"] = False
CORS(app, supports_credentials=True)
csrf = CSRFProtect(app)
IV = b"0123456789abcdef"


def run_report(name):
    return subprocess.check_output("report.sh " + name, shell=True)


@app.get("/orders")
def orders():
    status = request.args.get("status", "")
    sql = "SELECT * FROM orders WHERE status = '%s'" % status  # noqa: UP031 -- the flaw under test
    return str(sqlite3.connect("db").execute(sql).fetchall())


@app.get("/orders/by-customer")
def orders_by_customer(conn=None):
    customer = request.args["customer"]
    return str(conn.execute(text(f"SELECT * FROM orders WHERE customer = '{customer}'")))


@app.post("/report")
def report():
    return run_report(request.form["name"])


@app.get("/hello")
def hello():
    name = request.cookies.get("name", "")
    return render_template_string("Hello {}".format(name))  # noqa: UP032 -- the flaw under test


@app.get("/echo")
def echo():
    return Markup("<b>" + request.args.get("msg", "") + "</b>")


@app.get("/download/<path:filename>")
def download(filename):
    return send_file(os.path.join("/srv/files", filename))


@app.get("/go")
def go():
    return redirect(request.args.get("to"))


@app.post("/calc")
def calc():
    return str(eval(request.get_json()["expr"]))


@app.post("/import")
def import_xml():
    parser = etree.XMLParser(resolve_entities=True)
    return etree.fromstring(request.data, parser).tag


@app.post("/config")
def load_config():
    return str(yaml.load(request.data))


@app.post("/restore")
def restore():
    return str(pickle.loads(request.data))


@app.get("/me")
def me():
    claims = jwt.decode(request.headers["Authorization"], options={"verify_signature": False})
    return claims["sub"]


@app.get("/proxy")
def proxy():
    return requests.get("https://internal.example/api", verify=False).text


@app.post("/login")
@csrf.exempt
def login():
    resp = redirect("/")
    resp.set_cookie("sid", new_session_token())
    return resp


def new_session_token():
    token = "".join(random.choice("abcdef0123456789") for _ in range(32))
    return token


def store_password(password):
    return hashlib.md5(password.encode()).hexdigest()


def encrypt(key, data):
    ecb = AES.new(key, AES.MODE_ECB).encrypt(data)
    cbc = Cipher(algorithms.AES(key), modes.CBC(IV)).encryptor()
    return ecb, cbc


if __name__ == "__main__":
    app.run(debug=True)
