"""The data API against its own OpenAPI document: schemathesis makes valid and invalid
requests from every operation's documented parameters, sent to the live server with the
admin's key; whatever is asked, the answer is never a 5xx.

(schemathesis' `from_fixture(...).parametrize()` does not run under pytest 9 — it sets
`request.node._nodeid`, which pytest 9 no longer has — so each operation's strategy is
driven with hypothesis directly, the lower-level API schemathesis documents for this.)"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from headwater.serve.query import FUNCTIONS, OPERATORS
from tests.serve.conftest import Api

MAX_EXAMPLES = 150  # per operation and generation mode: bounded, well under a minute in all
OPERATIONS = ["/v1/marts/orders_served", "/v1/marts/events_daily", "/v1/models", "/v1/health"]
MODES = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]


@pytest.fixture(scope="session")
def api_schema(api: Api) -> schemathesis.BaseSchema:
    """The live document (its filter parameters follow the columns served)."""
    return schemathesis.openapi.from_url(f"{api.base}/openapi.json")


def test_the_document_has_every_operation(api_schema: schemathesis.BaseSchema) -> None:
    found = {result.ok().path for result in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)
    parameters = {
        p.name
        for p in api_schema["/v1/marts/orders_served"]["GET"].query  # type: ignore[index]
    }
    assert {"order_id", "label", "fields", "sort", "limit", "cursor", "format", "as_of"} <= (
        parameters
    )
    assert {"group_by", "aggregate"} <= parameters


CASES = [(path, mode) for path in OPERATIONS for mode in MODES]
# without parameters there is no invalid request to make
CASES = [(p, m) for p, m in CASES if p.startswith("/v1/marts/") or m == MODES[0]]


@pytest.mark.slow
@pytest.mark.parametrize(("path", "mode"), CASES, ids=[f"{p}-{m.value}" for p, m in CASES])
def test_no_request_is_a_server_error(
    api_schema: schemathesis.BaseSchema, api: Api, path: str, mode: schemathesis.GenerationMode
) -> None:
    operation = api_schema[path]["GET"]  # type: ignore[index]
    strategy = operation.as_strategy(generation_mode=mode)
    tried: list[int] = []

    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,  # the same examples every run: a failure is a bug, not luck
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case: schemathesis.Case) -> None:
        response = case.call(base_url=api.base, headers=api.auth("admin"), timeout=30)
        tried.append(response.status_code)
        case.validate_response(response, checks=[not_a_server_error])

    check()
    assert tried, "no request was made"
    assert not [s for s in tried if s >= 500]


# ---- the request grammar, fuzzed --------------------------------------------------------
# schemathesis knows the parameters only as strings matching `op.anything`; this draws
# them from the grammar itself — mostly valid (real columns, values of their types, lists
# of columns, aggregates), now and then hostile — where the edge cases are.

NASTY = [
    "",
    " ",
    "null",
    "NULL",
    "nan",
    "-inf",
    "1e999",
    "1_0",
    "0x10",
    " 7 ",
    "\uff11",  # a full-width 1
    "\u00b2",  # a superscript 2
    "9" * 40,
    "-" + "9" * 19,
    "true",
    "2026-08-13",
    "2026-08-13T13:06:53+14:00",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "2026-02-30",
    "'; drop table x; --",
    '"',
    "\\",
    "%",
    "_",
    "*",
    "(",
    ")",
    ",",
    "a\x00b",
    "😀",
]
integers = st.one_of(st.integers(-5, 2000), st.integers()).map(str)
numbers = st.one_of(
    st.decimals(min_value=-1000, max_value=1000, places=2, allow_nan=False).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.from_regex(r"-?[0-9]{0,12}(\.[0-9]{0,40})?([eE][-+]?[0-9]{1,3})?", fullmatch=True),
)
texts = st.one_of(
    st.sampled_from(["EUR", "USD", "GBP", "paid", "shipped", "red, green", 'Blue "sky"']),
    st.text(max_size=20),
)
moments = st.datetimes().map(lambda d: d.isoformat())
timezoned = st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
days = st.dates().map(lambda d: d.isoformat())
booleans = st.sampled_from(["true", "false", "TRUE", "yes"])
MODELS = {
    "/v1/marts/orders_served": {
        "order_id": integers,
        "customer_id": integers,
        "limit": integers,
        "amount": numbers,
        "ratio": numbers,
        "status": texts,
        "label": texts,
        "email": texts,
        "full_name": texts,
        "currency": texts,
        "ordered_at": st.one_of(moments, timezoned, days),
        "order_day": days,
        "is_paid": booleans,
    },
    "/v1/marts/events_daily": {
        "day": st.one_of(moments, timezoned, days),
        "event_type": texts,
        "event_count": integers,
    },
}


hostile = st.one_of(st.sampled_from(NASTY), st.text(max_size=30))


def often(valid: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Mostly `valid`, one time in ten something hostile."""
    return st.integers(0, 9).flatmap(lambda n: hostile if n == 0 else valid)


@st.composite
def a_filter(draw: st.DrawFn, types: dict[str, st.SearchStrategy[str]]) -> tuple[str, str]:
    column = draw(often(st.sampled_from(sorted(types))))
    kind = types.get(column, st.text(max_size=20))
    name = "where." + column if draw(st.integers(0, 5)) == 0 else column
    op = draw(often(st.sampled_from(OPERATORS)))
    if op == "in":
        value = "(" + ",".join(draw(st.lists(often(kind), min_size=1, max_size=4))) + ")"
    elif op == "is":
        value = draw(often(st.sampled_from(["null", "notnull"])))
    else:
        value = draw(often(kind))
    return name, f"{op}.{value}"


RESERVED = ["fields", "sort", "limit", "format", "as_of", "group_by", "aggregate", "cursor"]


@st.composite
def a_reserved(
    draw: st.DrawFn, types: dict[str, st.SearchStrategy[str]], name: str
) -> tuple[str, str]:
    columns = often(st.sampled_from(sorted(types)))
    if name in ("fields", "sort", "group_by"):
        items = draw(st.lists(columns, min_size=1, max_size=3))
        if name == "sort":
            items = [draw(st.sampled_from(["", "-"])) + i for i in items]
        return name, ",".join(items)
    if name == "aggregate":
        items = draw(
            st.lists(st.tuples(often(st.sampled_from(FUNCTIONS)), columns), min_size=1, max_size=3)
        )
        return name, ",".join(f if f == "count" else f"{f}({c})" for f, c in items)
    if name == "format":
        return name, draw(often(st.sampled_from(["json", "csv", "arrow", "parquet"])))
    if name == "limit":
        return name, draw(often(st.integers(1, 50).map(str)))
    if name == "as_of":
        return name, draw(often(st.integers(1, 3).map(str)))
    return name, draw(hostile)  # a cursor: only a tampered one can be drawn


@st.composite
def a_request(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]]]:
    path = draw(st.sampled_from(sorted(MODELS)))
    types = MODELS[path]
    params = draw(st.lists(a_filter(types), max_size=3))
    names = draw(st.lists(st.sampled_from(RESERVED[:-1]), max_size=3, unique=True))
    if draw(st.integers(0, 19)) == 0:
        names.append(draw(st.sampled_from(["cursor", *RESERVED])))  # maybe given twice
    params += [draw(a_reserved(types, name)) for name in names]
    return path, draw(st.permutations(params))


@pytest.mark.slow
@pytest.mark.parametrize("role", ["admin", "analyst"])
def test_the_request_grammar_never_makes_a_server_error(api: Api, role: str) -> None:
    seen: list[int] = []

    @given(request=a_request())
    @settings(
        max_examples=200,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(request: tuple[str, list[tuple[str, str]]]) -> None:
        path, params = request
        response = api.get(path, role, params)
        seen.append(response.status_code)
        assert response.status_code < 500, (path, params, response.text[:500])
        if response.headers.get("content-type", "").startswith("application/json"):
            body = response.json()
            assert ("data" in body) == (response.status_code == 200), body

    check()
    assert seen.count(200) > len(seen) / 10 and 400 in seen
