"""A data API request: its parameters parsed and checked against the product's columns, then
built as ONE sqlglot query — never SQL text put together from what a client sent.

    GET /v1/marts/orders?country=in.(DE,FR)&amount=gte.10&sort=-amount&fields=id,amount
                        &limit=50&cursor=…&format=csv

Filters are `column=operator.value` (PostgREST's spelling): eq, neq, gt, gte, lt, lte,
in.(a,b), like.pat / ilike.pat (`*` or `%` any text, `_` one character), is.null, is.notnull;
a column named like a reserved parameter is filtered as `where.column=…`. Several filters
on one column all apply. `sort=-a,b` orders (NULLs last); pages follow each other by keyset
(`cursor=` from the previous page), never by offset, so a page costs the same wherever it is,
and a cursor pins the data it started on: no row is skipped or repeated while a release lands.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import hashlib
import hmac
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Context, Decimal, InvalidOperation
from typing import Any

import pyarrow as pa
from sqlglot import exp

from headwater.contracts.policies import Mask
from headwater.contracts.specs import Serving
from headwater.govern.masking import masked
from headwater.serve.errors import ApiError

RESERVED = ("fields", "sort", "limit", "cursor", "format", "as_of", "group_by", "aggregate")
OPERATORS = ("eq", "neq", "gt", "gte", "lt", "lte", "in", "like", "ilike", "is")
FUNCTIONS = ("count", "sum", "avg", "min", "max", "count_distinct")
MAX_IN = 1000  # values of one `in.(…)`
KEY = "_hw_k"  # the hidden columns a page's cursor is made from
_COMPARE = {
    "eq": exp.EQ,
    "neq": exp.NEQ,
    "gt": exp.GT,
    "gte": exp.GTE,
    "lt": exp.LT,
    "lte": exp.LTE,
}


@dataclass(frozen=True)
class Filter:
    column: str
    op: str
    values: tuple[Any, ...]  # parsed to the column's type; `is`: ("null",) or ("notnull",)


@dataclass(frozen=True)
class Aggregate:
    function: str
    column: str | None  # None: count(*)

    @property
    def name(self) -> str:
        return self.function if self.column is None else f"{self.function}_{self.column}"


@dataclass(frozen=True)
class Request:
    """One read, normalized: the same read asked two ways is the same `Request`."""

    fields: tuple[str, ...]
    filters: tuple[Filter, ...] = ()
    sort: tuple[tuple[str, bool], ...] = ()  # (column, descending)
    limit: int | None = 100  # None: every row (Python's `read`; a page always has one)
    group_by: tuple[str, ...] = ()
    aggregates: tuple[Aggregate, ...] = ()
    cursor: str | None = None
    format: str | None = None
    as_of: int | None = None

    @property
    def grouped(self) -> bool:
        return bool(self.group_by or self.aggregates)

    def shape(self) -> dict[str, Any]:
        """What the read asks, as plain data (the cache key and the audit record use it)."""
        return {
            "fields": list(self.fields),
            "filters": [[f.column, f.op, [_plain(v) for v in f.values]] for f in self.filters],
            "sort": [[c, d] for c, d in self.sort],
            "limit": self.limit,
            "group_by": list(self.group_by),
            "aggregates": [a.name for a in self.aggregates],
        }


@dataclass(frozen=True)
class Position:
    """Where a page ended: the data it read and the keys of its last row."""

    release: int | None
    snapshot: int
    sort: tuple[tuple[str, bool], ...]
    keys: tuple[str | None, ...]


@dataclass
class Columns:
    """The product's columns as a role sees them: name → Arrow type (a masked one is text)."""

    types: dict[str, pa.DataType]
    masked: dict[str, Mask] = field(default_factory=dict)
    salt: str = ""  # the hash mask's salt
    kinds: dict[str, str] = field(default_factory=dict)  # a masked column's type family


# ---- parsing ------------------------------------------------------------------------------


def parse(params: Sequence[tuple[str, str]], columns: Columns, serving: Serving) -> Request:
    """Check every parameter and value; the normalized request.

    Raises:
        ApiError(400): naming the parameter, what is wrong and what would be valid.
    """
    reserved: dict[str, str] = {}
    filters: list[Filter] = []
    for name, value in params:
        if name in RESERVED:
            if name in reserved:
                raise ApiError(400, f"{name} is given twice; give it once")
            reserved[name] = value
            continue
        column = name.removeprefix("where.")
        if column not in columns.types:
            raise ApiError(400, f"unknown parameter {_shown(name)}", hint=_known(column, columns))
        filters.append(_filter(column, columns.types[column], value))
    group_by = _names(reserved.get("group_by"), columns, "group_by")
    aggregates = _aggregates(reserved.get("aggregate"), columns)
    if (group_by or aggregates) and not serving.aggregates:
        raise ApiError(
            400,
            "this model does not serve aggregates",
            hint="its sidecar would say serve: {aggregates: true}",
        )
    if group_by or aggregates:
        outputs = [*group_by, *(a.name for a in aggregates)]
        if "fields" in reserved:
            raise ApiError(400, "fields cannot be combined with group_by/aggregate")
        fields = tuple(outputs)
    else:
        asked = _names(reserved.get("fields"), columns, "fields")
        fields = tuple(asked) if asked else tuple(columns.types)
    sortable = list(fields) if group_by or aggregates else list(columns.types)
    sort = _sort(reserved.get("sort"), sortable)
    return Request(
        fields=fields,
        filters=tuple(sorted(filters, key=lambda f: (f.column, f.op, repr(f.values)))),
        sort=sort,
        limit=_limit(reserved.get("limit"), serving),
        group_by=tuple(group_by),
        aggregates=tuple(aggregates),
        cursor=reserved.get("cursor") or None,
        format=_format(reserved.get("format")),
        as_of=release_param(reserved.get("as_of")),
    )


def _shown(text: str, most: int = 80) -> str:
    """A client's text quoted in a message, cut short (an error never echoes a megabyte)."""
    return repr(text if len(text) <= most else text[:most] + "…")


def _known(column: str, columns: Columns) -> str:
    names = list(columns.types)
    close = difflib.get_close_matches(column, names, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    shown = ", ".join(names[:20]) + (" …" if len(names) > 20 else "")
    return f"filter a column ({shown}) or use {', '.join(RESERVED)}"


def _names(text: str | None, columns: Columns, param: str) -> list[str]:
    if text is None:
        return []
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise ApiError(400, f"{param}={_shown(text)} lists an empty name", hint="e.g. a,b")
    for name in names:
        if name not in columns.types:
            raise ApiError(400, f"{param}: no column {_shown(name)}", hint=_known(name, columns))
    if len(set(names)) < len(names):
        raise ApiError(400, f"{param}={text!r} names a column twice")
    return names


def _aggregates(text: str | None, columns: Columns) -> list[Aggregate]:
    if text is None:
        return []
    out = []
    for item in (i.strip() for i in text.split(",")):
        function, _, rest = item.partition("(")
        column = rest.removesuffix(")").strip() if rest else ""
        if function not in FUNCTIONS or (rest and not rest.endswith(")")):
            raise ApiError(
                400,
                f"aggregate {item!r} is not one",
                hint=f"use count, or one of {', '.join(FUNCTIONS)} of a column: sum(amount)",
            )
        if function == "count" and column in ("", "*"):
            out.append(Aggregate("count", None))
            continue
        if column not in columns.types:
            raise ApiError(400, f"aggregate {item!r}: no column {column!r}")
        kind = columns.types[column]
        if function in ("sum", "avg") and not (
            pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
        ):
            raise ApiError(400, f"aggregate {item!r}: {column} is not a number ({kind})")
        out.append(Aggregate(function, column))
    if len({a.name for a in out}) < len(out):
        raise ApiError(400, f"aggregate={text!r} asks for one aggregate twice")
    return out


def _sort(text: str | None, sortable: list[str]) -> tuple[tuple[str, bool], ...]:
    if text is None:
        return ()
    out = []
    for item in (i.strip() for i in text.split(",")):
        name = item.removeprefix("-").removeprefix("+")
        if name not in sortable:
            close = difflib.get_close_matches(name, sortable, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else "sort=-a,b sorts by a desc, b"
            raise ApiError(400, f"sort: no column {_shown(name)} to sort by", hint=hint)
        out.append((name, item.startswith("-")))
    if len({n for n, _ in out}) < len(out):
        raise ApiError(400, f"sort={text!r} names a column twice")
    return tuple(out)


def _limit(text: str | None, serving: Serving) -> int:
    if text is None:
        return serving.default_limit
    try:
        limit = int(text)
    except ValueError:
        raise ApiError(400, f"limit={_shown(text)} is not a whole number") from None
    if not 1 <= limit <= serving.max_limit:
        raise ApiError(400, f"limit={limit} is outside 1..{serving.max_limit}")
    return limit


FORMATS = {
    "json": "application/json",
    "csv": "text/csv",
    "arrow": "application/vnd.apache.arrow.stream",
    "parquet": "application/vnd.apache.parquet",
}


def _format(text: str | None) -> str | None:
    if text is None:
        return None
    if text not in FORMATS:
        raise ApiError(400, f"format={_shown(text)} is not one", hint=f"use {', '.join(FORMATS)}")
    return text


def release_param(text: str | None) -> int | None:
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise ApiError(400, f"as_of={_shown(text)} is not a release id", hint="headwater releases")
    return int(text)


def _filter(column: str, kind: pa.DataType, text: str) -> Filter:
    op, dot, raw = text.partition(".")
    if not dot or op not in OPERATORS:
        raise ApiError(
            400,
            f"{column}={_shown(text)}: no operator",
            hint=f"write {column}=op.value with op one of {', '.join(OPERATORS)}, e.g. "
            f"{column}=eq.1",
        )
    if op == "is":
        if raw not in ("null", "notnull"):
            raise ApiError(400, f"{column}={text!r}: use is.null or is.notnull")
        return Filter(column, op, (raw,))
    if op in ("like", "ilike"):
        if not _text(kind):
            raise ApiError(400, f"{column}: {op} is for text columns; {column} is {kind}")
        return Filter(column, op, (value(column, kind, raw).replace("*", "%"),))
    if op == "in":
        if not (raw.startswith("(") and raw.endswith(")")):
            raise ApiError(400, f"{column}={text!r}: write in.(a,b,c)")
        items = _split(raw[1:-1])
        if not items or len(items) > MAX_IN:
            raise ApiError(400, f"{column}: in.(…) takes 1 to {MAX_IN} values")
        return Filter(column, op, tuple(value(column, kind, i) for i in items))
    return Filter(column, op, (value(column, kind, raw),))


def _split(text: str) -> list[str]:
    """`a,"b,c",d` → a, b,c, d (double quotes keep commas; `""` is a quote)."""
    out: list[str] = []
    item: list[str] = []
    quoted = False
    i = 0
    while i < len(text):
        char = text[i]
        if char == '"':
            if quoted and text[i + 1 : i + 2] == '"':
                item.append('"')
                i += 1
            else:
                quoted = not quoted
        elif char == "," and not quoted:
            out.append("".join(item))
            item = []
        else:
            item.append(char)
        i += 1
    if quoted:
        raise ApiError(400, f"in.({text}) has an unclosed double quote")
    out.append("".join(item))
    return out


def _text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def value(column: str, kind: pa.DataType, text: str) -> Any:
    """`text` as a value of the column's type.

    Raises:
        ApiError(400): it is not one (naming the column and its type)."""
    try:
        return _value(kind, text)
    except _TooPrecise as err:
        raise ApiError(400, f"{column}: {err}", hint=err.hint) from None
    except (ValueError, ArithmeticError, InvalidOperation):
        raise ApiError(
            400,
            f"{column}: {text[:80]!r} is not a {_type_name(kind)}",
            hint=_example(kind),
        ) from None


class _TooPrecise(ValueError):
    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.hint = hint


def _value(kind: pa.DataType, text: str) -> Any:
    if "\x00" in text:
        raise ValueError("NUL")
    if not _text(kind) and not text.isascii():  # Python reads fullwidth digits as digits
        raise ValueError(text)
    if pa.types.is_boolean(kind):
        if text.lower() not in ("true", "false"):
            raise ValueError(text)
        return text.lower() == "true"
    if pa.types.is_integer(kind):
        number = int(text.strip())
        bits = kind.bit_width
        low, high = (
            (0, 2**bits - 1)
            if pa.types.is_unsigned_integer(kind)
            else (
                -(2 ** (bits - 1)),
                2 ** (bits - 1) - 1,
            )
        )
        if not low <= number <= high:
            raise ValueError(text)
        return number
    if pa.types.is_floating(kind):
        real = float(text)
        if not math.isfinite(real):
            raise ValueError(text)
        return real
    if pa.types.is_decimal(kind):
        exact = Decimal(text.strip())
        if not exact.is_finite():
            raise ValueError(text)
        digits = exact.as_tuple()
        places = max(0, -int(digits.exponent))
        whole = kind.precision - kind.scale  # digits before the point the column holds
        # compared in DECIMAL(38, places): the column's own digits must still fit
        if len(digits.digits) - places > whole or places > 38 - whole:
            raise _TooPrecise(
                f"{_shown(text)} has more digits than a {kind} column is compared with",
                f"at most {whole} before the point and {38 - whole} after it",
            )
        # at least the column's places, so comparing never rounds the column's values
        wide = Context(prec=40)  # the default 28 digits cannot hold DECIMAL(38, …)
        return exact.quantize(Decimal(1).scaleb(-max(places, kind.scale)), context=wide)
    if pa.types.is_date(kind):
        return date.fromisoformat(text.strip())
    if pa.types.is_timestamp(kind):
        moment = datetime.fromisoformat(text.strip())
        if kind.tz is not None and moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if kind.tz is None and moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        return moment
    if _text(kind):
        return text
    raise ValueError(f"cannot filter {kind}")


def _type_name(kind: pa.DataType) -> str:
    if pa.types.is_integer(kind):
        return f"whole number ({kind})"
    if pa.types.is_timestamp(kind):
        return "timestamp"
    return str(kind)


def _example(kind: pa.DataType) -> str:
    if pa.types.is_date(kind):
        return "e.g. 2024-05-31"
    if pa.types.is_timestamp(kind):
        return "e.g. 2024-05-31T12:00:00Z"
    if pa.types.is_boolean(kind):
        return "true or false"
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "e.g. 42"
    return "this column cannot be filtered"


# ---- building -----------------------------------------------------------------------------


def literal(value: Any) -> exp.Expr:
    """A parsed value as a SQL literal (text is quoted by sqlglot, never spliced in)."""
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.Literal.number(value)
    if isinstance(value, float):
        return exp.Literal.number(repr(value))
    if isinstance(value, Decimal):
        scale = min(max(0, -int(value.as_tuple().exponent)), 37)
        exact = exp.DataType.build(f"DECIMAL(38, {scale})")
        return exp.cast(exp.Literal.string(str(value)), exact)
    if isinstance(value, datetime):
        moment = exp.DataType.build("TIMESTAMPTZ" if value.tzinfo else "TIMESTAMP")
        return exp.cast(exp.Literal.string(value.isoformat()), moment)
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build("DATE"))
    return exp.Literal.string(str(value))


def _column(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _bind(value: Any, name: str, params: dict[str, Any] | None) -> exp.Expr:
    """A value as a placeholder `name` (its value put in `params`), or inline as a literal
    when there are no `params`."""
    if params is None or value is None:
        return literal(value)
    params[name] = value
    return exp.Placeholder(this=name)


def _condition(f: Filter, first: int, params: dict[str, Any] | None) -> exp.Expr:
    """The SQL of one filter; its values are parameters f<first>, f<first + 1>, …"""
    column = _column(f.column)
    if f.op == "is":
        null = column.is_(exp.null())
        return null if f.values[0] == "null" else exp.not_(null)
    values = [_bind(v, f"f{first + i}", params) for i, v in enumerate(f.values)]
    if f.op == "in":
        return column.isin(*values)
    if f.op == "like":
        return exp.Like(this=column, expression=values[0])
    if f.op == "ilike":
        return exp.ILike(this=column, expression=values[0])
    return _COMPARE[f.op](this=column, expression=values[0])


def _after(
    keys: Sequence[tuple[exp.Expr, bool]], values: Sequence[Any], params: dict[str, Any] | None
) -> exp.Expr:
    """Rows after the one whose keys were `values`, in the order of `keys` (NULLs last);
    key i's value is the parameter k<i>."""
    bound = [_bind(v, f"k{i}", params) for i, v in enumerate(values)]
    branches: list[exp.Expr] = []
    for i, ((key, desc), value) in enumerate(zip(keys, values, strict=True)):
        if value is None:
            continue  # after a NULL (last) come only rows equal to it so far
        beyond = (exp.LT if desc else exp.GT)(this=key.copy(), expression=bound[i].copy())
        step: exp.Expr = exp.or_(beyond, key.copy().is_(exp.null()))
        equal = [
            exp.NullSafeEQ(this=k.copy(), expression=b.copy())
            for (k, _), b in zip(keys[:i], bound[:i], strict=True)
        ]
        branches.append(exp.and_(*equal, step) if equal else step)
    return exp.or_(*branches) if branches else exp.false()


def skeleton(request: Request, after: Sequence[Any] | None) -> tuple[Any, ...]:
    """What the text of `build`'s query depends on besides the source, the role's columns
    and row policy: the same skeleton, the same SQL, only the parameters differ."""
    return (
        request.fields,
        # an `is` filter's value is part of the text (IS NULL, NOT … IS NULL)
        tuple(
            (f.column, f.op, f.values if f.op == "is" else len(f.values)) for f in request.filters
        ),
        request.sort,
        request.limit,
        request.group_by,
        tuple(a.name for a in request.aggregates),
        None if after is None else tuple(v is None for v in after),
    )


def bound(request: Request, after: Sequence[Any] | None) -> dict[str, Any]:
    """The parameters of `build`'s query, as `build(..., params=)` names them."""
    out: dict[str, Any] = {}
    first = 0
    for f in request.filters:
        if f.op != "is":
            for i, v in enumerate(f.values):
                if v is not None:
                    out[f"f{first + i}"] = v
            first += len(f.values)
    for i, v in enumerate(after or ()):
        if v is not None:
            out[f"k{i}"] = v
    return out


def filtered(
    request: Request,
    source: exp.Expr,
    columns: Columns,
    *,
    row_policy: exp.Expr | None,
    carry: Sequence[str] = (),
    params: dict[str, Any] | None = None,
) -> exp.Select:
    """The rows a role may see (row policy, then masks) that pass the request's filters, as a
    SELECT without its projection yet; `carry`: source columns kept unmasked beside them
    (a row's position)."""
    visible = [
        masked(n, columns.masked[n], salt=columns.salt, kind=columns.kinds.get(n, "text")).as_(
            n, quoted=True
        )
        if n in columns.masked
        else _column(n)
        for n in columns.types
    ]
    base = exp.select(*visible, *[_column(t) for t in carry]).from_(source)
    if row_policy is not None:
        base = base.where(row_policy.copy())
    rows = exp.select().from_(base.subquery("_hw_base"))
    first = 0
    for f in request.filters:
        rows = rows.where(_condition(f, first, params))
        first += 0 if f.op == "is" else len(f.values)
    return rows


def build(
    request: Request,
    source: exp.Expr,
    columns: Columns,
    *,
    row_policy: exp.Expr | None,
    tiebreak: Sequence[str],
    after: Sequence[Any] | None = None,
    paged: bool = True,
    params: dict[str, Any] | None = None,
) -> exp.Select:
    """The query of one page: the product's rows as the role may see them (row policy,
    masks), the request's filters, then keyset order and `limit + 1` rows (one more tells
    whether a page follows). Hidden `_hw_k<i>` columns carry each row's keys. Given `params`,
    every value is a parameter put there (the text then depends only on `skeleton`)."""
    tiebreak = tiebreak if paged else ()
    rows = filtered(request, source, columns, row_policy=row_policy, carry=tiebreak, params=params)
    if request.grouped:
        rows = rows.select(*[_column(g) for g in request.group_by])
        rows = rows.select(*[_aggregate(a).as_(a.name, quoted=True) for a in request.aggregates])
        if request.group_by:
            rows = rows.group_by(*[_column(g) for g in request.group_by])
        order = list(request.sort) + [(g, False) for g in request.group_by]
    else:
        rows = rows.select(*[_column(n) for n in request.fields])
        order = list(request.sort) + [(t, False) for t in tiebreak]
    if not paged:  # Python's `read`: sorted only if asked, limited only if asked
        if request.sort:
            rows = rows.order_by(
                *[exp.Ordered(this=_column(n), desc=d, nulls_first=False) for n, d in request.sort]
            )
        return rows if request.limit is None else rows.limit(request.limit)
    seen: set[str] = set()
    keys: list[tuple[str, bool]] = []
    for name, desc in order:
        if name not in seen:
            seen.add(name)
            keys.append((name, desc))
    rows = rows.select(*[_column(n).as_(f"{KEY}{i}") for i, (n, _) in enumerate(keys)])
    page = exp.select(exp.Star()).from_(rows.subquery("_hw_rows"))
    key_columns = [(exp.column(f"{KEY}{i}"), d) for i, (_, d) in enumerate(keys)]
    if after is not None:
        if len(after) != len(keys):
            raise ApiError(400, "the cursor is not one of this request", hint="start over")
        page = page.where(_after(key_columns, after, params))
    if key_columns:  # none: a grouped page without groups is one row
        page = page.order_by(
            *[exp.Ordered(this=k.copy(), desc=d, nulls_first=False) for k, d in key_columns]
        )
    assert request.limit is not None, "a page has a limit"
    return page.limit(request.limit + 1)


def key_names(request: Request, tiebreak: Sequence[str]) -> list[str]:
    """The columns whose values a page's cursor carries (in key order)."""
    order = list(request.sort) + [
        (n, False) for n in (request.group_by if request.grouped else tiebreak)
    ]
    out: list[str] = []
    for name, _ in order:
        if name not in out:
            out.append(name)
    return out


def _aggregate(a: Aggregate) -> exp.Expr:
    if a.column is None:
        return exp.Count(this=exp.Star())
    column = _column(a.column)
    if a.function == "count_distinct":
        return exp.Count(this=exp.Distinct(expressions=[column]))
    return exp.func(a.function, column)


# ---- cursors ------------------------------------------------------------------------------


def encode_cursor(position: Position, secret: bytes) -> str:
    """An opaque, signed cursor (a client cannot make one up or alter one)."""
    body = json.dumps(
        {
            "r": position.release,
            "p": position.snapshot,
            "s": [[c, d] for c, d in position.sort],
            "k": list(position.keys),
        },
        separators=(",", ":"),
    ).encode()
    mac = hmac.new(secret, body, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(body).decode().rstrip("=") + "." + mac.hex()


def decode_cursor(text: str, secret: bytes) -> Position:
    """The position a cursor this API gave stands for.

    Raises:
        ApiError(400): it is not one this API gave (altered, cut, or another server's)."""
    bad = ApiError(400, "cursor is not one this API gave", hint="pass `next` of the last page")
    encoded, dot, mac = text.partition(".")
    if not dot or len(text) > 8192:
        raise bad
    try:
        body = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        expected = hmac.new(secret, body, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(expected, bytes.fromhex(mac)):
            raise bad
        data = json.loads(body)
        return Position(
            data["r"],
            int(data["p"]),
            tuple((str(c), bool(d)) for c, d in data["s"]),
            tuple(data["k"]),
        )
    except (ValueError, binascii.Error, KeyError, TypeError):
        raise bad from None


def key_text(value: Any) -> str | None:
    """A key value as the cursor keeps it (parsed back with `value()` of its type)."""
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _plain(value: Any) -> Any:
    return key_text(value) if not isinstance(value, str | int) or isinstance(value, bool) else value


def kinds(
    columns: Columns, request: Request, tiebreak: Mapping[str, pa.DataType]
) -> dict[str, pa.DataType]:
    """The type of every column a page may be keyed on (a grouped page's aggregates too)."""
    out = dict(columns.types) | dict(tiebreak)
    for a in request.aggregates:
        if a.function in ("count", "count_distinct"):
            out[a.name] = pa.int64()
        elif a.function == "avg":
            out[a.name] = pa.float64()
        elif a.function == "sum" and a.column is not None:
            kind = columns.types[a.column]
            if pa.types.is_integer(kind):
                out[a.name] = pa.decimal128(38, 0)
            elif pa.types.is_decimal(kind):
                out[a.name] = pa.decimal128(38, kind.scale)
            else:
                out[a.name] = pa.float64()
        elif a.column is not None:
            out[a.name] = columns.types[a.column]
    return out
