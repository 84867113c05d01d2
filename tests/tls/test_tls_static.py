"""Static TLS rules: disabled verification in code (verify=False, unverified contexts, hostname checks off)."""

from __future__ import annotations

import pytest

from bastion.static.files import Skipped
from bastion.static.python_scan import analyse_python

VULNERABLE = '''\
import ssl

import requests
import urllib3


def fetch(url):
    return requests.get(url, verify=False)


def legacy_context():
    return ssl._create_unverified_context()


def no_hostname():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def pool():
    return urllib3.PoolManager(cert_reqs="CERT_NONE")


def session():
    s = requests.Session()
    s.verify = False
    return s
'''

HARDENED = '''\
import ssl

import requests
import urllib3


def fetch(url):
    return requests.get(url, timeout=5)


def pinned_context(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def pool():
    return urllib3.PoolManager(cert_reqs="CERT_REQUIRED")


def server_context():
    # A server does not verify client certificates by default: that is not a client-side bypass.
    return ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
'''


def _lines(source: str) -> dict[int, str]:
    skipped: list[Skipped] = []
    findings, _ = analyse_python(source, "client.py", skipped)
    assert not skipped
    return {f.location.line: f.title for f in findings if f.check_id == "static.tls-verify-disabled"}


@pytest.mark.parametrize("line", [8, 12, 17, 18, 23, 28])
def test_disabled_verification_is_found(line: int) -> None:
    assert line in _lines(VULNERABLE), _lines(VULNERABLE)


def test_hardened_client_is_clean() -> None:
    assert _lines(HARDENED) == {}
