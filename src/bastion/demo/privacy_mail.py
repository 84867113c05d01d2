"""Demo mail: the welcome mail sent after sign-up, over SMTP when the environment names a server.

The app reads SMTP_HOST and SMTP_PORT when it is built (production configuration; a `--demo` scan wires
Bastion's SMTP outbox double there, bastion.demo.DEMO_DEPENDENCIES). Without them no mail is sent.

Flaw (bastion/demo/flaws.py, privacy area):
- `password_in_welcome_mail`: the welcome mail repeats the password the user chose (twin: it never does).
"""

from __future__ import annotations

import os
import smtplib
from email.message import EmailMessage

from flask import Flask, current_app

_KEY = "bastion_demo.smtp"
SENDER = "no-reply@democorp.example"
SMTP_TIMEOUT_S = 5.0


def configure_mail(app: Flask) -> None:
    """Remember where mail goes (SMTP_HOST / SMTP_PORT from the environment), like a production factory."""
    host, port = os.environ.get("SMTP_HOST"), os.environ.get("SMTP_PORT")
    app.extensions[_KEY] = (host, int(port)) if host and port and port.isdigit() else None


def send_welcome_mail(username: str, email: str, password: str) -> None:
    """Welcome a new account by e-mail; a mail server that is down never fails the sign-up."""
    server = current_app.extensions.get(_KEY)
    if server is None:
        return
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = SENDER, email, "Welcome to DemoCorp"
    lines = [f"Hello {username},", "", "your DemoCorp account is ready. Sign in at /login."]
    if "password_in_welcome_mail" in current_app.extensions["bastion_demo"].flaws:
        lines.append(f"Your password, in case you forget it: {password}")
    msg.set_content("\n".join(lines) + "\n")
    try:
        with smtplib.SMTP(server[0], server[1], timeout=SMTP_TIMEOUT_S) as smtp:
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        current_app.logger.warning("welcome mail not sent: %s", type(exc).__name__)


__all__ = ["configure_mail", "send_welcome_mail"]
