"""The secrets vault: versions, rotation, revocation, audited reads, token scopes; HTTP API with httpx
(served on 127.0.0.1 and in-process), and every fault seen by its client."""

from __future__ import annotations

import httpx
import pytest

from bastion.doubles.faults import FaultInjector
from bastion.doubles.vault import SecretNotFound, SecretRevoked, SecretsVault, VaultClient, VaultError


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


def test_versions_rotation_and_revocation() -> None:
    vault = SecretsVault(now=Clock())
    assert vault.put("app/db", {"password": "pw-1", "user": "app"}) == 1
    assert vault.put("app/db", {"password": "pw-2", "user": "app"}) == 2
    assert vault.get("app/db").data["password"] == "pw-2"
    assert vault.get("app/db", version=1).data["password"] == "pw-1"
    assert vault.rotate("app/db") == 3
    rotated = vault.get("app/db").data
    assert set(rotated) == {"password", "user"} and rotated["password"] not in ("pw-1", "pw-2")
    vault.revoke("app/db", version=1)
    with pytest.raises(SecretRevoked):
        vault.get("app/db", version=1)
    assert vault.versions("app/db") == {1: False, 2: True, 3: True}
    with pytest.raises(SecretNotFound):
        vault.get("app/db", version=9)
    with pytest.raises(SecretNotFound):
        vault.rotate("nothing/here")
    assert vault.get("app/db").created_time == "2023-11-14T22:13:20.000000Z"


def test_http_api_with_httpx(vault: SecretsVault) -> None:
    vault.put("app/db", {"password": "pw-1"})
    with httpx.Client(base_url=vault.url, headers={"X-Vault-Token": vault.token}) as http:
        body = http.get("/v1/secret/data/app/db").json()
        assert body["data"]["data"] == {"password": "pw-1"} and body["data"]["metadata"]["version"] == 1
        assert http.post("/v1/secret/data/app/db", json={"data": {"password": "pw-2"}}).json()["data"]["version"] == 2
        assert http.get("/v1/secret/data/app/db", params={"version": 1}).json()["data"]["data"]["password"] == "pw-1"
        assert http.post("/v1/secret/rotate/app/db").json()["data"]["version"] == 3
        assert http.post("/v1/secret/destroy/app/db", json={"versions": [1]}).status_code == 204
        assert http.get("/v1/secret/data/app/db", params={"version": 1}).status_code == 404
        meta = http.get("/v1/secret/metadata/app/db").json()["data"]
        assert meta["current_version"] == 3 and meta["versions"]["1"]["destroyed"] is True
        assert http.get("/v1/sys/health").json()["sealed"] is False
        assert http.get("/v1/secret/data/missing").status_code == 404
        assert http.post("/v1/secret/data/app/db", content=b"not json").status_code == 400
        assert http.post("/v1/secret/data/app/db", content=b"x" * 70_000).status_code == 413
    assert httpx.get(vault.url + "/v1/secret/data/app/db").status_code == 403  # no token
    assert httpx.get(vault.url + "/v1/secret/data/app/db", headers={"X-Vault-Token": "guess"}).status_code == 403


def test_reads_are_audited_without_secret_values(vault: SecretsVault) -> None:
    vault.put("app/db", {"password": "pw-audit"})
    vault.put("billing/key", {"key": "k-1"})
    app_token = vault.add_token("shop-app", read_only=True, paths=["app"])
    with VaultClient(vault.url, app_token) as app:
        assert app.get("app/db").data["password"] == "pw-audit"
        with pytest.raises(VaultError) as denied:
            app.get("billing/key")
        assert denied.value.status == 403
        with pytest.raises(VaultError):
            app.put("app/db", {"password": "mine"})
    reads = vault.reads()
    assert [(e.path, e.actor, e.outcome) for e in reads] == [("app/db", "shop-app", "ok"),
                                                             ("billing/key", "shop-app", "denied")]
    assert ("data", "app/db", "shop-app", "denied") in {(e.operation, e.path, e.actor, e.outcome) for e in vault.audit}
    assert not any(app_token in repr(e) or "pw-audit" in repr(e) for e in vault.audit)


def test_client_in_process_and_served() -> None:
    vault = SecretsVault()
    vault.put("app/api", {"key": "k-1"})
    with vault.client() as local:  # WSGI, no socket
        assert local.get("app/api").data == {"key": "k-1"}
        assert local.rotate("app/api") == 2
        local.revoke("app/api", [2])
        with pytest.raises(VaultError, match="revoked"):
            local.get("app/api")
    with vault.serve(), vault.client() as remote:
        assert remote.url.startswith("http://127.0.0.1:") and remote.health()
        assert remote.get("app/api", version=1).data == {"key": "k-1"}
        assert vault.env() == {"VAULT_ADDR": vault.url, "VAULT_TOKEN": vault.token}


def test_each_fault_is_seen_by_the_served_client(vault: SecretsVault, faults: FaultInjector) -> None:
    vault.put("app/db", {"password": "pw"})
    client = vault.client()
    with faults.outage(vault), pytest.raises(httpx.ConnectError):
        client.get("app/db")
    with faults.reset(vault), pytest.raises(httpx.TransportError):
        client.get("app/db")
    with faults.errors(vault, status=500), pytest.raises(VaultError) as failed:
        client.get("app/db")
    assert failed.value.status == 500
    with faults.dns_failure(vault), pytest.raises(httpx.ConnectError, match="Name or service not known"):
        client.get("app/db")
    with VaultClient(vault.url, vault.token, timeout=0.2) as impatient:
        with faults.latency(vault, 30.0), pytest.raises(httpx.ReadTimeout):
            impatient.get("app/db")
    assert {"reset", "error", "dns", "latency"} <= {i.kind for i in vault.fault_state.injected}
    assert client.get("app/db").data == {"password": "pw"}  # healed
    client.close()


def test_each_fault_is_seen_by_the_in_process_client(faults: FaultInjector) -> None:
    vault = SecretsVault()
    vault.put("app/db", {"password": "pw"})
    client = vault.client()
    with faults.outage(vault), pytest.raises(httpx.ConnectError):
        client.get("app/db")
    with faults.reset(vault), pytest.raises(httpx.ReadError):
        client.get("app/db")
    with faults.errors(vault), pytest.raises(VaultError, match="503"):
        client.get("app/db")
    with faults.dns_failure(vault), pytest.raises(httpx.ConnectError):
        client.get("app/db")
    with faults.latency(vault, 0.01):
        assert client.get("app/db").version == 1
    assert [i.kind for i in vault.fault_state.injected] == ["outage", "reset", "error", "dns", "latency"]
    assert client.get("app/db").version == 1
