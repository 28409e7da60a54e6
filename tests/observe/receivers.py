"""Real receivers on 127.0.0.1 for alert channels: an HTTP server that keeps every JSON body
POSTed to it (and can answer with any status, or hold a request open and drop it), and an
SMTP server (aiosmtpd) that keeps every message.

    with HttpReceiver(status=202) as hook, SmtpReceiver() as smtp:
        ... url=hook.url, host=smtp.host, port=smtp.port ...
        assert [b["event_action"] for b in hook.bodies] == ["trigger"]
        assert smtp.messages[0]["Subject"].startswith("[headwater] OPEN")
"""

from __future__ import annotations

import json
import socket
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast


class HttpReceiver:
    """Keeps the JSON bodies it takes. `failing`: answer that many POSTs with 503 first;
    `hanging`: hold each POST open, answering nothing, until `release()` drops it."""

    def __init__(self, status: int = 204, *, port: int = 0) -> None:
        self.status = status
        self.bodies: list[dict[str, Any]] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.failing = 0
        self.hanging = False
        self.held = threading.Event()  # set once a POST is being held
        self._released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append((self.path, dict(self.headers.items())))
                if receiver.hanging:
                    receiver.held.set()
                    receiver._released.wait(60)
                    self.close_connection = True
                    return  # no answer: the connection is dropped
                if receiver.failing:
                    receiver.failing -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.bodies.append(json.loads(body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def release(self) -> None:
        """Drop the requests being held, and answer the next ones."""
        self.hanging = False
        self._released.set()

    def __enter__(self) -> HttpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()


def free_port() -> int:
    """A port nothing listens on (bound and closed again: connecting is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpReceiver:
    """An SMTP server keeping every message; with `users`, it asks for a login (over plain
    text: it is a test on 127.0.0.1)."""

    def __init__(self, users: dict[str, str] | None = None) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []  # (from, to) as the server saw them
        self.logins: list[str] = []
        receiver = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                data = cast(bytes, envelope.content)
                message = message_from_bytes(data, policy=policy.default)
                receiver.messages.append(cast(EmailMessage, message))
                receiver.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
                return "250 OK"

        def authenticate(
            server: Any, session: Any, envelope: Any, mechanism: str, auth: Any
        ) -> Any:
            login = auth.login.decode()
            ok = users is not None and users.get(login) == auth.password.decode()
            if ok:
                receiver.logins.append(login)
            return AuthResult(success=ok)

        self.host = "127.0.0.1"
        self.port = free_port()
        options: dict[str, Any] = {}
        if users is not None:
            options = {
                "authenticator": authenticate,
                "auth_required": True,
                "auth_require_tls": False,
            }
        self._controller = Controller(Handler(), hostname=self.host, port=self.port, **options)

    def __enter__(self) -> SmtpReceiver:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
