"""The data API end to end, over real HTTP: filters, fields, sort, pages, aggregates, formats,
keys and roles (masks, row policies), hostile parameters, the cache and ETags, the audit
trail, and reads that go on while a release lands. Expected values come from the warehouse
(DuckDB, read while no run writes) or from an unfiltered read, never from the API's code."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from headwater.orchestrate.stores import LakeStores
from headwater.project import load_project
from headwater.serve.access import key_hash, new_key
from tests.conftest import NOW
from tests.serve.conftest import (
    ANALYST_CURRENCY,
    EVENTS,
    ORDERS,
    Api,
    as_json,
    later,
    page_of,
    run_project,
    served_project,
    serving,
    warehouse_rows,
)

ORDERS_PATH = "/v1/marts/orders_served"
EVENTS_PATH = "/v1/marts/events_daily"
MEDIA = {
    "json": "application/json",
    "csv": "text/csv",
    "arrow": "application/vnd.apache.arrow.stream",
    "parquet": "application/vnd.apache.parquet",
}
Row = dict[str, Any]


# ---- helpers ------------------------------------------------------------------------------


def by_id(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: r["order_id"])


def typed(column: str, value: Any) -> Any:
    """A JSON value back as something that orders like the column's type."""
    if value is None:
        return None
    if column == "ordered_at":
        return datetime.fromisoformat(value)
    if column == "order_day":
        return date.fromisoformat(value)
    return value


def ordered(rows: list[Row], sort: list[tuple[str, bool]]) -> list[Row]:
    """`rows` (in file order) as `sort=` orders them: NULLs last either way, ties kept in
    file order (the API's tiebreak). Sorted key by key, last key first (stable)."""
    out = list(rows)
    for column, desc in reversed(sort):
        known = [r for r in out if r[column] is not None]
        nulls = [r for r in out if r[column] is None]
        known.sort(key=lambda r, c=column: typed(c, r[c]), reverse=desc)
        out = known + nulls
    return out


def walk(api: Api, params: dict[str, Any], *, role: str = "admin") -> list[Row]:
    """Every page of a read through `next`, checked page by page."""
    first = api.get(ORDERS_PATH, role, params)
    assert first.status_code == 200, first.text
    page = page_of(first.content)
    rows, pages = list(page["data"]), [page]
    while page["next"] is not None:
        assert page["count"] == params["limit"]
        response = api.get(ORDERS_PATH, role, {**params, "cursor": page["next"]})
        assert response.status_code == 200, response.text
        page = page_of(response.content)
        rows += page["data"]
        pages.append(page)
        assert len(pages) < 1000
    assert {(p["release"], p["snapshot"]) for p in pages} == {
        (pages[0]["release"], pages[0]["snapshot"])
    }
    return rows


def sha256(api: Api, text: str | None) -> str | None:
    """The hash mask of `text`: SHA-256 of the project's salt and the value."""
    salt = (api.root / ".headwater" / "salt").read_text(encoding="utf-8").strip()
    return None if text is None else hashlib.sha256((salt + text).encode()).hexdigest()


def partly_masked(shown: str | None, clear: str | None) -> bool:
    """`shown` is `clear` masked `partial`: as long, stars but for at most its last 4
    characters (fewer for a short value)."""
    if clear is None or shown is None:
        return shown is clear
    tail = shown.lstrip("*")
    stars = len(shown) - len(tail)
    return (
        len(shown) == len(clear)
        and stars >= max(len(clear) - 4, 1)
        and len(tail) < len(clear) / 2
        and clear.endswith(tail)
    )


def decoded(fmt: str, body: bytes) -> list[Row]:
    """The rows of an answer in `fmt` (CSV with the types pyarrow infers, empty = NULL)."""
    if fmt == "json":
        return list(page_of(body)["data"])
    if fmt == "arrow":
        table = ipc.open_stream(body).read_all()
    elif fmt == "parquet":
        table = pq.read_table(io.BytesIO(body))
    else:
        nulls = pacsv.ConvertOptions(strings_can_be_null=True)
        table = pacsv.read_csv(io.BytesIO(body), convert_options=nulls)
    return [as_json(r) for r in table.to_pylist()]


def aware(moment: datetime) -> datetime:
    """A catalog timestamp as UTC (should a catalog give it back without its zone)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def cursor_body(cursor: str) -> bytes:
    encoded = cursor.partition(".")[0]
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))


@pytest.fixture(scope="module")
def file_order(api: Api, truth: list[Row]) -> list[Row]:
    """Every row in the API's own order (no sort: as the product's files hold them)."""
    page = api.rows()
    assert page["next"] is None and page["count"] == len(truth)
    return list(page["data"])


# ---- 1. filters, fields, sort, limit, aggregates -------------------------------------------


def test_a_full_read_is_the_warehouse_data_and_names_its_release(
    api: Api, truth: list[Row]
) -> None:
    response = api.get(ORDERS_PATH, params={"limit": 1000})
    assert response.status_code == 200
    page = page_of(response.content)
    assert set(page) == {"model", "release", "snapshot", "count", "next", "data"}
    assert page["model"] == ORDERS and page["next"] is None
    assert isinstance(page["release"], int) and page["release"] >= 1
    assert response.headers["X-Headwater-Release"] == str(page["release"])
    assert response.headers["X-Headwater-Snapshot"] == str(page["snapshot"])
    assert response.headers["ETag"].startswith(f'"{page["release"]}-{page["snapshot"]}-')
    assert page["count"] == len(page["data"]) == len(truth)
    assert by_id(page["data"]) == truth
    assert api.health()["release"] == page["release"]


FILTERS: list[tuple[list[tuple[str, str]], Callable[[Row], bool]]] = [
    ([("order_id", "eq.2")], lambda r: r["order_id"] == 2),
    ([("order_id", "neq.2")], lambda r: r["order_id"] != 2),
    ([("customer_id", "gt.1000")], lambda r: r["customer_id"] > 1000),
    ([("customer_id", "lte.500")], lambda r: r["customer_id"] <= 500),
    ([("amount", "gte.250.5")], lambda r: r["amount"] >= Decimal("250.5")),
    ([("amount", "lt.20")], lambda r: r["amount"] < 20),
    ([("amount", "eq.461.15")], lambda r: r["amount"] == Decimal("461.15")),
    ([("ratio", "gt.30.5")], lambda r: r["ratio"] > 30.5),
    ([("ratio", "lte.10")], lambda r: r["ratio"] <= 10),
    (
        [("ordered_at", "gte.2026-09-01T00:00:00")],
        lambda r: datetime.fromisoformat(r["ordered_at"]) >= datetime(2026, 9, 1),
    ),
    (
        [("ordered_at", "lt.2026-08-20T12:30:00")],
        lambda r: datetime.fromisoformat(r["ordered_at"]) < datetime(2026, 8, 20, 12, 30),
    ),
    ([("order_day", "eq.2026-08-13")], lambda r: r["order_day"] == "2026-08-13"),
    ([("order_day", "lt.2026-08-15")], lambda r: r["order_day"] < "2026-08-15"),
    ([("is_paid", "eq.true")], lambda r: r["is_paid"] is True),
    ([("is_paid", "eq.false")], lambda r: r["is_paid"] is False),
    ([("label", "eq.EUR")], lambda r: r["label"] == "EUR"),
    # SQL's neq: a NULL is not "not EUR"
    ([("label", "neq.EUR")], lambda r: r["label"] is not None and r["label"] != "EUR"),
    ([("label", 'in.("red, green",GBP)')], lambda r: r["label"] in ("red, green", "GBP")),
    ([("label", 'in.("Blue ""sky""")')], lambda r: r["label"] == 'Blue "sky"'),
    ([("order_id", "in.(1,2,4,999)")], lambda r: r["order_id"] in (1, 2, 4, 999)),
    ([("label", "like.red*")], lambda r: (r["label"] or "").startswith("red")),
    ([("label", "like.%sky%")], lambda r: "sky" in (r["label"] or "")),
    ([("label", "like.___")], lambda r: len(r["label"] or "") == 3),
    ([("label", "ilike.BLUE*")], lambda r: (r["label"] or "").lower().startswith("blue")),
    ([("label", "ilike.*GREEN")], lambda r: (r["label"] or "").lower().endswith("green")),
    ([("label", "is.null")], lambda r: r["label"] is None),
    ([("label", "is.notnull")], lambda r: r["label"] is not None),
    (
        [("amount", "gte.100"), ("amount", "lt.200")],
        lambda r: 100 <= r["amount"] < 200,
    ),
    (
        [("label", "is.notnull"), ("is_paid", "eq.true"), ("ratio", "gt.20")],
        lambda r: r["label"] is not None and r["is_paid"] and r["ratio"] > 20,
    ),
    # a column named like a reserved parameter is filtered as where.<name>
    ([("where.limit", "eq.1")], lambda r: r["limit"] == 1),
]


@pytest.mark.parametrize(
    ("params", "keep"), FILTERS, ids=["&".join(f"{k}={v}" for k, v in f) for f, _ in FILTERS]
)
def test_each_filter_returns_exactly_the_matching_rows(
    api: Api, truth: list[Row], params: list[tuple[str, str]], keep: Callable[[Row], bool]
) -> None:
    expected = [r for r in truth if keep(r)]
    assert 0 < len(expected) < len(truth) or params == [("order_id", "eq.2")]
    response = api.get(ORDERS_PATH, params=[*params, ("limit", "1000")])
    assert response.status_code == 200, response.text
    page = page_of(response.content)
    assert page["count"] == len(expected)
    assert by_id(page["data"]) == expected


def test_fields_returns_those_columns_in_that_order(api: Api, truth: list[Row]) -> None:
    page = api.rows(fields="label,order_id,amount,limit")
    assert [list(r) for r in page["data"]] == [["label", "order_id", "amount", "limit"]] * len(
        truth
    )
    expected = [{k: r[k] for k in ("label", "order_id", "amount", "limit")} for r in truth]
    assert by_id(page["data"]) == expected


SORTS = [
    "order_id",
    "-order_id",
    "amount",
    "-amount",
    "ratio",
    "-ratio",
    "label",
    "-label",
    "ordered_at",
    "-order_day",
    "is_paid",
    "-is_paid",
    "label,-amount",
    "-is_paid,label,order_day",
]


@pytest.mark.parametrize("sort", SORTS)
def test_sort_orders_rows_with_nulls_last(api: Api, file_order: list[Row], sort: str) -> None:
    keys = [(s.removeprefix("-"), s.startswith("-")) for s in sort.split(",")]
    page = api.rows(sort=sort)
    assert page["data"] == ordered(file_order, keys)
    if keys[0][0] == "label":  # NULLs last, whichever the direction
        labels = [r["label"] for r in page["data"]]
        first_null = labels.index(None)
        assert all(v is None for v in labels[first_null:])
        assert all(v is not None for v in labels[:first_null])


def test_limit_pages_and_its_bounds(api: Api, file_order: list[Row]) -> None:
    page = api.rows(limit=7)
    assert page["count"] == 7 and page["data"] == file_order[:7] and page["next"]
    default = page_of(api.get(ORDERS_PATH).content)  # the sidecar's default_limit
    assert default["count"] == 100 and default["data"] == file_order[:100]
    for bad in ("0", "1001", "-1", "ten", "1.5", ""):
        response = api.get(ORDERS_PATH, params={"limit": bad})
        assert response.status_code == 400, (bad, response.text)
        assert "limit" in response.json()["error"]


def test_aggregates_by_group(api: Api, truth: list[Row]) -> None:
    page = api.rows(
        group_by="status",
        aggregate="count,sum(amount),avg(ratio),min(ordered_at),max(order_day),"
        "count_distinct(customer_id)",
        sort="status",
    )
    statuses = sorted({r["status"] for r in truth})
    assert [r["status"] for r in page["data"]] == statuses
    for got in page["data"]:
        rows = [r for r in truth if r["status"] == got["status"]]
        assert got["count"] == len(rows)
        assert got["sum_amount"] == sum(r["amount"] for r in rows)
        assert got["avg_ratio"] == pytest.approx(sum(r["ratio"] for r in rows) / len(rows))
        assert got["min_ordered_at"] == min(r["ordered_at"] for r in rows)
        assert got["max_order_day"] == max(r["order_day"] for r in rows)
        assert got["count_distinct_customer_id"] == len({r["customer_id"] for r in rows})
    assert list(page["data"][0]) == [
        "status",
        "count",
        "sum_amount",
        "avg_ratio",
        "min_ordered_at",
        "max_order_day",
        "count_distinct_customer_id",
    ]


def test_aggregates_group_nulls_and_sort_by_an_aggregate(api: Api, truth: list[Row]) -> None:
    page = api.rows(group_by="label", aggregate="count", sort="-count,label")
    counts: dict[Any, int] = {}
    for r in truth:
        counts[r["label"]] = counts.get(r["label"], 0) + 1
    expected = sorted(
        ({"label": k, "count": v} for k, v in counts.items()),
        key=lambda r: (-r["count"], r["label"] is None, r["label"] or ""),
    )
    assert page["data"] == expected
    # filters apply before grouping
    page = api.rows(group_by="is_paid", aggregate="count", is_paid="eq.true")
    assert page["data"] == [{"is_paid": True, "count": sum(r["is_paid"] for r in truth)}]


@pytest.mark.parametrize(
    "params",
    [
        {"group_by": "event_type", "aggregate": "count"},
        {"group_by": "event_type"},
        {"aggregate": "sum(event_count)"},
    ],
)
def test_aggregates_of_a_model_not_serving_them_are_a_400(api: Api, params: Row) -> None:
    response = api.get(EVENTS_PATH, params=params)
    assert response.status_code == 400
    assert "aggregates" in response.json()["error"]


@pytest.mark.parametrize(
    "params",
    [
        {"aggregate": "sum(label)"},  # not a number
        {"aggregate": "avg(is_paid)"},
        {"aggregate": "median(amount)"},
        {"aggregate": "sum(nope)"},
        {"aggregate": "count,count"},
        {"group_by": "status", "aggregate": "count", "fields": "status"},
        {"group_by": "status", "aggregate": "count", "sort": "amount"},  # not an output
        {"group_by": "status,status"},
    ],
)
def test_bad_aggregates_are_a_400(api: Api, params: Row) -> None:
    response = api.get(ORDERS_PATH, params=params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]


def test_an_aggregate_of_every_row_is_one_row(api: Api, truth: list[Row]) -> None:
    page = api.rows(aggregate="count,sum(amount)")
    total = sum(r["amount"] for r in truth)
    assert page["data"] == [{"count": len(truth), "sum_amount": total}]


def test_an_aggregate_of_every_row_sorted_by_it(api: Api, truth: list[Row]) -> None:
    page = api.rows(aggregate="count,min(amount)", sort="count")
    low = min(r["amount"] for r in truth)
    assert page["data"] == [{"count": len(truth), "min_amount": low}]


@pytest.mark.parametrize(
    "value", ["0.000000000000000000000000000000000001", "1234567890.123456789012345678901234567890"]
)
def test_a_decimal_value_beyond_what_the_column_compares_with_is_a_400(
    api: Api, value: str
) -> None:
    """A decimal(12, 2) column compares in DECIMAL(38, …): at most 10 digits before the point
    and 28 after. More is refused by name (it was a 500 from the engine)."""
    response = api.get(ORDERS_PATH, params={"amount": f"gt.{value}", "limit": 1000})
    assert response.status_code == 400, response.text
    assert "has more digits than a decimal128(12, 2) column is compared with" in response.text
    assert "at most 10 before the point and 28 after it" in response.text
    # as precise as the column allows: exact
    near = api.get(ORDERS_PATH, params={"amount": "gt.100.0000000000000000000000000001"})
    assert near.status_code == 200, near.text


# ---- 2. keyset pages ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "label", "limit": 17},  # ties and NULLs
        {"sort": "-label", "limit": 17},
        {"sort": "is_paid,-label", "limit": 23, "fields": "order_id,label,is_paid"},
        {"sort": "-ordered_at", "limit": 50},
        {"sort": "amount", "limit": 31, "label": "is.notnull"},
        {"limit": 40},  # no sort: file order
    ],
    ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()),
)
def test_walking_every_page_returns_each_row_once_in_order(
    api: Api, truth: list[Row], file_order: list[Row], params: Row
) -> None:
    full = api.rows(**{k: v for k, v in params.items() if k != "limit"})
    assert full["next"] is None
    rows = walk(api, params)
    assert rows == full["data"]
    ids = [r["order_id"] for r in rows]
    assert len(ids) == len(set(ids))
    # and independently: the rows kept, in the order asked (ties in file order)
    kept = [r for r in file_order if params.get("label") != "is.notnull" or r["label"]]
    sort = [(s.removeprefix("-"), s.startswith("-")) for s in params.get("sort", "").split(",")]
    expected = ordered(kept, sort if params.get("sort") else [])
    assert ids == [r["order_id"] for r in expected]
    if "label" not in params:
        assert {r["order_id"] for r in truth} == set(ids)


def test_walking_grouped_pages(api: Api) -> None:
    params = {"group_by": "status,label", "aggregate": "count,avg(amount)", "sort": "-count"}
    full = api.rows(**params)
    assert full["next"] is None and full["count"] > 10
    assert walk(api, {**params, "limit": 4}) == full["data"]


def test_a_cursor_for_another_sort_is_a_400(api: Api) -> None:
    page = api.rows(sort="label", limit=5)
    response = api.get(ORDERS_PATH, params={"sort": "-label", "limit": 5, "cursor": page["next"]})
    assert response.status_code == 400


@pytest.mark.slow
def test_a_cursor_keeps_its_snapshot_while_a_release_lands(fresh_api: Api) -> None:
    api = fresh_api
    params = {"sort": "label", "limit": 40}
    old = api.rows(sort="label")
    first = api.get(ORDERS_PATH, params=params)
    assert first.status_code == 200
    page = page_of(first.content)
    assert page["data"] == old["data"][:40] and page["next"]

    # a new version of the model (its SQL changed) lands as a new release mid-walk
    sql = api.root / "models/marts/orders_served.sql"
    text = sql.read_text(encoding="utf-8")
    changed = text.replace("/ 7 as ratio", "/ 3 as ratio").replace(
        "o.order_id <= 300", "o.order_id <= 250"
    )
    assert changed != text
    sql.write_text(changed, encoding="utf-8")
    report = run_project(api.root, later(1))
    assert report.release is not None and report.release > old["release"]
    assert api.health()["release"] == report.release  # the app saw the catalog change

    rows, cursor = list(page["data"]), page["next"]
    while cursor:
        response = api.get(ORDERS_PATH, params={**params, "cursor": cursor})
        assert response.status_code == 200, response.text
        page = page_of(response.content)
        assert (page["release"], page["snapshot"]) == (old["release"], old["snapshot"])
        assert response.headers["X-Headwater-Release"] == str(old["release"])
        rows += page["data"]
        cursor = page["next"]
    assert rows == old["data"]  # no gap, no repeat, the old data throughout

    new = api.rows(sort="label")
    assert new["release"] == report.release and new["snapshot"] != old["snapshot"]
    assert max(r["order_id"] for r in new["data"]) <= 250 < max(r["order_id"] for r in old["data"])
    was = {r["order_id"]: r for r in old["data"]}
    for row in new["data"]:
        assert row["ratio"] == pytest.approx(float(row["amount"]) / 3)
        assert row["ratio"] != was[row["order_id"]]["ratio"]
    # the walk of the new data is whole too
    assert walk(api, params) == new["data"]

    as_of = api.rows(sort="label", as_of=old["release"])
    assert (as_of["release"], as_of["snapshot"]) == (old["release"], old["snapshot"])
    assert as_of["data"] == old["data"]
    pages = walk(api, {**params, "as_of": old["release"]})
    assert pages == old["data"]
    for missing in (report.release + 1, 10**9):
        assert api.get(ORDERS_PATH, params={"as_of": missing}).status_code == 404


@pytest.mark.slow
@pytest.mark.parametrize("fresh_api", ["releases: {keep: 1, retention: 0s}\n"], indirect=True)
def test_a_release_no_longer_kept_is_a_410_but_a_cursor_on_it_reads_on(fresh_api: Api) -> None:
    api = fresh_api
    params = {"sort": "-amount", "limit": 50}
    old = api.rows(sort="-amount")
    page = api.rows(**params)
    assert api.rows(as_of=old["release"], limit=1)["release"] == old["release"]
    sql = api.root / "models/marts/orders_served.sql"
    sql.write_text(
        sql.read_text(encoding="utf-8").replace("/ 7 as ratio", "/ 5 as ratio"), encoding="utf-8"
    )
    report = run_project(api.root, later(1))
    assert report.release is not None and report.release > old["release"]
    gone = api.get(ORDERS_PATH, params={"as_of": old["release"]})
    assert gone.status_code == 410, gone.text
    assert "retained" in gone.json()["error"] and gone.json().get("hint")
    rows, cursor = list(page["data"]), page["next"]
    while cursor:
        page = api.rows(**params, cursor=cursor)
        assert page["release"] == old["release"]
        rows += page["data"]
        cursor = page["next"]
    assert rows == old["data"]
    assert api.rows(as_of=report.release, limit=1)["release"] == report.release


@pytest.mark.slow
def test_a_server_started_before_the_first_run_serves_it_once_published(
    shop_template: Path, tmp_path: Path
) -> None:
    root = served_project(shop_template, tmp_path / "shop")
    with serving(root) as api:
        waiting = api.get(ORDERS_PATH)
        assert waiting.status_code == 503 and waiting.json()["hint"]
        listed = api.get("/v1/models").json()
        assert listed["release"] is None
        assert {m["name"]: m["published"] for m in listed["models"]} == {
            ORDERS: False,
            EVENTS: False,
        }
        document = api.client.get("/openapi.json").json()
        names = [p["name"] for p in document["paths"][ORDERS_PATH]["get"]["parameters"]]
        assert "order_id" not in names and "sort" in names
        # a model not served has no route
        assert api.get("/v1/marts/customer_orders").status_code == 404

        report = run_project(root)
        assert report.release is not None
        page = api.rows()
        assert page["release"] == report.release and page["count"] > 200
        assert by_id(page["data"]) == by_id([as_json(r) for r in warehouse_rows(root)])
        document = api.client.get("/openapi.json").json()
        names = [p["name"] for p in document["paths"][ORDERS_PATH]["get"]["parameters"]]
        assert {"order_id", "ordered_at", "is_paid"} <= set(names)


@pytest.mark.slow
def test_a_product_whose_files_are_gone_takes_down_only_its_own_model(
    shop_template: Path, tmp_path: Path
) -> None:
    root = served_project(shop_template, tmp_path / "shop")
    run_project(root)
    files = list(root.glob(".headwater/lake/products/marts__events_daily__*/data/*.parquet"))
    assert files
    for path in files:
        path.unlink()
    with serving(root) as api:

        def get(path: str) -> httpx.Response:  # a connection each: a 500 may drop it
            return httpx.get(api.base + path, headers=api.auth("admin"), timeout=30)

        assert get("/v1/health").status_code == 200
        assert get("/v1/models").status_code == 200
        assert get(ORDERS_PATH).status_code == 200
        broken = get(EVENTS_PATH)
        assert broken.status_code in (410, 500, 503) and broken.json()["error"]


# ---- 3. formats ---------------------------------------------------------------------------

FORMAT_QUERY = {
    "sort": "order_id",
    "limit": 60,
    "fields": "order_id,amount,ratio,label,email,limit,ordered_at,order_day,is_paid",
}


@pytest.fixture(scope="module")
def json_rows(api: Api) -> list[Row]:
    page = api.rows(**FORMAT_QUERY)
    assert page["count"] == 60 and any(r["label"] is None for r in page["data"])
    return list(page["data"])


@pytest.mark.parametrize("fmt", ["json", "csv", "arrow", "parquet"])
@pytest.mark.parametrize("how", ["param", "accept"])
def test_every_format_holds_the_same_rows(
    api: Api, json_rows: list[Row], fmt: str, how: str
) -> None:
    if how == "param":
        response = api.get(ORDERS_PATH, params={**FORMAT_QUERY, "format": fmt})
    else:
        response = api.get(ORDERS_PATH, params=FORMAT_QUERY, headers={"Accept": MEDIA[fmt]})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(MEDIA[fmt])
    assert decoded(fmt, response.content) == json_rows
    if fmt != "json":
        cursor = response.headers["X-Headwater-Next-Cursor"]
        following = api.get(ORDERS_PATH, params={**FORMAT_QUERY, "format": fmt, "cursor": cursor})
        expected = api.rows(**FORMAT_QUERY, cursor=cursor)["data"]
        assert decoded(fmt, following.content) == expected
    if fmt in ("arrow", "parquet"):
        table = (
            ipc.open_stream(response.content).read_all()
            if fmt == "arrow"
            else pq.read_table(io.BytesIO(response.content))
        )
        assert table.schema.metadata[b"headwater.model"] == ORDERS.encode()
        assert table.schema.field("amount").type == pa.decimal128(12, 2)
        assert table.schema.field("order_day").type == pa.date32()
        assert pa.types.is_boolean(table.schema.field("is_paid").type)


def test_csv_quotes_commas_and_quotes(api: Api) -> None:
    response = api.get(
        ORDERS_PATH, params={"format": "csv", "label": 'in.("red, green","Blue ""sky""")'}
    )
    table = pacsv.read_csv(io.BytesIO(response.content))
    assert set(table.column("label").to_pylist()) == {"red, green", 'Blue "sky"'}


def test_the_last_page_in_another_format_has_no_next_cursor(api: Api) -> None:
    response = api.get(ORDERS_PATH, params={"format": "csv", "order_id": "eq.2"})
    assert response.status_code == 200
    assert "X-Headwater-Next-Cursor" not in response.headers


def test_an_unknown_format_is_a_400_and_an_unknown_accept_is_json(api: Api) -> None:
    assert api.get(ORDERS_PATH, params={"format": "xml"}).status_code == 400
    response = api.get(ORDERS_PATH, params={"limit": 1}, headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")


# ---- 4. keys, roles, masks, row policies -------------------------------------------------


@pytest.mark.parametrize("path", [ORDERS_PATH, EVENTS_PATH, "/v1/models"])
def test_no_key_is_a_401_asking_for_one(api: Api, path: str) -> None:
    response = api.get(path, role=None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "key" in response.json()["error"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer hw_not-a-key"},
        {"X-API-Key": "hw_not-a-key"},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"Authorization": "Bearer"},
        {"Authorization": "hw_not-a-key"},
    ],
)
def test_a_wrong_key_is_a_401(api: Api, headers: dict[str, str]) -> None:
    response = api.get(ORDERS_PATH, role=None, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "data" not in response.json()


def test_a_key_works_in_either_header(api: Api) -> None:
    for headers in ({"X-API-Key": api.keys["analyst"]}, api.auth("analyst")):
        response = api.get(ORDERS_PATH, role=None, headers=headers)
        assert response.status_code == 200


@pytest.mark.slow
def test_a_revoked_key_is_refused_within_seconds(api: Api) -> None:
    key = new_key()
    stores = LakeStores.open(load_project(api.root))
    try:
        stores.catalog.add_api_key("tests-revoked", "analyst", key_hash(key), now=NOW)
        headers = {"X-API-Key": key}
        deadline = time.monotonic() + 5  # servers trust their copy of the keys for 2 s
        while api.get(ORDERS_PATH, role=None, headers=headers).status_code != 200:
            assert time.monotonic() < deadline, "a new key was never accepted"
            time.sleep(0.2)
        assert stores.catalog.revoke_api_key("tests-revoked", now=NOW)
    finally:
        stores.close()
    deadline = time.monotonic() + 5
    while (refused := api.get(ORDERS_PATH, role=None, headers=headers)).status_code != 401:
        assert refused.status_code == 200
        assert time.monotonic() < deadline, "a revoked key was still accepted"
        time.sleep(0.2)
    assert "revoked" in refused.json()["error"]


@pytest.mark.parametrize("path", [ORDERS_PATH, EVENTS_PATH])
@pytest.mark.parametrize("params", [{}, {"format": "csv"}, {"aggregate": "count"}])
def test_a_role_without_a_grant_is_a_403(api: Api, path: str, params: Row) -> None:
    response = api.get(path, role="outsider", params=params)
    assert response.status_code == 403
    assert "outsider" in response.json()["error"]


def test_models_lists_only_the_granted_models(api: Api) -> None:
    listed = {}
    for role in ("admin", "analyst", "outsider"):
        response = api.get("/v1/models", role=role)
        assert response.status_code == 200
        listed[role] = {m["name"]: m for m in response.json()["models"]}
    assert set(listed["admin"]) == set(listed["analyst"]) == {ORDERS, EVENTS}
    assert listed["outsider"] == {}
    masked = {
        role: {c["name"] for c in listed[role][ORDERS]["columns"] if c["masked"]}
        for role in ("admin", "analyst")
    }
    assert masked == {"admin": set(), "analyst": {"email", "full_name"}}
    orders = listed["admin"][ORDERS]
    assert orders["aggregates"] is True and orders["path"] == ORDERS_PATH
    assert listed["admin"][EVENTS]["aggregates"] is False


def test_the_analyst_sees_masked_and_hashed_columns_and_only_its_rows(
    api: Api, truth: list[Row]
) -> None:
    mine = [r for r in truth if r["currency"] == ANALYST_CURRENCY]
    assert 0 < len(mine) < len(truth)
    page = api.rows(role="analyst")
    assert page["count"] == len(mine)
    shown = by_id(page["data"])
    assert [{**r, "full_name": None} for r in shown] == [
        {**r, "email": sha256(api, r["email"]), "full_name": None} for r in mine
    ]
    for row, clear in zip(shown, mine, strict=True):
        assert partly_masked(row["full_name"], clear["full_name"]), (row, clear)
    # the admin sees them in the clear
    assert by_id(api.rows(role="admin", currency=f"eq.{ANALYST_CURRENCY}")["data"]) == mine


def test_a_filter_never_widens_the_row_policy(
    api: Api, truth: list[Row], file_order: list[Row]
) -> None:
    mine = [r for r in truth if r["currency"] == ANALYST_CURRENCY]
    assert api.rows(role="analyst", currency="eq.USD")["count"] == 0
    assert api.rows(role="analyst", currency="neq.EUR")["count"] == 0
    assert api.rows(role="analyst", currency="is.null")["count"] == 0
    grouped = api.rows(role="analyst", group_by="currency", aggregate="count")
    assert grouped["data"] == [{"currency": ANALYST_CURRENCY, "count": len(mine)}]
    total = api.rows(role="analyst", group_by="status", aggregate="count")
    assert sum(g["count"] for g in total["data"]) == len(mine)
    walked = walk(api, {"sort": "-amount", "limit": 19}, role="analyst")
    in_files = [r for r in file_order if r["currency"] == ANALYST_CURRENCY]
    expected = ordered(in_files, [("amount", True)])
    assert [r["order_id"] for r in walked] == [r["order_id"] for r in expected]


def test_filters_and_sorts_see_the_masked_values(api: Api, truth: list[Row]) -> None:
    mine = [r for r in truth if r["currency"] == ANALYST_CURRENCY]
    someone = next(r for r in mine if r["full_name"] and r["email"])
    first_name = someone["full_name"].split()[0]
    # the clear value matches nothing: the filter reads what the role sees
    assert api.rows(role="analyst", full_name=f"eq.{someone['full_name']}")["count"] == 0
    assert api.rows(role="analyst", full_name=f"like.{first_name}*")["count"] == 0
    assert api.rows(role="admin", full_name=f"like.{first_name}*")["count"] > 0
    assert api.rows(role="analyst", email=f"eq.{someone['email']}")["count"] == 0
    assert api.rows(role="analyst", email="like.*@*")["count"] == 0
    # the hash joins: equal clear values, equal hashes
    hashed = api.rows(role="analyst", email=f"eq.{sha256(api, someone['email'])}")
    assert {r["order_id"] for r in hashed["data"]} == {
        r["order_id"] for r in mine if r["email"] == someone["email"]
    }
    # a sort orders by the masked value
    page = api.rows(role="analyst", sort="full_name", fields="order_id,full_name")
    shown = [r["full_name"] for r in page["data"]]
    known = [s for s in shown if s is not None]
    assert known == sorted(known) and shown[len(known) :] == [None] * (len(shown) - len(known))
    grouped = api.rows(role="analyst", group_by="status", aggregate="min(email)", sort="status")
    for group in grouped["data"]:
        emails = [sha256(api, r["email"]) for r in mine if r["status"] == group["status"]]
        assert group["min_email"] == min(e for e in emails if e is not None)


SECRET_QUERIES = [
    {},
    {"sort": "full_name"},
    {"sort": "-email,full_name", "limit": 7},
    {"full_name": "like.*a*", "sort": "email"},
    {"email": "is.notnull", "fields": "email,full_name"},
    {"group_by": "full_name", "aggregate": "count,min(email),max(email)"},
    {"group_by": "status", "aggregate": "max(full_name),min(email),count_distinct(email)"},
    {"group_by": "email", "aggregate": "count", "sort": "email", "limit": 3},
]


@pytest.mark.parametrize("fmt", ["json", "csv", "arrow", "parquet"])
@pytest.mark.parametrize(
    "params", SECRET_QUERIES, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()) or "all"
)
def test_no_clear_masked_value_reaches_the_analyst(
    api: Api, truth: list[Row], fmt: str, params: Row
) -> None:
    names = {r["full_name"] for r in truth if r["full_name"]}
    emails = {r["email"] for r in truth if r["email"]}
    query = {"limit": 1000, **params, "format": fmt}
    response = api.get(ORDERS_PATH, role="analyst", params=query)
    assert response.status_code == 200, response.text
    raw = response.content.decode("latin-1")  # binary formats may hold an @ byte anywhere
    texts = [raw] if fmt in ("json", "csv") else []
    for row in decoded(fmt, response.content):
        texts += [str(v) for v in row.values()]
    cursor = (
        response.json()["next"]
        if fmt == "json"
        else response.headers.get("X-Headwater-Next-Cursor")
    )
    if cursor:
        texts.append(cursor_body(cursor).decode())
    texts += [f"{k}: {v}" for k, v in response.headers.items()]
    whole = "\n".join(texts)
    assert "@" not in whole  # every email holds one: none is shown, not even in a cursor
    assert not [n for n in names if n in whole or n in raw]
    assert not [e for e in emails if e in whole or e in raw]


def test_the_cache_and_etags_keep_roles_apart(api: Api) -> None:
    params = {"sort": "order_id", "limit": 9, "fields": "order_id,full_name,email"}
    admin = api.get(ORDERS_PATH, role="admin", params=params)
    analyst = api.get(
        ORDERS_PATH,
        role="analyst",
        params=params,
        headers={"If-None-Match": admin.headers["ETag"]},
    )
    assert analyst.status_code == 200  # the admin's ETag is not the analyst's
    assert analyst.headers["ETag"] != admin.headers["ETag"]
    assert "@" in admin.text and "@" not in analyst.text
    again = api.get(ORDERS_PATH, role="analyst", params=params)
    assert again.content == analyst.content


# ---- 5. hostile parameters ----------------------------------------------------------------

PAYLOADS = {
    "quote": "'; drop table x; --",
    "or": "1) or (1=1",
    "union": '"a" union select * from information_schema.tables --',
    "unicode": "ünï©ødé 😀 ٣ ²",
    "nul": "a\x00b",
    "long": "x" * 6000,
    "sql_fn": "read_csv('/etc/passwd')",
}


def hostile(param: str, payload: str) -> tuple[list[tuple[str, str]], int]:
    """The request putting `payload` in `param`, and the status it must get."""
    if param == "text value":  # a text value is data: it matches nothing (NUL is refused)
        return [("label", f"eq.{payload}")], 400 if "\x00" in payload else 200
    if param == "text in":
        return [("label", f"in.({payload})")], 400 if "\x00" in payload else 200
    if param == "text like":
        return [("label", f"like.{payload}")], 400 if "\x00" in payload else 200
    out = {
        "number value": [("order_id", f"eq.{payload}")],
        "decimal value": [("amount", f"gt.{payload}")],
        "time value": [("ordered_at", f"lt.{payload}")],
        "operator": [("order_id", payload)],
        "column": [(payload, "eq.1")],
        "where column": [(f"where.{payload}", "eq.1")],
        "fields": [("fields", f"order_id,{payload}")],
        "sort": [("sort", payload)],
        "limit": [("limit", payload)],
        "cursor": [("cursor", payload)],
        "format": [("format", payload)],
        "as_of": [("as_of", payload)],
        "group_by": [("group_by", payload)],
        "aggregate": [("aggregate", payload)],
        "aggregate column": [("aggregate", f"sum({payload})")],
    }[param]
    return out, 400


PARAMS = [
    "text value",
    "text in",
    "text like",
    "number value",
    "decimal value",
    "time value",
    "operator",
    "column",
    "where column",
    "fields",
    "sort",
    "limit",
    "cursor",
    "format",
    "as_of",
    "group_by",
    "aggregate",
    "aggregate column",
]


@pytest.mark.parametrize("payload", list(PAYLOADS), ids=list(PAYLOADS))
@pytest.mark.parametrize("param", PARAMS)
def test_hostile_parameters_are_refused_or_matched_as_data(
    api: Api, param: str, payload: str
) -> None:
    params, status = hostile(param, PAYLOADS[payload])
    for role in ("admin", "analyst"):
        response = api.get(ORDERS_PATH, role=role, params=params)
        assert response.status_code == status, (response.status_code, response.text[:300])
        body = response.json()
        if status == 200:
            assert body["count"] == 0 and body["data"] == []
        else:
            assert body["error"] and "data" not in body


@pytest.mark.parametrize(
    "tamper",
    [
        "flip_body",
        "flip_mac",
        "cut",
        "no_mac",
        "forged",
        "other_model",
        "not_base64",
        "huge",
    ],
)
def test_a_tampered_cursor_is_refused(api: Api, tamper: str) -> None:
    params = {"sort": "label", "limit": 5}
    good = api.rows(**params)["next"]
    body, _, mac = good.partition(".")
    forged_body = base64.urlsafe_b64encode(
        json.dumps({"r": 1, "p": 1, "s": [["label", False]], "k": ["x", "1", "1"]}).encode()
    ).decode()
    events_cursor = api.rows(EVENTS, limit=2)["next"]
    cursor = {
        "flip_body": ("A" if body[3] != "A" else "B").join([body[:3], body[4:]]) + "." + mac,
        "flip_mac": body + "." + ("0" if mac[0] != "0" else "1") + mac[1:],
        "cut": good[: len(good) // 2],
        "no_mac": body,
        "forged": forged_body + "." + mac,
        "other_model": events_cursor,
        "not_base64": "!!!not*base64!!!." + mac,
        "huge": "A" * 9000 + "." + mac,
    }[tamper]
    response = api.get(ORDERS_PATH, params={**params, "cursor": cursor})
    # another model's cursor is signed but names a snapshot this model never had: it is
    # answered 410 ("the data this cursor read is gone"), where 400 would say it better
    refused = (400, 410) if tamper == "other_model" else (400,)
    assert response.status_code in refused, response.text
    assert "data" not in response.json()


def test_as_of_with_a_digit_int_cannot_read_is_a_400(api: Api) -> None:
    # a connection of its own: after an unhandled error the server drops it
    response = httpx.get(
        api.base + ORDERS_PATH, params={"as_of": "\u00b2"}, headers=api.auth("admin")
    )
    assert response.status_code == 400


def test_the_openapi_document_names_each_parameter_once(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    for path, item in document["paths"].items():
        names = [p["name"] for p in item["get"].get("parameters", [])]
        assert len(names) == len(set(names)), (path, names)


def test_hostile_requests_changed_no_data(api: Api, truth: list[Row]) -> None:
    for payload in PAYLOADS.values():
        api.get(ORDERS_PATH, params={"label": f"eq.{payload}"})
        api.get(ORDERS_PATH, params={"sort": payload})
    assert by_id(api.rows()["data"]) == truth
    assert by_id([as_json(r) for r in warehouse_rows(api.root)]) == truth
    listed = api.get("/v1/models").json()["models"]
    assert {m["name"] for m in listed} == {ORDERS, EVENTS}
    assert all(m["published"] for m in listed)


# ---- 6. the cache and ETags ---------------------------------------------------------------


def test_a_repeated_request_is_a_cache_hit_and_if_none_match_a_304(api: Api) -> None:
    params = {"sort": "-amount", "limit": 13, "fields": "order_id,amount"}
    before = api.health()["cache"]
    first = api.get(ORDERS_PATH, params=params)
    after_first = api.health()["cache"]
    assert after_first["misses"] == before["misses"] + 1
    second = api.get(ORDERS_PATH, params=params)
    after_second = api.health()["cache"]
    assert after_second["hits"] == after_first["hits"] + 1
    assert second.content == first.content and second.headers["ETag"] == first.headers["ETag"]

    etag = first.headers["ETag"]
    for header in (etag, f'"nope", {etag}', f"W/{etag}"):
        cached = api.get(ORDERS_PATH, params=params, headers={"If-None-Match": header})
        assert cached.status_code == 304 and cached.content == b""
        assert cached.headers["ETag"] == etag
        assert cached.headers["X-Headwater-Release"] == first.headers["X-Headwater-Release"]
    other = api.get(ORDERS_PATH, params=params, headers={"If-None-Match": '"nope"'})
    assert other.status_code == 200 and other.content == first.content
    # the same read asked another way is the same entry; another read is another ETag
    reordered = api.get(
        ORDERS_PATH, params=[("fields", "order_id,amount"), ("limit", "13"), ("sort", "-amount")]
    )
    assert reordered.headers["ETag"] == etag
    assert api.get(ORDERS_PATH, params={**params, "limit": 14}).headers["ETag"] != etag
    assert api.get(ORDERS_PATH, params={**params, "format": "csv"}).headers["ETag"] != etag


@pytest.mark.slow
def test_new_data_is_served_at_once_and_unchanged_models_stay_cached(fresh_api: Api) -> None:
    api = fresh_api
    orders = {"sort": "-order_id", "limit": 5, "fields": "order_id,amount,ratio"}
    events = {"sort": "-day", "limit": 5}

    def get(path: str, params: Row) -> tuple[dict[str, Any], str, str]:
        response = api.get(path, params=params)
        assert response.status_code == 200, response.text
        headers = response.headers
        return page_of(response.content), headers["ETag"], headers["X-Headwater-Snapshot"]

    first_orders, orders_etag, orders_snapshot = get(ORDERS_PATH, orders)
    first_events, _, events_snapshot = get(EVENTS_PATH, events)
    hits = api.health()["cache"]["hits"]
    assert get(ORDERS_PATH, orders)[0] == first_orders
    assert get(EVENTS_PATH, events)[0] == first_events
    assert api.health()["cache"]["hits"] == hits + 2

    # a data refresh: new raw orders, the same model version → a new product snapshot
    (api.root / "data/orders/orders_2026-11-late.csv").write_text(
        "order_id,customer_id,status,amount,currency,ordered_at,updated_at\n"
        "900001,7,paid,12.34,EUR,2026-11-01 11:00:00,2026-11-01 11:30:00\n",
        encoding="utf-8",
    )
    run_project(api.root, later(1))
    refreshed, refreshed_etag, refreshed_snapshot = get(ORDERS_PATH, orders)
    assert refreshed_snapshot != orders_snapshot and refreshed_etag != orders_etag
    assert refreshed["data"][0] == {
        "order_id": 900001,
        "amount": Decimal("12.34"),
        "ratio": 12.34 / 7,
    }
    assert refreshed["data"][1:] == first_orders["data"][:4]
    assert refreshed["release"] == first_orders["release"]  # a refresh is not a release
    stale = api.get(ORDERS_PATH, params=orders, headers={"If-None-Match": orders_etag})
    assert stale.status_code == 200 and page_of(stale.content) == refreshed
    hits = api.health()["cache"]["hits"]
    again_events, _, again_snapshot = get(EVENTS_PATH, events)
    assert again_snapshot == events_snapshot and again_events == first_events
    assert api.health()["cache"]["hits"] == hits + 1  # untouched model: still cached

    # a new release (the model's SQL changed)
    sql = api.root / "models/marts/orders_served.sql"
    sql.write_text(
        sql.read_text(encoding="utf-8").replace("/ 7 as ratio", "/ 2 as ratio"), encoding="utf-8"
    )
    report = run_project(api.root, later(2))
    assert report.release is not None and report.release > first_orders["release"]
    released, _, _ = get(ORDERS_PATH, orders)
    assert released["release"] == report.release
    assert released["data"][0]["ratio"] == pytest.approx(12.34 / 2)
    hits = api.health()["cache"]["hits"]
    events_now, _, events_now_snapshot = get(EVENTS_PATH, events)
    assert events_now_snapshot == events_snapshot and events_now["data"] == first_events["data"]
    assert events_now["release"] == report.release
    assert api.health()["cache"]["hits"] == hits + 1
    # the earlier release still answers with the data it was released with (a release is
    # immutable: the refresh after it is not part of it)
    earlier = api.rows(**orders, as_of=first_orders["release"])
    assert earlier["data"] == first_orders["data"]


# ---- 7. the audit trail -------------------------------------------------------------------


def test_requests_are_audited_with_role_model_filters_rows_and_release(api: Api) -> None:
    start = datetime.now(UTC)
    ok = api.get(ORDERS_PATH, role="analyst", params={"order_id": "gte.7", "limit": 3})
    assert ok.status_code == 200
    release = ok.json()["release"]
    assert api.get(ORDERS_PATH, role="outsider", params={"order_id": "gte.8"}).status_code == 403
    assert api.get(ORDERS_PATH, role=None, params={"order_id": "gte.9"}).status_code == 401
    bad = api.get(ORDERS_PATH, role="admin", params={"order_id": "gte.ten"})
    assert bad.status_code == 400

    stores = LakeStores.open(load_project(api.root))
    try:
        deadline = time.monotonic() + 6
        while True:
            entries = stores.catalog.audited(limit=500, subject=ORDERS)
            mine = [e for e in entries if aware(e.at) >= start]
            found = {e.status: e for e in mine if e.status != 200}
            found |= {
                e.status: e
                for e in mine
                if e.status == 200 and e.detail.get("filters") == [["order_id", "gte", [7]]]
            }
            if {200, 400, 401, 403} <= set(found):
                break
            assert time.monotonic() < deadline, entries[:5]
            time.sleep(0.2)
    finally:
        stores.close()
    read = found[200]
    assert (read.role, read.actor, read.action, read.subject) == (
        "analyst",
        "tests-analyst",
        "read",
        ORDERS,
    )
    assert read.detail["rows"] == 3 and read.detail["release"] == release
    assert read.detail["snapshot"] == ok.json()["snapshot"]
    assert read.detail["format"] == "json" and read.detail["limit"] == 3
    assert read.detail["cache"] in ("hit", "miss")
    assert found[403].role == "outsider"
    assert found[401].role is None and found[401].actor is None
    assert found[400].role == "admin" and "order_id" in found[400].detail["error"]
