"""The SMTP outbox: real smtplib clients deliver into it; assertions on messages, links and waits; faults."""

from __future__ import annotations

import smtplib
import socket
from email.message import EmailMessage

import pytest

from bastion.doubles.faults import FaultInjector
from bastion.doubles.smtp import SMTPOutbox, parse_message


def reset_mail(to: str = "alice@example.test", token: str = "tok-123") -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "app@shop.test", to, "Reset your password"
    msg.set_content(f"Hello,\nreset it here: http://shop.test/reset?token={token}.\nBye")
    msg.add_alternative(f'<p><a href="http://shop.test/reset?token={token}&amp;lang=en">Reset</a></p>',
                        subtype="html")
    return msg


def send(outbox: SMTPOutbox, msg: EmailMessage, login: tuple[str, str] | None = None) -> None:
    """What an app does: smtplib against the configured host and port."""
    with smtplib.SMTP(outbox.host, outbox.port, timeout=5) as smtp:
        if login:
            smtp.login(*login)
        smtp.send_message(msg)


def test_captures_mail_sent_with_smtplib(smtp_outbox: SMTPOutbox) -> None:
    send(smtp_outbox, reset_mail())
    send(smtp_outbox, reset_mail(to="bob@example.test", token="tok-bob"), login=("mailer", "mailer-pw"))
    messages = smtp_outbox.wait_for(2)
    assert [m.recipients for m in messages] == [("alice@example.test",), ("bob@example.test",)]
    assert messages[0].sender == "app@shop.test" and messages[0].subject == "Reset your password"
    assert "token=tok-123" in messages[0].text and "token=tok-123" in messages[0].html
    assert messages[1].login == "mailer"
    assert b"mailer-pw" not in b"".join(m.raw for m in messages)


def test_find_and_links(smtp_outbox: SMTPOutbox) -> None:
    send(smtp_outbox, reset_mail())
    send(smtp_outbox, reset_mail(to="bob@example.test", token="tok-bob"))
    smtp_outbox.wait_for(2)
    [alice] = smtp_outbox.find(to="ALICE@example.test", subject="Reset")
    assert smtp_outbox.find(to="carol@example.test") == []
    assert smtp_outbox.find(subject="Invoice") == []
    assert [m.recipients[0] for m in smtp_outbox.find(contains="tok-bob")] == ["bob@example.test"]
    # The sentence's full stop is not part of the URL; HTML entities are decoded.
    assert smtp_outbox.links(alice) == ["http://shop.test/reset?token=tok-123",
                                        "http://shop.test/reset?token=tok-123&lang=en"]
    assert "http://shop.test/reset?token=tok-bob" in smtp_outbox.links()
    smtp_outbox.clear()
    assert smtp_outbox.messages == []


def test_wait_for_is_bounded(smtp_outbox: SMTPOutbox) -> None:
    with pytest.raises(TimeoutError, match="expected 1 message"):
        smtp_outbox.wait_for(1, timeout=0.05)


def test_parse_message_tolerates_a_broken_charset() -> None:
    raw = (b"Subject: hi\r\nContent-Type: text/plain; charset=no-such-charset\r\n\r\n"
           b"see https://x.test/a\r\n")
    message = parse_message("a@x.test", ["b@x.test"], raw)
    assert message.subject == "hi" and message.links() == ["https://x.test/a"]


def test_each_fault_is_seen_by_smtplib_and_removed_after(smtp_outbox: SMTPOutbox, faults: FaultInjector) -> None:
    with faults.outage(smtp_outbox), pytest.raises(ConnectionRefusedError):
        send(smtp_outbox, reset_mail())
    with faults.reset(smtp_outbox), pytest.raises((smtplib.SMTPServerDisconnected, ConnectionResetError)):
        send(smtp_outbox, reset_mail())
    with faults.errors(smtp_outbox), pytest.raises(smtplib.SMTPConnectError) as refused:
        send(smtp_outbox, reset_mail())
    assert refused.value.smtp_code == 421
    with faults.dns_failure(smtp_outbox), pytest.raises(socket.gaierror):
        send(smtp_outbox, reset_mail())
    with faults.latency(smtp_outbox, 30.0), pytest.raises((TimeoutError, smtplib.SMTPServerDisconnected)):
        with smtplib.SMTP(smtp_outbox.host, smtp_outbox.port, timeout=0.2):
            pass  # the greeting is held back past the client's timeout
    # (A connection the proxy had not yet seen close may also be counted as cut by the outage.)
    assert {"reset", "error", "dns", "latency"} <= {i.kind for i in smtp_outbox.fault_state.injected}
    assert smtp_outbox.messages == []
    send(smtp_outbox, reset_mail())  # healed
    assert len(smtp_outbox.wait_for(1)) == 1


def test_a_fault_that_drops_the_session_mid_way(smtp_outbox: SMTPOutbox, faults: FaultInjector) -> None:
    with smtplib.SMTP(smtp_outbox.host, smtp_outbox.port, timeout=5) as smtp:
        assert smtp.noop()[0] == 250
        with faults.errors(smtp_outbox, message="mail system down"):
            with pytest.raises((smtplib.SMTPResponseException, smtplib.SMTPServerDisconnected)):
                smtp.send_message(reset_mail())
    assert smtp_outbox.messages == []
