"""The HTTP connector against a real local API: pagination, auth, retries, bad pages and
records, incremental reads and the rate limit."""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pyarrow as pa
import pytest

from headwater.contracts import Contract
from headwater.errors import SourceError, SpecError
from headwater.ingest import http, ingest
from headwater.zones.lake import Lake
from tests.httpapi import Api, Request
from tests.ingest.raw import orders_contract, rows

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
START = datetime(2026, 10, 1, 10, 0, tzinfo=UTC)
SECRET = "s3cr3t-Tok/en+42"  # '/' and '+' change when URL-encoded: scrubbing must catch both
WRONG = "wr0ng-Tok/en+99"
COLUMNS = [
    {"name": "id", "type": "bigint", "nullable": False},
    {"name": "updated_at", "type": "timestamptz"},
    {"name": "customer", "type": "STRUCT(name VARCHAR, tier VARCHAR)"},
    {"name": "items", "type": "STRUCT(sku VARCHAR, qty INTEGER)[]"},
]
PAGINATION: dict[str, tuple[str, dict[str, Any]]] = {
    "cursor": ("data", {"kind": "cursor", "path": "meta.next", "param": "cursor"}),
    "next_url": ("data", {"kind": "next_url", "path": "links.next"}),
    "link": ("", {"kind": "link_header"}),
    "offset": ("data", {"kind": "offset", "param": "offset", "limit_param": "limit", "limit": 3}),
    "page": (
        "data",
        {"kind": "page", "param": "page", "start": 1, "size_param": "per_page", "size": 3},
    ),
}


def record(n: int, *, hours: int | None = None, tier: str = "gold") -> dict[str, Any]:
    when = START + timedelta(hours=n if hours is None else hours)
    return {
        "id": n,
        "updated_at": when.isoformat(),
        "customer": {"name": f"customer {n}", "tier": tier},
        "items": [{"sku": f"sku-{n}", "qty": n}, {"sku": "bag", "qty": 1}],
    }


def contract(api: Api, style: str = "cursor", **connector: Any) -> Contract:
    records, pagination = PAGINATION[style]
    spec = {
        "kind": "http",
        "url": f"{api.url}/{style}/orders",
        "records": records,
        "pagination": pagination,
        "retries": 5,
        "backoff": "0.05s",
        "timeout": "1s",
        **connector,
    }
    return orders_contract(spec, columns=COLUMNS)


@pytest.fixture
def api() -> Iterator[Api]:
    with Api([record(n) for n in range(1, 11)]) as api:
        yield api


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hand pages to landing in parts of 2 records, so a failure on a later page comes after
    earlier parts were already conformed (and must still not be committed)."""
    monkeypatch.setattr(http, "PART_RECORDS", 2)


def ids(lake: Lake) -> list[int]:
    return [r[0] for r in rows(lake, "raw.orders", "id")]


def run(api: Api, lake: Lake, tmp_path: Path, **connector: Any) -> Any:
    return ingest(contract(api, **connector), root=tmp_path, lake=lake, now=NOW)


def gaps(requests: list[Request]) -> list[float]:
    return [b.at - a.at for a, b in itertools.pairwise(requests)]


# ---- pagination ------------------------------------------------------------------------------


@pytest.mark.parametrize("style", list(PAGINATION))
def test_every_pagination_style_lands_each_record_once(
    api: Api, lake: Lake, tmp_path: Path, style: str
) -> None:
    landed = run(api, lake, tmp_path, style=style)
    assert (landed.rows, landed.quarantined) == (10, 0)
    assert ids(lake) == list(range(1, 11))
    got = rows(lake, "raw.orders", "id, updated_at, customer, items, _hw_source, _hw_batch_id")
    second = got[1]
    assert second[1] == START + timedelta(hours=2)
    assert second[2] == {"name": "customer 2", "tier": "gold"}
    assert second[3] == [{"sku": "sku-2", "qty": 2}, {"sku": "bag", "qty": 1}]
    assert f"/{style}/orders" in second[4] and re.search(r"record 2\b", second[4]), second[4]
    assert {r[5] for r in got} == {landed.batch_id}
    schema = lake.schema("raw.orders")
    assert schema is not None
    items = schema.field("items").type
    assert pa.types.is_large_list(items) and pa.types.is_struct(items.value_type), items


# ---- auth ------------------------------------------------------------------------------------


def auth_spec(api: Api, kind: str) -> dict[str, Any]:
    """Configure `api` to demand `kind` with SECRET; the matching spec reads ${SHOP_TOKEN}."""
    if kind == "bearer":
        api.require("bearer", token=SECRET)
        return {"kind": "bearer", "token": "${SHOP_TOKEN}"}
    if kind.startswith("api_key"):
        location = kind.removeprefix("api_key_")
        api.require("api_key", name="X-API-Key", value=SECRET, location=location)
        spec = {"kind": "api_key", "name": "X-API-Key", "value": "${SHOP_TOKEN}"}
        return {**spec, "location": location}
    if kind == "basic":
        api.require("basic", username="shop", password=SECRET)
        return {"kind": "basic", "username": "shop", "password": "${SHOP_TOKEN}"}
    api.require("oauth2", client_id="shop", client_secret=SECRET, scope="orders:read")
    return {
        "kind": "oauth2",
        "token_url": f"{api.url}/oauth/token",
        "client_id": "shop",
        "client_secret": "${SHOP_TOKEN}",
        "scope": "orders:read",
    }


def hides_a_secret(text: str, secret: str, user: str) -> bool:
    """Whether `text` holds `secret` as written, URL-encoded or inside a basic auth header."""
    basic = base64.b64encode(f"{user}:{secret}".encode()).decode()
    forms = {secret, quote(secret, safe=""), quote_plus(secret), quote(secret), basic}
    return any(form in text for form in forms)


AUTH_KINDS = ["bearer", "api_key_header", "api_key_query", "basic", "oauth2"]


@pytest.mark.parametrize("kind", AUTH_KINDS)
def test_every_auth_kind_reads_its_secret_from_the_environment(
    api: Api, lake: Lake, tmp_path: Path, kind: str
) -> None:
    spec = contract(api, auth=auth_spec(api, kind))
    landed = ingest(spec, root=tmp_path, lake=lake, now=NOW, environ={"SHOP_TOKEN": SECRET})
    assert landed.rows == 10
    assert all(r.status == 200 for r in api.listings)
    if kind == "oauth2":
        assert api.token_requests == 1
    stored = [r[0] for r in rows(lake, "raw.orders", "_hw_source")]
    stored += [json.dumps(s.properties, default=str) for s in lake.snapshots("raw.orders")]
    assert not [text for text in stored if hides_a_secret(text, SECRET, "shop")]


@pytest.mark.parametrize("kind", AUTH_KINDS)
def test_wrong_credentials_fail_naming_the_url_and_status_not_the_secret(
    api: Api, lake: Lake, tmp_path: Path, kind: str
) -> None:
    spec = contract(api, auth=auth_spec(api, kind))
    with pytest.raises(SourceError) as caught:
        ingest(spec, root=tmp_path, lake=lake, now=NOW, environ={"SHOP_TOKEN": WRONG})
    text = f"{caught.value} {caught.value!r}"
    assert "401" in text and api.url in text, text
    assert not hides_a_secret(text, WRONG, "shop"), text
    assert rows(lake, "raw.orders") == []


def test_a_missing_environment_variable_is_a_spec_error_naming_it(
    api: Api, lake: Lake, tmp_path: Path
) -> None:
    spec = contract(api, auth=auth_spec(api, "bearer"))
    with pytest.raises(SpecError, match="SHOP_TOKEN"):
        ingest(spec, root=tmp_path, lake=lake, now=NOW, environ={})


def test_an_expired_oauth2_token_is_refreshed(lake: Lake, tmp_path: Path) -> None:
    # 10 pages at 8 requests/s take ~1.1 s, longer than the 1 s a token lives
    with Api([record(n) for n in range(1, 11)], page_size=1, token_ttl=1) as api:
        spec = contract(api, auth=auth_spec(api, "oauth2"), rate_limit=8)
        landed = ingest(spec, root=tmp_path, lake=lake, now=NOW, environ={"SHOP_TOKEN": SECRET})
        assert landed.rows == 10
        assert ids(lake) == list(range(1, 11))
        assert api.listings[-1].at - api.listings[0].at > 1
        assert api.token_requests >= 2
        pages = [r for r in api.listings if r.status == 200]
        assert len({r.headers["authorization"] for r in pages}) >= 2


# ---- retries ---------------------------------------------------------------------------------


def test_429_waits_for_retry_after_then_succeeds(api: Api, lake: Lake, tmp_path: Path) -> None:
    api.fail(429, retry_after=1)
    landed = run(api, lake, tmp_path)
    assert landed.rows == 10
    first, again = api.listings[:2]
    assert first.status == 429 and again.query == first.query
    assert again.at - first.at >= 0.95


def test_a_burst_of_500s_is_retried(api: Api, lake: Lake, tmp_path: Path) -> None:
    api.fail(500, times=3, after=1)
    landed = run(api, lake, tmp_path)
    assert landed.rows == 10
    assert [r.status for r in api.listings] == [200, 500, 500, 500, 200, 200, 200]
    assert len({json.dumps(r.query) for r in api.listings[1:5]}) == 1  # the same page each time
    assert ids(lake) == list(range(1, 11))


def test_a_stalled_answer_times_out_and_is_retried(api: Api, lake: Lake, tmp_path: Path) -> None:
    api.stall(3, after=1)
    landed = run(api, lake, tmp_path, timeout="0.5s")
    assert landed.rows == 10
    assert ids(lake) == list(range(1, 11))
    assert api.listings[2].query == api.listings[1].query  # page 2 asked for again


def test_more_failures_than_retries_fail_the_run_and_land_nothing(
    api: Api, lake: Lake, tmp_path: Path, small_parts: None
) -> None:
    api.fail(503, times=10, after=2)  # pages 1 and 2 are fine, page 3 never is
    with pytest.raises(SourceError, match="503") as caught:
        run(api, lake, tmp_path, retries=2)
    assert "/cursor/orders" in str(caught.value)
    assert isinstance(caught.value.__cause__, SourceError)  # kept for --debug and callers
    assert [r.status for r in api.listings] == [200, 200, 503, 503, 503]
    assert rows(lake, "raw.orders") == []


# ---- bad pages and records -------------------------------------------------------------------


def test_a_malformed_page_never_half_lands(
    api: Api, lake: Lake, tmp_path: Path, small_parts: None
) -> None:
    api.malformed(times=10, after=1)  # page 2 is truncated JSON, however often it is asked for
    try:
        landed = run(api, lake, tmp_path, retries=2)
    except SourceError as err:
        assert "/cursor/orders" in str(err) and "cursor=" in str(err), str(err)  # page 2's URL
    else:  # the other acceptable outcome: the page is quarantined with a reason
        reasons = [r[0] for r in rows(lake, "raw.orders__quarantine", "_hw_reason")]
        assert landed.quarantined >= 1 and any("json" in r.lower() for r in reasons), reasons
    assert rows(lake, "raw.orders") == []  # none of page 1's records


def test_records_that_break_the_contract_are_quarantined(
    api: Api, lake: Lake, tmp_path: Path
) -> None:
    api.records[4] = {**record(5), "id": "abc"}
    api.records.append(["not", "an", "object"])
    landed = run(api, lake, tmp_path)
    assert (landed.rows, landed.quarantined) == (9, 2)
    assert ids(lake) == [1, 2, 3, 4, 6, 7, 8, 9, 10]
    bad = rows(lake, "raw.orders__quarantine", "_hw_reason, _hw_source, _hw_record")
    by_id = next(b for b in bad if "abc" in b[2])
    assert re.search(r"\bid\b", by_id[0]) and "abc" in by_id[0], by_id[0]
    assert "/cursor/orders" in by_id[1]
    assert json.loads(by_id[2])["id"] == "abc"
    not_object = next(b for b in bad if b is not by_id)
    assert "object" in not_object[0], not_object[0]
    assert sum(landed.reasons.values()) == 2


# ---- incremental -----------------------------------------------------------------------------


def test_incremental_runs_fetch_and_land_only_what_changed(
    api: Api, lake: Lake, tmp_path: Path
) -> None:
    incremental = {"column": "updated_at", "param": "updated_since", "lag": "0s"}
    first = run(api, lake, tmp_path, incremental=incremental)
    assert first.rows == 10
    assert all("updated_since" not in r.query for r in api.listings)

    api.requests.clear()
    api.records += [record(11), record(12)]
    api.records[2] = record(3, hours=13, tier="platinum")  # order 3 changed after the others
    second = run(api, lake, tmp_path, incremental=incremental)
    assert since(api) == {START + timedelta(hours=10)}  # the highest updated_at landed
    assert (second.rows, second.quarantined) == (3, 0)  # order 10, served again, is not landed
    landed = rows(lake, "raw.orders", "id, customer.tier, _hw_batch_id")
    assert sorted(r[:2] for r in landed if r[2] == second.batch_id) == [
        (3, "platinum"),
        (11, "gold"),
        (12, "gold"),
    ]
    assert len(landed) == 13 == len(set(rows(lake, "raw.orders", "id, updated_at")))

    api.requests.clear()
    third = run(api, lake, tmp_path, incremental=incremental)
    assert since(api) == {START + timedelta(hours=13)}
    assert third.rows == 0
    assert len(rows(lake, "raw.orders")) == 13


def since(api: Api) -> set[datetime | None]:
    """The lower bounds the listings sent, as instants (None: a listing sent none)."""
    sent = [r.query.get("updated_since") for r in api.listings]
    return {datetime.fromisoformat(s) if s else None for s in sent}


# ---- rate limit ------------------------------------------------------------------------------


def test_rate_limit_spaces_requests(lake: Lake, tmp_path: Path) -> None:
    with Api([record(n) for n in range(1, 11)], page_size=1) as api:
        landed = run(api, lake, tmp_path, rate_limit=20)
        assert landed.rows == 10
        assert len(api.listings) == 10
        assert api.listings[-1].at - api.listings[0].at >= 0.42, gaps(api.listings)
