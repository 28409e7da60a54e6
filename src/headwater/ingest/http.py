"""The HTTP connector: a JSON API read page by page with httpx.

Every request goes through one place (`_Session.get`): the rate limit, retries with
exponential backoff and jitter on timeouts, 429 and 5xx (a `Retry-After` is honoured), and
errors that name the page and never a secret. Records stay nested: each one travels as its
JSON text to the conform pass, which types STRUCT and LIST columns in SQL.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson
import pyarrow as pa
import tenacity

from headwater.contracts.connectors import (
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    CursorPagination,
    HttpConnector,
    LinkHeaderPagination,
    NextUrlPagination,
    OAuth2Auth,
    OffsetPagination,
    PagePagination,
)
from headwater.contracts.secrets import Secrets
from headwater.contracts.thresholds import parse_duration
from headwater.errors import SourceError, TimedOut, TransientSourceError
from headwater.ingest.source import (
    JSON,
    LINE,
    ORIGIN,
    RECORD,
    Checkpoint,
    Part,
    Rejected,
    cursor_text,
)

PART_RECORDS = 100_000  # records gathered from pages before one conform pass ...
PART_BYTES = 8 << 20  # ... or this much JSON text, whichever comes first
MAX_RETRY_AFTER = 600.0
_RETRY_STATUS = {429, 500, 502, 503, 504}


class HttpReader:
    """One run of an HTTP connector: every page from the first (or from `since`)."""

    def __init__(self, connector: HttpConnector, *, state: Checkpoint, secrets: Secrets) -> None:
        self.connector = connector
        self.rejected = Rejected()
        self.warnings: list[str] = []
        self.already_landed = 0
        self.direct = None
        self._state = state
        self.key = f"{connector.url}|since={cursor_text(state.since)}"
        self.pages = 0
        self.deadline: float | None = None  # time.monotonic(): ask for no page after it
        self._since = state.since
        self._secrets = secrets

    def parts(self) -> Iterator[Part]:
        lines: list[bytes] = []
        positions: list[int] = []
        origin_of: list[int] = []
        origins: list[str] = []
        size = 0
        with _Session(self.connector, self._secrets) as session:
            for shown, records in self._pages(session):
                origins.append(shown)
                with _no_gc():
                    page = [orjson.dumps(r) for r in records]
                lines.extend(page)
                size += sum(map(len, page))
                positions.extend(range(1, len(records) + 1))
                origin_of.extend([len(origins) - 1] * len(records))
                if len(lines) >= PART_RECORDS or size >= PART_BYTES:
                    yield _part(lines, positions, origin_of, origins)
                    lines, positions, origin_of, origins, size = [], [], [], [], 0
        if lines:
            yield _part(lines, positions, origin_of, origins)

    def checkpoint(self) -> Checkpoint:
        return self._state  # where it stands is the cursor, which landing sets from the data

    def describe(self) -> str:
        since = f" since {_param_text(self._since)}" if self._since is not None else ""
        return f"{self.pages:,} page{'s' * (self.pages != 1)}{since}"

    def _pages(self, session: _Session) -> Iterator[tuple[str, list[Any]]]:
        c = self.connector
        url = self._secrets.expand(c.url, where="connector.url")
        params: dict[str, Any] = {
            k: self._secrets.expand(v, where=f"connector.params.{k}") if isinstance(v, str) else v
            for k, v in c.params.items()
        }
        if c.incremental is not None and self._since is not None:
            params[c.incremental.param or ""] = _param_text(self._since)
        paging = c.pagination
        if isinstance(paging, OffsetPagination):
            params.setdefault(paging.param, 0)
            params[paging.limit_param] = paging.limit
        elif isinstance(paging, PagePagination):
            params.setdefault(paging.param, paging.start)
            if paging.size_param and paging.size:
                params[paging.size_param] = paging.size
        asked: set[str] = set()
        while True:
            if self.deadline is not None and time.monotonic() > self.deadline:
                raise TimedOut(
                    f"the landing ran past its timeout after {self.pages:,} page(s) and was "
                    "stopped; nothing was committed (the next landing starts from the same "
                    "checkpoint)",
                    hint="set a longer `timeout:` in the contract, or headwater.yml's "
                    "defaults.timeout",
                )
            response = session.get(url, params)
            shown = session.shown(response.request.url)
            if shown in asked:
                raise SourceError(
                    f"{shown}: pagination did not advance (this page was already read)",
                    hint="check connector.pagination against the API's documentation",
                )
            asked.add(shown)
            body = _json(response, shown)
            records = _records(body, c.records, shown)
            self.pages += 1
            yield shown, records
            step = _next(paging, body, response, records, params)
            if step is None:
                return
            url, params = step


def _next(
    paging: Any, body: Any, response: httpx.Response, records: list[Any], params: dict[str, Any]
) -> tuple[str, dict[str, Any]] | None:
    """The next request (URL and query) the pagination style asks for, or None at the end."""
    url = str(response.request.url.copy_with(query=None))
    if paging is None:
        return None
    if isinstance(paging, CursorPagination):
        token = _at(body, paging.path)
        return (url, {**params, paging.param: token}) if token not in (None, "") else None
    if isinstance(paging, NextUrlPagination):
        link = _at(body, paging.path)
        return (str(response.request.url.join(link)), {}) if link else None
    if isinstance(paging, LinkHeaderPagination):
        link = response.links.get(paging.rel, {}).get("url")
        return (str(response.request.url.join(link)), {}) if link else None
    if isinstance(paging, OffsetPagination):
        if len(records) < paging.limit:
            return None
        return url, {**params, paging.param: int(params[paging.param]) + paging.limit}
    assert isinstance(paging, PagePagination)
    if not records or (paging.size is not None and len(records) < paging.size):
        return None
    return url, {**params, paging.param: int(params[paging.param]) + 1}


class _Session:
    """An httpx client with the connector's auth, rate limit, retries and timeout."""

    def __init__(self, connector: HttpConnector, secrets: Secrets) -> None:
        self.connector = connector
        self.secrets = secrets
        self.interval = 1.0 / connector.rate_limit if connector.rate_limit else 0.0
        self.next_at = 0.0
        headers = {
            k: secrets.expand(v, where=f"connector.headers.{k}")
            for k, v in connector.headers.items()
        }
        self.client = httpx.Client(
            headers=headers,
            auth=_auth(connector.auth, secrets),
            timeout=parse_duration(connector.timeout),
            follow_redirects=True,
        )
        self.hidden = _query_secret(connector.auth)

    def __enter__(self) -> _Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def shown(self, url: httpx.URL) -> str:
        """The page as errors and `_hw_source` show it: no credentials in it."""
        if self.hidden:
            url = url.copy_remove_param(self.hidden)
        return self.secrets.scrub(f"GET {url}")

    def get(self, url: str, params: dict[str, Any]) -> httpx.Response:
        """GET with retries on timeouts, 429 and 5xx (waiting `Retry-After` when given)."""
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.connector.retries + 1),
            wait=_wait(parse_duration(self.connector.backoff)),
            retry=tenacity.retry_if_exception_type(_Retry),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._once(url, params)
        except _Retry as err:
            raise TransientSourceError(
                f"{self.shown(err.url)}: {err.reason} (after {self.connector.retries + 1} "
                "attempts)",
                hint="nothing of this batch was landed; the next run starts from the same "
                "checkpoint (raise connector.retries or connector.timeout if this recurs)",
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(self, url: str, params: dict[str, Any]) -> httpx.Response:
        self._pace()
        # no params at all for a next URL: an empty dict would drop the query it carries
        request = self.client.build_request("GET", url, params=params or None)
        try:
            response = self.client.send(request)
        except httpx.TimeoutException:
            raise _Retry(request.url, f"timed out after {self.connector.timeout}") from None
        except httpx.TransportError as err:
            raise _Retry(request.url, f"connection failed: {err}") from None
        if response.status_code in _RETRY_STATUS:
            raise _Retry(
                request.url,
                f"HTTP {response.status_code} {response.reason_phrase}",
                retry_after=_retry_after(response),
            )
        if response.status_code >= 400:
            detail = self.secrets.scrub(response.text[:200].strip())
            auth = " — check connector.auth" if response.status_code in (401, 403) else ""
            raise SourceError(
                f"{self.shown(request.url)}: HTTP {response.status_code} "
                f"{response.reason_phrase}{auth}" + (f": {detail}" if detail else ""),
                hint="nothing of this batch was landed",
            )
        return response

    def _pace(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        if self.next_at > now:
            time.sleep(self.next_at - now)
        self.next_at = max(now, self.next_at) + self.interval


class _Retry(Exception):
    """A request that may succeed if tried again."""

    def __init__(self, url: httpx.URL, reason: str, *, retry_after: float | None = None):
        super().__init__(reason)
        self.url = url
        self.reason = reason
        self.retry_after = retry_after


def _wait(backoff: float) -> Any:
    jittered = tenacity.wait_random_exponential(multiplier=backoff, max=60)

    def wait(state: tenacity.RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, _Retry) and failure.retry_after is not None:
            return min(failure.retry_after, MAX_RETRY_AFTER)
        return float(jittered(state))

    return wait


def _retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds: a number of seconds or an HTTP date."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


# ---- auth -------------------------------------------------------------------------------------


def _auth(spec: Any, secrets: Secrets) -> httpx.Auth | None:
    if spec is None:
        return None
    where = f"connector.auth ({spec.kind})"
    if isinstance(spec, BearerAuth):
        return _Header("Authorization", "Bearer " + secrets.expand(spec.token, where=where))
    if isinstance(spec, ApiKeyAuth):
        value = secrets.expand(spec.value, where=where)
        if spec.location == "query":
            return _QueryParam(spec.name, value)
        return _Header(spec.name, value)
    if isinstance(spec, BasicAuth):
        return httpx.BasicAuth(
            secrets.expand(spec.username, where=where), secrets.expand(spec.password, where=where)
        )
    assert isinstance(spec, OAuth2Auth)
    return _ClientCredentials(spec, secrets)


def _query_secret(spec: Any) -> str | None:
    return spec.name if isinstance(spec, ApiKeyAuth) and spec.location == "query" else None


class _Header(httpx.Auth):
    def __init__(self, name: str, value: str) -> None:
        self.name, self.value = name, value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self.name] = self.value
        yield request


class _QueryParam(httpx.Auth):
    def __init__(self, name: str, value: str) -> None:
        self.name, self.value = name, value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.url = request.url.copy_set_param(self.name, self.value)
        yield request


class _ClientCredentials(httpx.Auth):
    """OAuth2 client credentials: one token reused until shortly before it expires, and
    fetched again when it expires early (a 401)."""

    requires_response_body = True

    def __init__(self, spec: OAuth2Auth, secrets: Secrets) -> None:
        where = "connector.auth (oauth2)"
        self.spec = spec
        self.client_id = secrets.expand(spec.client_id, where=where)
        self.client_secret = secrets.expand(spec.client_secret, where=where)
        self.token_url = secrets.expand(spec.token_url, where=where)
        self.secrets = secrets
        self.token: str | None = None
        self.expires_at = 0.0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.token is None or time.monotonic() >= self.expires_at:
            self._take((yield self._token_request()))
        request.headers["Authorization"] = f"Bearer {self.token}"
        response = yield request
        if response.status_code == 401:
            self._take((yield self._token_request()))
            request.headers["Authorization"] = f"Bearer {self.token}"
            yield request

    def _token_request(self) -> httpx.Request:
        form = {"grant_type": "client_credentials", "client_id": self.client_id}
        if self.spec.scope:
            form["scope"] = self.spec.scope
        request = httpx.Request("POST", self.token_url, data=form)
        request.headers.update(
            httpx.BasicAuth(self.client_id, self.client_secret)
            .auth_flow(request)
            .__next__()
            .headers
        )
        return request

    def _take(self, response: httpx.Response) -> None:
        if response.status_code >= 400:
            raise SourceError(
                f"cannot get an OAuth2 token from {self.token_url}: HTTP {response.status_code} "
                f"{response.reason_phrase}",
                hint="check connector.auth client_id, client_secret and scope",
            )
        try:
            payload = response.json()
            self.token = str(payload["access_token"])
        except (ValueError, KeyError, TypeError):
            raise SourceError(
                f"the OAuth2 token response of {self.token_url} has no access_token",
                hint="check connector.auth.token_url",
            ) from None
        self.secrets.remember(self.token)
        ttl = float(payload.get("expires_in") or 3600)
        self.expires_at = time.monotonic() + ttl - min(30.0, ttl / 10)


# ---- bodies -----------------------------------------------------------------------------------


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cycle collector while a page's records are made and dropped: they hold no
    cycles, and a collection pass over a large process per page costs more than the parse."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _json(response: httpx.Response, shown: str) -> Any:
    try:
        with _no_gc():
            return orjson.loads(response.content)
    except orjson.JSONDecodeError as err:
        raise SourceError(
            f"{shown}: the response is not valid JSON ({err})",
            hint="nothing of this batch was landed; the next run starts from the same checkpoint",
        ) from None


def _records(body: Any, path: str, shown: str) -> list[Any]:
    records = _at(body, path) if path else body
    if records is None:
        records = []
    if not isinstance(records, list):
        keys = ", ".join(sorted(body)) if isinstance(body, dict) else type(body).__name__
        raise SourceError(
            f"{shown}: no record list at {path or 'the top of the body'!r} (found: {keys})",
            hint="set connector.records to the dotted path of the records, e.g. data",
        )
    return records


def _at(body: Any, path: str) -> Any:
    """The value at a dotted path of a JSON body, or None."""
    for step in path.split("."):
        if not isinstance(body, dict):
            return None
        body = body.get(step)
    return body


def _param_text(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _part(
    lines: list[bytes], positions: list[int], origin_of: list[int], origins: list[str]
) -> Part:
    table = pa.table(
        {
            LINE: pa.array(lines, pa.binary()).cast(pa.string()),
            RECORD: pa.array(positions, pa.int64()),
            ORIGIN: pa.DictionaryArray.from_arrays(
                pa.array(origin_of, pa.int32()), pa.array(origins, pa.string())
            ),
        }
    )
    return Part(table, JSON, origins[0])


def get_json(url: str, *, timeout: float, shown: str, what: str) -> tuple[int, Any]:
    """One GET of a small JSON document (`what`, e.g. a schema registry's schema): its status
    and body (None unless 200). `shown` is the URL as errors may show it.

    Raises:
        TransientSourceError: the server cannot be reached.
    """
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as err:
        raise TransientSourceError(
            f"cannot reach {what} at {shown}: {type(err).__name__}: {err}",
            hint=f"is {what} up? nothing was landed; the next run tries again",
        ) from None
    return response.status_code, (orjson.loads(response.content) if response.is_success else None)
