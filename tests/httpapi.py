"""A real JSON API on 127.0.0.1 for connector tests: five pagination styles, four auth kinds,
fault injection (status bursts, stalls, malformed bodies) and a log of every request.

    with Api(records) as api:
        api.require("bearer", token="t0k")
        api.fail(429, retry_after=1)
        ... api.url + "/cursor/orders" ... api.requests ...
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

STYLES = ("cursor", "next_url", "link", "offset", "page")
_EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass
class Request:
    """One request as the server saw it; `status` is filled in once it is answered."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    at: float  # time.monotonic() on arrival
    status: int | None = None

    @property
    def listing(self) -> bool:
        return self.path.endswith("/orders")


@dataclass(frozen=True)
class _Fault:
    kind: str  # "pass", "fail", "stall" or "malformed"
    status: int = 200
    retry_after: float | None = None
    seconds: float = 0.0


class Api:
    """The server; a context manager that starts it on a free port and stops it on exit."""

    def __init__(
        self, records: list[Any] | None = None, *, page_size: int = 3, token_ttl: float = 3600
    ):
        self.records: list[Any] = list(records or [])
        self.page_size = page_size
        self.token_ttl = token_ttl
        self.requests: list[Request] = []
        self.token_requests = 0
        self.pages_served = 0
        self._auth: dict[str, Any] = {"kind": None}
        self._faults: deque[_Fault] = deque()
        self._tokens: dict[str, float] = {}  # access token -> monotonic expiry
        self._kill: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.api = self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def listings(self) -> list[Request]:
        """The requests for record listings (not the token endpoint)."""
        return [r for r in self.requests if r.listing]

    def __enter__(self) -> Api:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ---- configuration -------------------------------------------------------------------

    def require(self, kind: str, **kw: Any) -> None:
        """Demand auth on listings: bearer(token), api_key(name, value, location="header"),
        basic(username, password) or oauth2(client_id, client_secret, scope=None)."""
        assert kind in ("bearer", "api_key", "basic", "oauth2"), kind
        self._auth = {"kind": kind, **kw}

    def fail(
        self, status: int, *, times: int = 1, retry_after: float | None = None, after: int = 0
    ) -> None:
        """Answer the next `times` listing requests (after `after` normal ones) with `status`."""
        self._queue(after, [_Fault("fail", status, retry_after)] * times)

    def stall(self, seconds: float, *, times: int = 1, after: int = 0) -> None:
        """Sleep `seconds` before answering the next `times` listing requests."""
        self._queue(after, [_Fault("stall", seconds=seconds)] * times)

    def malformed(self, *, times: int = 1, after: int = 0) -> None:
        """Answer the next `times` listing requests with 200 and a truncated JSON body."""
        self._queue(after, [_Fault("malformed")] * times)

    def kill_on_page(self, n: int, pid: int) -> None:
        """SIGKILL `pid` right after the n-th listing page (1-based, faults not counted)
        has been written."""
        self._kill = (n, pid)

    def _queue(self, after: int, faults: list[_Fault]) -> None:
        with self._lock:
            self._faults.extend([_Fault("pass")] * after + faults)

    # ---- behaviour (called from handler threads) ------------------------------------------

    def next_fault(self) -> _Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def authorized(self, request: Request) -> bool:
        auth, headers = self._auth, request.headers
        kind = auth["kind"]
        if kind is None:
            return True
        if kind == "bearer":
            return headers.get("authorization") == f"Bearer {auth['token']}"
        if kind == "api_key":
            if auth.get("location", "header") == "query":
                return bool(request.query.get(auth["name"]) == auth["value"])
            return bool(headers.get(auth["name"].lower()) == auth["value"])
        if kind == "basic":
            return _basic(headers) == (auth["username"], auth["password"])
        token = headers.get("authorization", "").removeprefix("Bearer ")
        with self._lock:
            return self._tokens.get(token, 0.0) > time.monotonic()

    def issue_token(self, form: dict[str, str], headers: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            self.token_requests += 1
        auth = self._auth
        client = _basic(headers) or (form.get("client_id"), form.get("client_secret"))
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        if auth["kind"] != "oauth2" or client != (auth["client_id"], auth["client_secret"]):
            return 401, {"error": "invalid_client"}
        wanted = auth.get("scope")
        if wanted and wanted not in form.get("scope", "").split():
            return 400, {"error": "invalid_scope"}
        token = secrets.token_urlsafe(16)
        with self._lock:
            self._tokens[token] = time.monotonic() + self.token_ttl
        return 200, {"access_token": token, "token_type": "bearer", "expires_in": self.token_ttl}

    def page(self, style: str, query: dict[str, str], base: str) -> tuple[Any, dict[str, str]]:
        """The body and extra headers of one listing page."""
        found = self._selected(query.get("updated_since"))
        size = self.page_size
        if style == "cursor":
            start = _decode(query.get("cursor"))
            more = start + size < len(found)
            cursor = _encode(start + size) if more else None
            return {"data": found[start : start + size], "meta": {"next": cursor}}, {}
        if style == "next_url":
            start = _decode(query.get("after"))
            more = start + size < len(found)
            following = _url(base, query, after=_encode(start + size)) if more else None
            return {"data": found[start : start + size], "links": {"next": following}}, {}
        if style == "link":
            number = int(query.get("page", 1))
            last = max(1, -(-len(found) // size))
            links = {"next": number + 1, "last": last} if number < last else {}
            header = ", ".join(
                f'<{_url(base, query, page=n)}>; rel="{r}"' for r, n in links.items()
            )
            return found[(number - 1) * size : number * size], {"Link": header} if header else {}
        if style == "offset":
            start, limit = int(query.get("offset", 0)), int(query.get("limit", size))
            return {"data": found[start : start + limit]}, {}
        number, per_page = int(query.get("page", 1)), int(query.get("per_page", size))
        return {"data": found[(number - 1) * per_page : number * per_page]}, {}

    def _selected(self, since: str | None) -> list[Any]:
        """Records sorted by (updated_at, id), from `since` on; a record that is not an object
        (or has no updated_at) sorts first and is always served."""
        with self._lock:
            records = list(self.records)
        bound = _instant(since) if since else _EARLIEST
        found = [r for r in records if _updated(r) == _EARLIEST or _updated(r) >= bound]
        return sorted(found, key=_order)

    def served(self) -> None:
        """Count a served page; SIGKILL the watched process if it was the n-th."""
        with self._lock:
            self.pages_served += 1
            n, pid = self._kill or (0, 0)
        if n == self.pages_served:
            os.kill(pid, signal.SIGKILL)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: Api

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up on a stalled answer is expected, not an error


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        request = self._log()
        if request.path != "/oauth/token":
            return self._send(request, 404, {"error": "not found"})
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(parse_qsl(self.rfile.read(length).decode()))
        status, body = self.server.api.issue_token(form, request.headers)
        self._send(request, status, body)

    def do_GET(self) -> None:
        api = self.server.api
        request = self._log()
        style = request.path.removeprefix("/").removesuffix("/orders")
        if style not in STYLES or not request.listing:
            return self._send(request, 404, {"error": "not found"})
        fault = api.next_fault()
        if fault and fault.kind == "fail":
            extra = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after else {}
            return self._send(request, fault.status, {"error": "injected"}, extra)
        if fault and fault.kind == "stall":
            time.sleep(fault.seconds)
        if not api.authorized(request):
            return self._send(request, 401, {"error": "unauthorized"})
        try:
            base = f"{api.url}{request.path}"
            body, headers = api.page(style, request.query, base)
        except ValueError as err:
            return self._send(request, 400, {"error": str(err)})
        if fault and fault.kind == "malformed":
            text = json.dumps(body)
            return self._send(request, 200, text[: len(text) // 2], headers)
        self._send(request, 200, body, headers)
        if fault is None or fault.kind == "pass":  # not a stalled answer: its client gave up
            api.served()

    def _log(self) -> Request:
        parts = urlsplit(self.path)
        request = Request(
            self.command,
            parts.path,
            dict(parse_qsl(parts.query)),
            {k.lower(): v for k, v in self.headers.items()},
            time.monotonic(),
        )
        with self.server.api._lock:
            self.server.api.requests.append(request)
        return request

    def _send(
        self, request: Request, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        request.status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


def _basic(headers: dict[str, str]) -> tuple[str, str] | None:
    value = headers.get("authorization", "")
    if not value.startswith("Basic "):
        return None
    user, _, password = base64.b64decode(value[6:]).decode().partition(":")
    return user, password


def _encode(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _decode(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode().removeprefix("offset:"))
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"bad cursor {cursor!r}") from err


def _url(base: str, query: dict[str, str], **changes: Any) -> str:
    return f"{base}?{urlencode({**query, **changes})}"


def _instant(text: str) -> datetime:
    """An ISO timestamp; a value without an offset is read as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as err:
        raise ValueError(f"updated_since is not an ISO timestamp: {text!r}") from err
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _updated(record: Any) -> datetime:
    if not isinstance(record, dict) or not isinstance(record.get("updated_at"), str):
        return _EARLIEST
    return _instant(record["updated_at"])


def _order(record: Any) -> tuple[Any, ...]:
    key = record.get("id") if isinstance(record, dict) else None
    return (_updated(record), 0, key) if isinstance(key, int) else (_updated(record), 1, str(key))
