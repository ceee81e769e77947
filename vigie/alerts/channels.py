"""The two channels: e-mail through Python's smtplib, and a JSON webhook signed with HMAC-SHA256.

A channel's ``send`` returns nothing when the message was accepted and raises:
- ``Transient`` when the channel is down or busy (connection refused, timeout, SMTP 4xx,
  HTTP 5xx, 408, 429): the alert stays pending and is tried again;
- ``Permanent`` when the receiver refused this message (SMTP 5xx on the recipient or the
  data, HTTP 4xx): the alert is failed, with the reason, and not retried.

Secrets (the SMTP password, the webhook secret) are read when sending, never kept on an
alert, and scrubbed from every error text (``scrub``); the webhook URL, which may carry a
token, is never put in an error either.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import smtplib
import socket
import ssl
from email.message import EmailMessage

SIGNATURE_HEADER = "X-Vigie-Signature"
ALERT_ID_HEADER = "X-Vigie-Alert-Id"


class Transient(Exception):
    """Try again later: the channel is down or busy."""


class Permanent(Exception):
    """The receiver refused this message: retrying would not help."""


def sign(secret: str | bytes, body: bytes) -> str:
    """``sha256=<hex>``: the HMAC-SHA256 of the exact body bytes."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify(secret: str | bytes, body: bytes, header: str) -> bool:
    """What a receiver does: recompute the signature and compare in constant time."""
    return hmac.compare_digest(sign(secret, body), header or "")


def scrub(text: str, secrets: list[str | None]) -> str:
    for s in secrets:
        if s and len(s) >= 3:
            text = text.replace(s, "***")
    return text[:500]


def _env(name: str | None, what: str) -> str | None:
    if name is None:
        return None
    value = os.environ.get(name)
    if not value:
        raise Transient(f"{what}: environment variable {name} is not set")
    return value


class EmailChannel:
    name = "email"

    def __init__(self, smtp) -> None:  # noqa: ANN001  (config.SmtpSettings)
        self.settings = smtp
        self._secrets: list[str | None] = []

    def _server(self) -> tuple[str, int, str | None, str | None]:
        s = self.settings
        if s.conn_id:
            from vigie.airflow_connections import _connection

            try:
                conn = _connection(s.conn_id)
            except Exception as exc:  # noqa: BLE001  (Airflow's own: not found, no metadata database)
                raise Transient(f"SMTP connection '{s.conn_id}' cannot be read: {type(exc).__name__}") from None
            return conn.host, int(conn.port or 25), conn.login or None, conn.password or None
        user = _env(s.user_env, "SMTP user")
        password = _env(s.password_env, "SMTP password")
        return s.host, s.port, user, password

    def secrets(self) -> list[str | None]:
        return list(self._secrets)

    def send(self, message: EmailMessage) -> None:
        host, port, user, password = self._server()
        self._secrets = [password]
        try:
            with smtplib.SMTP(host, port, timeout=self.settings.timeout_s) as smtp:
                smtp.ehlo()
                if self.settings.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                if user:
                    smtp.login(user, password or "")
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = {code for code, _ in exc.recipients.values()}
            reason = "; ".join(f"{rcpt}: {code} {msg.decode(errors='replace')}" for rcpt, (code, msg) in exc.recipients.items())
            raise (Transient if all(400 <= c < 500 for c in codes) else Permanent)(
                scrub(f"SMTP refused the recipient: {reason}", self._secrets)) from None
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            text = scrub(f"SMTP {exc.smtp_code}: {exc.smtp_error.decode(errors='replace')}", self._secrets)
            raise (Transient if 400 <= exc.smtp_code < 500 else Permanent)(text) from None
        except smtplib.SMTPAuthenticationError as exc:
            # a configuration to fix, not a reason to drop the alert: it stays pending
            raise Transient(scrub(f"SMTP authentication failed ({exc.smtp_code})", self._secrets)) from None
        except smtplib.SMTPResponseException as exc:
            raise Transient(scrub(f"SMTP {exc.smtp_code}: {exc.smtp_error.decode(errors='replace')}", self._secrets)) from None
        except (smtplib.SMTPException, OSError, socket.timeout) as exc:
            raise Transient(scrub(f"SMTP server {host}:{port} unreachable: {type(exc).__name__}: {exc}",
                                  self._secrets)) from None


class WebhookChannel:
    name = "webhook"

    def __init__(self, webhook) -> None:  # noqa: ANN001  (config.WebhookSettings)
        self.settings = webhook
        self._secrets: list[str | None] = []

    def _secret(self) -> str:
        s = self.settings
        if s.conn_id:
            from vigie.airflow_connections import connection_secret

            try:
                secret = connection_secret(s.conn_id)
            except Exception as exc:  # noqa: BLE001
                raise Transient(f"webhook connection '{s.conn_id}' cannot be read: {type(exc).__name__}") from None
            if not secret:
                raise Transient(f"webhook connection '{s.conn_id}' has no password (the signing secret)")
            return secret
        return _env(s.secret_env, "webhook secret")  # type: ignore[return-value]

    def secrets(self) -> list[str | None]:
        return list(self._secrets)

    def send(self, alert_id: str, body: bytes) -> None:
        import requests

        secret = self._secret()
        self._secrets = [secret, self.settings.url]
        headers = {"Content-Type": "application/json; charset=utf-8", ALERT_ID_HEADER: alert_id,
                   SIGNATURE_HEADER: sign(secret, body), "User-Agent": "vigie-alerts"}
        try:
            answer = requests.post(self.settings.url, data=body, headers=headers, timeout=self.settings.timeout_s,
                                   allow_redirects=False)
        except requests.Timeout:
            raise Transient("webhook timed out") from None
        except requests.RequestException as exc:
            # requests' messages name the URL, which may carry a token: only the kind of failure
            cause = exc.__context__ or exc.__cause__
            raise Transient(f"webhook unreachable: {type(exc).__name__}"
                            + (f" ({type(cause).__name__})" if cause else "")) from None
        if 200 <= answer.status_code < 300:
            return
        reason = scrub(f"webhook answered HTTP {answer.status_code} {answer.reason or ''}: {answer.text[:200]}".strip(),
                       self._secrets)
        if answer.status_code in (408, 425, 429) or answer.status_code >= 500:
            raise Transient(reason)
        raise Permanent(reason)  # 3xx and 4xx: this request will not be accepted as it is
