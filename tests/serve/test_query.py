"""The data API's request grammar and the queries built from it, without a server: every
value is parsed to its column's type and reaches SQL only as a literal sqlglot quotes."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal

import duckdb
import pyarrow as pa
import pytest
from sqlglot import exp

from headwater.contracts.policies import Mask
from headwater.contracts.specs import Serving
from headwater.serve.errors import ApiError
from headwater.serve.query import (
    Columns,
    Position,
    build,
    decode_cursor,
    encode_cursor,
    key_names,
    parse,
)

TYPES = {
    "id": pa.int64(),
    "small": pa.int8(),
    "amount": pa.decimal128(10, 2),
    "score": pa.float64(),
    "name": pa.string(),
    "day": pa.date32(),
    "at": pa.timestamp("us", tz="UTC"),
    "ok": pa.bool_(),
}
COLUMNS = Columns(dict(TYPES))
SERVING = Serving(aggregates=True)


def _parse(query: str, serving: Serving = SERVING) -> object:
    params = [tuple(p.split("=", 1)) for p in query.split("&")] if query else []
    return parse(params, COLUMNS, serving)  # type: ignore[arg-type]


def test_values_are_parsed_to_their_column_type() -> None:
    asked = _parse(
        "id=gte.3&amount=lt.10.5&score=neq.1e3&day=eq.2024-05-31&at=gt.2024-05-31T12:00:00Z"
        '&ok=eq.true&name=in.(a,"b,c",d)'
    )
    found = {(f.column, f.op): f.values for f in asked.filters}  # type: ignore[attr-defined]
    assert found[("id", "gte")] == (3,)
    assert found[("amount", "lt")] == (Decimal("10.5"),)
    assert found[("score", "neq")] == (1000.0,)
    assert found[("day", "eq")] == (date(2024, 5, 31),)
    assert found[("at", "gt")] == (datetime(2024, 5, 31, 12, tzinfo=UTC),)
    assert found[("ok", "eq")] == (True,)
    assert found[("name", "in")] == ("a", "b,c", "d")


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("id=eq.1; drop table x", "'1; drop table x' is not a whole number"),
        ("small=eq.200", "is not a whole number (int8)"),
        ("amount=eq.123456789.5", "amount: '123456789.5' has more digits than a decimal128"),
        ("score=gt.nan", "is not a double"),
        ("day=eq.yesterday", "is not a date32"),
        ("ok=eq.1", "is not a bool"),
        ("id=like.1%", "like is for text columns"),
        ("id=between.1", "no operator"),
        ("id=1", "no operator"),
        ("nmae=eq.x", "did you mean 'name'?"),
        ("name=eq.a\x00b", "is not a string"),
        ("name=is.maybe", "use is.null or is.notnull"),
        ('name=in.(a,"b)', "unclosed double quote"),
        ("fields=id,id", "names a column twice"),
        ("fields=id,nope", "no column 'nope'"),
        ("sort=-nope", "no column 'nope' to sort by"),
        ("limit=0", "outside 1..10000"),
        ("limit=10001", "outside 1..10000"),
        ("limit=1 or 1=1", "is not a whole number"),
        ("format=xml", "format='xml' is not one"),
        ("as_of=1;2", "is not a release id"),
        ("aggregate=sum(name)", "name is not a number"),
        ("aggregate=drop(id)", "is not one"),
        ("group_by=id&fields=id", "fields cannot be combined"),
        ("limit=1&limit=2", "given twice"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(query: str, says: str) -> None:
    with pytest.raises(ApiError) as caught:
        _parse(query)
    assert caught.value.status == 400
    assert says in caught.value.message + (caught.value.hint or ""), caught.value.message


def test_aggregates_only_where_the_sidecar_allows_them() -> None:
    with pytest.raises(ApiError, match="does not serve aggregates"):
        _parse("group_by=name&aggregate=count", Serving())


def test_the_same_read_asked_two_ways_is_one_request() -> None:
    one = _parse("id=gte.1&name=eq.x&limit=5")
    two = _parse("limit=5&name=eq.x&id=gte.1")
    assert one == two
    assert one.shape() == two.shape()  # type: ignore[attr-defined]


def test_a_text_value_reaches_sql_only_as_a_quoted_literal() -> None:
    hostile = "x' OR '1'='1"
    asked = _parse(f"name=eq.{hostile}")
    sql = build(asked, exp.to_table("t"), COLUMNS, row_policy=None, tiebreak=()).sql("duckdb")  # type: ignore[arg-type]
    assert "'x'' OR ''1''=''1'" in sql  # one literal, its quotes doubled


@pytest.fixture
def data() -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    conn.execute(
        "create table t as select i as id, (i % 3)::int8 as small, (i * 1.5)::decimal(10,2) "
        "as amount, case when i % 4 = 0 then null else i / 2.0 end as score, "
        "case when i % 5 = 0 then null else 'name_' || (i % 7) end as name, "
        "date '2024-01-01' + i::int as day, timestamptz '2024-01-01 00:00:00+00' + i * interval 1 "
        "hour as at, i % 2 = 0 as ok, i as _pos from range(1, 101) r(i)"
    )
    return conn


def _pages(conn: duckdb.DuckDBPyConnection, query: str) -> list[list[object]]:
    """Walk every page of `query` by keyset; the rows in page order."""
    asked = _parse(query)
    rows: list[list[object]] = []
    after = None
    for _ in range(1000):
        sql = build(
            asked,  # type: ignore[arg-type]
            exp.to_table("t"),
            COLUMNS,
            row_policy=None,
            tiebreak=("_pos",),
            after=after,
        ).sql("duckdb")
        page = conn.sql(sql).fetchall()
        more = len(page) > asked.limit  # type: ignore[attr-defined]
        page = page[: asked.limit]  # type: ignore[attr-defined]
        rows += [list(r[: len(asked.fields)]) for r in page]  # type: ignore[attr-defined]
        if not more:
            return rows
        keys = key_names(asked, ("_pos",))  # type: ignore[arg-type]
        after = list(page[-1][len(asked.fields) : len(asked.fields) + len(keys)])  # type: ignore[attr-defined]
    raise AssertionError("pages never ended")


@pytest.mark.parametrize(
    "query",
    [
        "limit=7",
        "sort=-score&limit=6",  # ties? no; NULLs last
        "sort=small,-name&limit=9",  # ties and NULLs on both keys
        "sort=name&limit=1&small=eq.1",
        "sort=-ok,score&limit=13&name=is.notnull",
    ],
)
def test_keyset_pages_return_every_row_once_in_order(
    data: duckdb.DuckDBPyConnection, query: str
) -> None:
    asked = _parse(query)
    whole = dataclasses.replace(asked, limit=10**6)  # the same query as one page
    sql = build(whole, exp.to_table("t"), COLUMNS, row_policy=None, tiebreak=("_pos",))
    expected = [list(r[: len(asked.fields)]) for r in data.sql(sql.sql("duckdb")).fetchall()]  # type: ignore[attr-defined]
    assert _pages(data, query) == expected
    assert len(expected) > 1


def test_masks_and_row_policy_apply_before_filters(data: duckdb.DuckDBPyConnection) -> None:
    columns = Columns({**TYPES, "name": pa.string()}, masked={"name": Mask.PARTIAL})
    asked = parse([("name", "like.*6")], columns, SERVING)
    policy = exp.condition("small = 1")
    sql = build(asked, exp.to_table("t"), columns, row_policy=policy, tiebreak=()).sql("duckdb")
    rows = data.sql(sql).fetchall()
    names = {r[4] for r in rows}
    assert names == {"****_6"}  # the clear value never comes back
    assert {r[1] for r in rows} == {1}  # the row policy held
    # filtering on the clear value finds nothing: filters see what the role sees
    clear = parse([("name", "eq.name_6")], columns, SERVING)
    sql = build(clear, exp.to_table("t"), columns, row_policy=policy, tiebreak=()).sql("duckdb")
    assert data.sql(sql).fetchall() == []


def test_a_cursor_cannot_be_made_up_or_altered() -> None:
    secret = b"k" * 32
    at = Position(3, 42, (("id", True),), ("7", None))
    text = encode_cursor(at, secret)
    assert decode_cursor(text, secret) == at
    body, mac = text.split(".")
    for forged in (body + "." + "0" * 32, body[:-2] + "AA." + mac, "x", text + "x"):
        with pytest.raises(ApiError, match="not one this API gave"):
            decode_cursor(forged, secret)
    with pytest.raises(ApiError):
        decode_cursor(text, b"other" * 8)
