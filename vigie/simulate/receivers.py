"""Alert receivers on loopback, for `make demo` and the tests: a real SMTP server (aiosmtpd)
and a real HTTP server for the webhook that verifies ``X-Vigie-Signature``.

Both keep what actually arrived. Either can be stopped and started again on the same port
(an outage), and the webhook can be told which statuses to answer (503 then 200...).
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from collections import deque
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from vigie.alerts.channels import ALERT_ID_HEADER, SIGNATURE_HEADER, verify


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpSink:
    """An SMTP server on 127.0.0.1 that keeps every message it accepts (parsed)."""

    def __init__(self, port: int | None = None, *, user: str | None = None, password: str | None = None) -> None:
        self.port = port or free_port()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.user, self.password = user, password
        # Called with each message it accepts, before it answers: the test of a sender killed
        # between delivering and recording kills it here (delivered, never acknowledged).
        self.on_accept = None
        self._controller = None

    def start(self) -> "SmtpSink":
        from aiosmtpd.controller import Controller

        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN202, N802
                msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
                sink.messages.append(msg)  # type: ignore[arg-type]
                sink.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
                if sink.on_accept:
                    sink.on_accept(msg)
                return "250 OK"

        kwargs: dict = {}
        if self.user:
            def authenticator(server, session, envelope, mechanism, auth_data):  # noqa: ANN001, ANN202
                from aiosmtpd.smtp import AuthResult

                ok = auth_data.login.decode() == sink.user and auth_data.password.decode() == sink.password
                return AuthResult(success=ok, handled=False)

            kwargs = {"authenticator": authenticator, "auth_require_tls": False}
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **kwargs)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> "SmtpSink":
        return self.start()

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        self.stop()

    def by_recipient(self) -> dict[str, list[EmailMessage]]:
        out: dict[str, list[EmailMessage]] = {}
        for msg in self.messages:
            out.setdefault(str(msg["To"]), []).append(msg)
        return out


@dataclass
class Delivery:
    alert_id: str
    signature: str
    body: bytes
    verified: bool
    status: int

    @property
    def json(self) -> dict:
        return json.loads(self.body)


class WebhookSink:
    """An HTTP server on 127.0.0.1 receiving the webhook's POSTs; ``statuses`` is what it
    answers, one per request (then 200); every request is kept, with whether its signature
    verifies with ``secret``."""

    def __init__(self, secret: str, statuses: list[int] | None = None, port: int | None = None) -> None:
        self.secret = secret
        self.statuses: deque[int] = deque(statuses or [])
        self.port = port or free_port()
        self.requests: list[Delivery] = []
        self.on_accept = None  # as SmtpSink's: called with each accepted delivery, before the answer
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/vigie"

    @property
    def accepted(self) -> list[Delivery]:
        return [d for d in self.requests if 200 <= d.status < 300]

    def start(self) -> "WebhookSink":
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = sink.statuses.popleft() if sink.statuses else 200
                signature = self.headers.get(SIGNATURE_HEADER, "")
                ok = verify(sink.secret, body, signature)
                if ok is False and 200 <= status < 300:
                    status = 401  # a receiver refuses what it cannot authenticate
                sink.requests.append(Delivery(self.headers.get(ALERT_ID_HEADER, ""), signature, body, ok, status))
                if sink.on_accept and 200 <= status < 300:
                    sink.on_accept(sink.requests[-1])
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "WebhookSink":
        return self.start()

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        self.stop()
