"""The conform query: one SQL pass that types a batch by its contract and says why rows fail.

Input is the Arrow batch registered as `_hw_in` (text fields for CSV, one `_hw_line` column for
JSON lines, typed columns for Parquet). Output has the contract's columns, the raw-zone metadata
columns, `_hw_reason` (NULL for a good row) and `_hw_record` (the original record, for bad rows).
"""

from __future__ import annotations

import json

import pyarrow as pa
from sqlglot import exp

import headwater.engine.dialect as authored
from headwater.contracts import Column, Contract, Evolution, OnFail, Rule
from headwater.contracts.predicates import HIDDEN, failure_reason
from headwater.contracts.specs import parse_watermark, sql_type
from headwater.engine import scratch
from headwater.ingest.source import JSON, LINE, ORIGIN, RECORD
from headwater.zones.layout import STREAM_METADATA

INPUT = "_hw_in"
RESERVED = "_hw_"  # the prefix of the raw zone's metadata columns: no source key may use it
UNKNOWN = "_hw_unknown"  # under `evolve`, JSON keys of each record the query did not expect
OP = "_hw_op"  # a change log's operation: only r, c and u carry a whole row
WHOLE_ROW_OPS = ("r", "c", "u")
_JSON = "_hw_json"
_KEYS = "_hw_keys"
_FIELDS = "_hw_fields"
_NESTED = {
    exp.DataType.Type.JSON,
    exp.DataType.Type.STRUCT,
    exp.DataType.Type.ARRAY,
    exp.DataType.Type.LIST,
    exp.DataType.Type.MAP,
}


def conform_query(
    contract: Contract,
    columns: list[str],
    fmt: str,
    *,
    extra_keys: list[str],
    per_row_origin: bool = False,
    unit: str = "record",
) -> exp.Select:
    """Build the conform query for a part with input `columns` in format `fmt`; with
    `per_row_origin` each row's origin is its `_hw_origin` column, else the `source` parameter.
    Input columns named in `STREAM_METADATA` (a stream's topic, offset, …) are carried into
    raw as they are; `unit` names what `_hw_position` counts in `_hw_source`."""
    json_input = fmt == JSON
    declared = [c.name for c in contract.columns]
    carried = [c for c in columns if c in STREAM_METADATA]
    columns = [c for c in columns if c not in STREAM_METADATA]
    whole = (
        exp.func("coalesce", exp.column(OP, quoted=True), exp.Literal.string("c")).isin(
            *[exp.Literal.string(op) for op in WHOLE_ROW_OPS]
        )
        if OP in carried
        else None
    )
    inner = exp.select(exp.Star())
    outer: list[exp.Expr] = []
    reasons: list[exp.Expr] = []
    for i, col in enumerate(contract.columns):
        if json_input:
            # typed by the one parse of the line; the raw value is looked up only when the
            # typed one is NULL (to tell a missing value from one that does not cast)
            typed: exp.Expr = exp.Dot(
                this=exp.column(_FIELDS), expression=exp.to_identifier(col.name, quoted=True)
            )
            raw: exp.Expr = (
                exp.Case()
                .when(typed.copy().is_(exp.null()), _json_value(col.name, nested=False))
                .else_(exp.Literal.string(""))
            )
        else:
            raw = exp.column(col.name, quoted=True) if col.name in columns else exp.null()
            typed = exp.TryCast(this=raw.copy(), to=sql_type(col.type))
        inner = inner.select(raw.as_(f"_s{i}"), typed.as_(f"_v{i}"))
        outer.append(exp.column(f"_v{i}").as_(col.name, quoted=True))
        reasons.extend(_column_reasons(col, f"_s{i}", f"_v{i}", whole))
        if _is_nested(col) and (json_input or col.name in columns):
            # the JSON of the value as it arrived: from the line, or of a typed (Parquet,
            # Arrow) input value
            arrived = (
                _json_value(col.name, nested=True)
                if json_input
                else exp.func("to_json", exp.column(col.name, quoted=True))
            )
            reasons.append(_nested_reason(col, f"_v{i}", arrived))
    evolve = contract.evolution is Evolution.EVOLVE
    refuse = contract.evolution in (Evolution.FREEZE, Evolution.DISCARD_ROW)
    if json_input:
        for key in extra_keys if evolve else []:
            inner = inner.select(_json_value(key, nested=False).as_(key, quoted=True))
            outer.append(exp.column(key, quoted=True))
        if evolve:  # keys not known yet: the caller adds them as columns and runs again
            inner = inner.select(_unknown_json_keys([*declared, *extra_keys]).as_("_unknown"))
            outer.append(exp.column("_unknown").as_(UNKNOWN))
        if refuse:
            inner = inner.select(_unknown_json_keys(declared).as_("_unknown"))
            reasons.append(_unknown_keys_reason(contract.evolution))
        reasons.extend(_key_reasons(exp.column(_KEYS)))
    else:
        for name in (c for c in columns if c not in declared):
            if evolve:
                outer.append(exp.column(name, quoted=True))
            elif refuse:
                reasons.append(
                    _when(
                        exp.column(name, quoted=True).is_(exp.null()).not_(),
                        f"unknown column {name!r} (evolution: {contract.evolution.value})",
                    )
                )
    # Anonymous: sqlglot's ConcatWs would make it NULL-propagating; DuckDB's skips NULLs
    joined = exp.Anonymous(this="concat_ws", expressions=[exp.Literal.string("; "), *reasons])
    reason: exp.Expr = exp.func("nullif", joined, exp.Literal.string("")) if reasons else exp.null()
    if json_input:
        reason = (
            exp.Case()
            .when(
                exp.column(_JSON).is_(exp.null()),
                exp.Literal.string("malformed JSON: not a JSON object"),
            )
            .else_(reason)
        )
        record: exp.Expr = exp.column(LINE)
        inner = inner.from_(_input_with_json(contract.columns))
    else:
        record = exp.func(
            "to_json",
            exp.func(
                "struct_pack",
                *[
                    exp.PropertyEQ(
                        this=exp.to_identifier(c, quoted=True),
                        expression=exp.column(c, quoted=True),
                    )
                    for c in columns
                ],
            ),
        )
        inner = inner.from_(INPUT)
    outer.extend(exp.column(c, quoted=True) for c in carried)
    outer.extend(metadata_columns(contract, per_row_origin=per_row_origin, unit=unit))
    reason_col: exp.Expr = exp.column("_hw_reason")
    checked = exp.select(*outer, reason.as_("_hw_reason"), record.as_("_hw_raw")).from_(
        inner.subquery("_c")
    )
    names = [e.alias_or_name for e in outer]
    # rules with on_fail: quarantine judge the typed record, so they apply on the way out
    routed = [r for r in contract.rules if r.action is OnFail.QUARANTINE]
    if routed:
        reason_col = exp.func(
            "nullif",
            exp.Anonymous(
                this="concat_ws",
                expressions=[
                    exp.Literal.string("; "),
                    reason_col,
                    *[failure_reason(r, hidden=_pii(contract, r)) for r in routed],
                ],
            ),
            exp.Literal.string(""),
        )
    return exp.select(
        *[exp.column(n, quoted=True) for n in names],
        reason_col.as_("_hw_reason"),
        exp.Case()
        .when(reason_col.copy().is_(exp.null()).not_(), exp.column("_hw_raw"))
        .as_("_hw_record"),
    ).from_(checked.subquery("_r"))


def arrow_types(types_sql: list[str]) -> list[pa.DataType]:
    """The Arrow types DuckDB produces for SQL types (so raw tables match what lands): the
    common ones mapped here as DuckDB maps them (tests compare), any other asked of DuckDB
    (a connection costs about 15 ms of every first landing)."""
    mapped = [_arrow_type(sql_type(t)) for t in types_sql]
    if all(t is not None for t in mapped):
        return [t for t in mapped if t is not None]
    query = exp.select(
        *[exp.cast(exp.null(), sql_type(t)).as_(f"c{i}") for i, t in enumerate(types_sql)]
    ).limit(0)
    engine = scratch()
    try:
        return list(engine.read(query).schema.types)
    finally:
        engine.close()


_T = exp.DataType.Type
_ARROW = {
    _T.BIGINT: pa.int64(),
    _T.INT: pa.int32(),
    _T.SMALLINT: pa.int16(),
    _T.TINYINT: pa.int8(),
    _T.DOUBLE: pa.float64(),
    _T.FLOAT: pa.float32(),
    _T.BOOLEAN: pa.bool_(),
    _T.VARCHAR: pa.string(),
    _T.TEXT: pa.string(),
    _T.DATE: pa.date32(),
    _T.TIMESTAMP: pa.timestamp("us"),
    _T.TIMESTAMPTZ: pa.timestamp("us", tz="UTC"),  # the engine's session zone is UTC
}


def _arrow_type(kind: exp.DataType) -> pa.DataType | None:
    """DuckDB's Arrow type for `kind`; None for a type not mapped here."""
    params = kind.expressions
    if kind.this in _ARROW and not params:
        return _ARROW[kind.this]
    if kind.this is _T.DECIMAL and len(params) == 2:
        precision, scale = (int(p.name) for p in params)
        return pa.decimal128(precision, scale)
    if kind.this is _T.STRUCT and params:
        fields = [(d.name, _arrow_type(d.args["kind"])) for d in params]
        if any(t is None for _, t in fields):
            return None
        return pa.struct([pa.field(name, t) for name, t in fields])
    if kind.this in (_T.ARRAY, _T.LIST) and len(params) == 1 and not kind.args.get("values"):
        inner = _arrow_type(params[0])
        return None if inner is None else pa.list_(pa.field("l", inner))
    return None


SHOWN = 80  # characters of a value a cast failure's reason quotes


def _column_reasons(
    col: Column, raw: str, value: str, whole: exp.Expr | None = None
) -> list[exp.Expr]:
    """Why a column's value breaks the contract; `whole` says whether the record carries the
    whole row (a change log's delete carries the key, a truncate nothing: no value of theirs
    is required)."""
    out = []
    if not col.nullable:
        missing: exp.Expr = exp.column(raw).is_(exp.null())
        if whole is not None:
            missing = exp.and_(missing, whole.copy())
        out.append(_when(missing, f"{col.name}: required value is missing"))
    bad_cast = exp.and_(exp.column(raw).is_(exp.null()).not_(), exp.column(value).is_(exp.null()))
    # the value as the record had it, cut to SHOWN characters: a reason is read by a person
    # (and groups the quarantine's counts), the record itself keeps the whole value
    text = exp.cast(exp.column(raw), "varchar")
    shown: exp.Expr = (
        exp.Case()
        .when(
            exp.func("length", text.copy()) > exp.Literal.number(SHOWN),
            exp.DPipe(
                this=exp.func("left", text.copy(), exp.Literal.number(SHOWN)),
                expression=exp.Literal.string("…"),
            ),
        )
        .else_(text)
    )
    if col.pii:  # a PII value is not quoted: reasons are shown in run summaries
        shown = exp.Literal.string(HIDDEN)
    message = exp.DPipe(
        this=exp.DPipe(this=exp.Literal.string(f"{col.name}: cannot cast '"), expression=shown),
        expression=exp.Literal.string(f"' to {col.type}"),
    )
    out.append(exp.Case().when(bad_cast, message))
    return out


def metadata_columns(
    contract: Contract, *, per_row_origin: bool, unit: str = "record"
) -> list[exp.Expr]:
    """The raw zone's metadata columns over conformed values `_v<i>` and positions `_hw_position`
    (parameters: batch_id, now, cutoff, and source unless `per_row_origin`)."""
    late: exp.Expr = exp.false()
    if contract.watermark:
        column, _ = parse_watermark(contract.watermark)
        names = [c.name for c in contract.columns]
        if column in names:
            value = exp.column(f"_v{names.index(column)}")
            late = exp.func(
                "coalesce",
                exp.LT(
                    this=value, expression=exp.cast(exp.Placeholder(this="cutoff"), "timestamptz")
                ),
                exp.false(),
            )
    origin = exp.column(ORIGIN) if per_row_origin else exp.Placeholder(this="source")
    source = exp.DPipe(
        this=exp.cast(origin, "varchar"),
        expression=exp.DPipe(
            this=exp.Literal.string(f" {unit} "), expression=exp.cast(exp.column(RECORD), "varchar")
        ),
    )
    return [
        exp.cast(exp.Placeholder(this="batch_id"), "varchar").as_("_hw_batch_id"),
        exp.cast(exp.Placeholder(this="now"), "timestamptz").as_("_hw_ingested_at"),
        source.as_("_hw_source"),
        late.as_("_hw_late"),
    ]


def _json_value(key: str, *, nested: bool) -> exp.Expr:
    fn = "json_extract" if nested else "json_extract_string"
    return exp.func(fn, exp.column(_JSON), exp.Literal.string(_key_path(key)))


def _key_path(key: str) -> str:
    return "$." + '"' + key.replace('"', '\\"') + '"'


def _nested_reason(col: Column, value: str, arrived: exp.Expr) -> exp.Expr:
    """Why a nested value does not land whole: the first value under it that does not cast.

    `json_transform` and `TRY_CAST` NULL such a value silently, so a typed value holding a
    NULL is walked against the JSON of what `arrived`: a value that is there but NULL once
    typed did not cast. Only such rows parse the JSON again.
    """
    typed = exp.column(value)
    text = exp.cast(exp.func("to_json", typed.copy()), "varchar")
    may_fail = exp.and_(
        typed.copy().is_(exp.null()).not_(),  # a NULL column is the column's own reason
        exp.func("contains", text, exp.Literal.string("null")),
    )
    raw = exp.to_identifier("_hw_r")
    walk = _first_failure(
        exp.column(raw), typed.copy(), sql_type(col.type), exp.Literal.string(col.name), 0
    )
    return exp.Case().when(may_fail, _let(raw, arrived, walk))


def _let(name: exp.Identifier, value: exp.Expr, body: exp.Expr) -> exp.Expr:
    """`body` with `name` bound to `value`, computed once (a one-element list_transform)."""
    bound = exp.func(
        "list_transform",
        exp.Array(expressions=[value]),
        exp.Lambda(this=body, expressions=[name]),
    )
    return exp.func("list_extract", bound, exp.Literal.number(1))


def _first_failure(
    raw: exp.Expr, typed: exp.Expr, kind: exp.DataType, path: exp.Expr, depth: int
) -> exp.Expr:
    """`<path>: cannot cast <json> to <type>` for the first value under `raw` (JSON) that is
    NULL in `typed`, or NULL. Lists are walked element by element (paths count from 0)."""
    absent = exp.or_(
        raw.copy().is_(exp.null()), exp.EQ(this=raw.copy(), expression=exp.Literal.string("null"))
    )
    shown = exp.func("left", exp.cast(raw.copy(), "varchar"), exp.Literal.number(100))
    if kind.this is exp.DataType.Type.STRUCT:
        fields = [(d.this.name, d.args["kind"]) for d in kind.expressions]
        values = exp.to_identifier(f"_hw_s{depth}")
        each = [
            _first_failure(
                exp.func("list_extract", exp.column(values), exp.Literal.number(k + 1)),
                exp.Dot(this=typed.copy(), expression=exp.to_identifier(name, quoted=True)),
                field_kind,
                exp.DPipe(this=path.copy(), expression=exp.Literal.string(f".{name}")),
                depth + 1,
            )
            for k, (name, field_kind) in enumerate(fields)
        ]
        paths = exp.Array(expressions=[exp.Literal.string(_key_path(n)) for n, _ in fields])
        # one parse of this object for all its fields
        first = _let(
            values, exp.func("json_extract", raw.copy(), paths), exp.func("coalesce", *each)
        )
        expected, json_kind = "an object", "OBJECT"
    elif kind.this in (exp.DataType.Type.ARRAY, exp.DataType.Type.LIST):
        pair, index = exp.to_identifier(f"_hw_z{depth}"), exp.to_identifier(f"_hw_i{depth}")
        element = exp.DPipe(
            this=path.copy(),
            expression=exp.DPipe(
                this=exp.Literal.string("["),
                expression=exp.DPipe(
                    this=exp.cast(
                        exp.Sub(this=exp.column(index), expression=exp.Literal.number(1)), "varchar"
                    ),
                    expression=exp.Literal.string("]"),
                ),
            ),
        )
        each_element = _first_failure(
            exp.Anonymous(
                this="struct_extract", expressions=[exp.column(pair), exp.Literal.number(1)]
            ),
            exp.Anonymous(
                this="struct_extract", expressions=[exp.column(pair), exp.Literal.number(2)]
            ),
            kind.expressions[0],
            element,
            depth + 1,
        )
        elements = exp.func("json_extract", raw.copy(), exp.Literal.string("$[*]"))
        found = exp.func(
            "list_transform",
            exp.func("list_zip", elements, typed.copy()),
            exp.Lambda(this=each_element, expressions=[pair, index]),
        )
        message = exp.to_identifier(f"_hw_m{depth}")
        first = exp.func(
            "list_extract",
            exp.func(
                "list_filter",
                found,
                exp.Lambda(this=exp.column(message).is_(exp.null()).not_(), expressions=[message]),
            ),
            exp.Literal.number(1),
        )
        expected, json_kind = "a list", "ARRAY"
    else:  # a scalar (a MAP is checked as a whole)
        failed = exp.and_(typed.copy().is_(exp.null()), exp.not_(absent))
        return exp.Case().when(
            failed, _message(path, "cannot cast ", shown, f" to {authored.shown(kind)}")
        )
    return (
        exp.Case()
        .when(absent, exp.null())
        .when(
            # json_transform makes a struct of NULLs of a JSON value that is not an object
            exp.NEQ(
                this=exp.func("json_type", raw.copy()), expression=exp.Literal.string(json_kind)
            ),
            _message(path, f"expected {expected}, found ", shown, ""),
        )
        .else_(first)
    )


def _message(path: exp.Expr, before: str, value: exp.Expr, after: str) -> exp.Expr:
    parts: list[exp.Expr] = [
        path.copy(),
        exp.Literal.string(": " + before),
        value,
        exp.Literal.string(after),
    ]
    out = parts[0]
    for part in parts[1:]:
        out = exp.DPipe(this=out, expression=part)
    return out


def _input_with_json(columns: list[Column] | None = None) -> exp.Subquery:
    """The input with `_hw_json` (the line if it is a valid JSON object, else NULL) and, for
    declared `columns`, `_hw_fields`: each column typed from ONE parse of the line (NULL where
    a value does not cast)."""
    # json functions raise on malformed text, so only valid objects reach them
    line = exp.column(LINE)
    opens = exp.func(
        "starts_with", exp.func("ltrim", line, exp.Literal.string(" \t\r")), exp.Literal.string("{")
    )
    checked = exp.Case().when(exp.and_(exp.func("json_valid", line), opens), line)
    # the keys of each object, once: for unknown, duplicate and reserved keys
    keys = exp.func("json_keys", checked.copy())
    query = exp.select(exp.Star(), checked.as_(_JSON), keys.as_(_KEYS)).from_(INPUT)
    if columns:
        shape = {c.name: c.type for c in columns}
        fields = exp.func("json_transform", checked.copy(), exp.Literal.string(json.dumps(shape)))
        query = query.select(fields.as_(_FIELDS))
    return query.subquery("_j")


def _unknown_json_keys(declared: list[str]) -> exp.Expr:
    known = exp.Array(expressions=[exp.Literal.string(n) for n in declared])
    keep = exp.Lambda(
        this=exp.Not(this=exp.func("list_contains", known, exp.column("k"))),
        expressions=[exp.to_identifier("k")],
    )
    return exp.func("list_filter", exp.column(_KEYS), keep)


def _unknown_keys_reason(policy: Evolution) -> exp.Expr:
    unknown = exp.column("_unknown")
    message = exp.DPipe(
        this=exp.DPipe(
            this=exp.Literal.string("unknown field(s) "),
            expression=exp.func("array_to_string", unknown, exp.Literal.string(", ")),
        ),
        expression=exp.Literal.string(f" (evolution: {policy.value})"),
    )
    return exp.Case().when(
        exp.GT(this=exp.func("len", unknown), expression=exp.Literal.number(0)), message
    )


def _key_reasons(keys: exp.Column) -> list[exp.Expr]:
    """A record may not hold a key twice (which value is meant?) nor a key named like the
    raw zone's metadata columns (`_hw_…`)."""
    distinct = exp.func("list_distinct", keys.copy())
    twice = exp.NEQ(this=exp.func("len", keys.copy()), expression=exp.func("len", distinct))
    reserved = exp.func(
        "list_filter",
        keys.copy(),
        exp.Lambda(
            this=exp.func("starts_with", exp.column("k"), exp.Literal.string(RESERVED)),
            expressions=[exp.to_identifier("k")],
        ),
    )
    named = exp.DPipe(
        this=exp.DPipe(
            this=exp.Literal.string("key(s) "),
            expression=exp.func("array_to_string", reserved, exp.Literal.string(", ")),
        ),
        expression=exp.Literal.string(
            f" use a name headwater reserves for its metadata ({RESERVED}…); rename at the source"
        ),
    )
    # the text is searched first: the keys are filtered only in a record that may hold one
    may_hold = exp.func("contains", exp.column(_JSON), exp.Literal.string(f'"{RESERVED}'))
    holds = exp.GT(this=exp.func("len", reserved.copy()), expression=exp.Literal.number(0))
    return [
        _when(twice, "duplicate key(s) in the record; keep one of each"),
        exp.Case().when(exp.and_(may_hold, holds), named),
    ]


def _when(condition: exp.Expr, message: str) -> exp.Expr:
    return exp.Case().when(condition, exp.Literal.string(message))


def _is_nested(col: Column) -> bool:
    return sql_type(col.type).this in _NESTED


def _pii(contract: Contract, rule: Rule) -> bool:
    """Whether a rule's column is PII-tagged on the contract."""
    tagged = {c.name for c in contract.columns if c.pii}
    return bool(rule.columns) and rule.columns[0] in tagged
