"""A user's own pytest file takes the doubles as fixtures (registered by Bastion's plugin) and fails them;
the `faults` fixture heals every double when the test ends."""

from __future__ import annotations

import pytest

USER_TESTS = '''
import smtplib

import httpx
import pytest

from bastion.doubles.queue import QueueUnavailable

STATE = {}


def test_mail_and_outage(smtp_outbox, faults):
    with smtplib.SMTP(smtp_outbox.host, smtp_outbox.port, timeout=5) as smtp:
        smtp.sendmail("app@x.test", ["alice@x.test"], "Subject: hi\\r\\n\\r\\nhttp://x.test/r?t=1\\r\\n")
    assert smtp_outbox.wait_for(1)[0].subject == "hi"
    faults.outage(smtp_outbox)  # left on: the fixture must heal it
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP(smtp_outbox.host, smtp_outbox.port, timeout=5)
    STATE["smtp"] = smtp_outbox


def test_fault_was_healed_at_teardown():
    assert STATE["smtp"].fault_state.active is None


def test_vault_and_errors(vault, faults):
    vault.put("app/k", {"v": "1"})
    faults.errors(vault)
    assert httpx.get(vault.url + "/v1/secret/data/app/k", headers={"X-Vault-Token": vault.token}).status_code == 503


@pytest.mark.parametrize("message_queue", ["memory"], indirect=True)
def test_queue_in_memory(message_queue, faults):
    message_queue.publish("t", "x")
    with faults.reset(message_queue), pytest.raises(QueueUnavailable):
        message_queue.consume("t")
    assert message_queue.consume("t")[0].body == b"x"


def test_idp_with_faults(oidc_provider, faults):
    with faults.outage(oidc_provider), pytest.raises(httpx.ConnectError):
        httpx.get(oidc_provider.endpoint("jwks"))
'''


def test_a_users_tests_take_and_fail_the_doubles(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest("-q")
    result.assert_outcomes(passed=5)
