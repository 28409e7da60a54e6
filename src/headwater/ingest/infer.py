"""Infer a contract's columns from the first part landed, when the contract declares none.

JSON records get their structure from DuckDB's `json_group_structure` (nested objects become
STRUCTs, arrays LISTs); text fields (CSV, and JSON strings at the top level) take the
narrowest type every value casts to; typed parts (Parquet, databases) keep their own types.
The result is pinned under the contract's `schema_version` (see `land`), so later batches are
checked against it like a declared schema.
"""

from __future__ import annotations

import json
from typing import Any

from sqlglot import exp

from headwater.contracts import Column
from headwater.engine import Engine
from headwater.ingest.source import JSON, LINE, ORIGIN, RECORD, Part

INPUT = "_hw_infer"
_OBJECT = exp.Literal.string("OBJECT")
_SHAPES = {
    "bigint": exp.Literal.string(r"\s*[+-]?\d+\s*"),
    "date": exp.Literal.string(r"\d{4}-\d{2}-\d{2}"),
}
# tried in order on text values: the first type every non-null value casts to wins
_TEXT_TYPES = ("bigint", "double", "boolean", "date", "timestamp", "timestamptz")
_OFFSET = r"([+-]\d\d(:?\d\d)?|Z)$"
_JSON_TYPES = {
    "UBIGINT": "bigint",
    "BIGINT": "bigint",
    "DOUBLE": "double",
    "BOOLEAN": "boolean",
    "VARCHAR": "varchar",
    "NULL": "varchar",
    "JSON": "json",
}


def infer_columns(part: Part, engine: Engine) -> list[Column]:
    """The columns of `part`'s records, all nullable, in the order they first appear."""
    engine.register(INPUT, part.data)
    try:
        types = _json_types(engine) if part.format == JSON else _described(engine)
        if part.format in (JSON, "csv"):
            text = [n for n, t in types.items() if t == "varchar"]
            types.update(_text_types(engine, text, json_input=part.format == JSON))
    finally:
        engine.unregister(INPUT)
    return [Column(name=name, type=sql) for name, sql in types.items()]


def _json_types(engine: Engine) -> dict[str, str]:
    line = exp.column(LINE)
    valid = exp.func("json_valid", line)
    query = (
        exp.select(exp.func("json_group_structure", exp.cast(line, "json")))
        .from_(INPUT)
        .where(
            exp.and_(
                valid,
                exp.EQ(this=exp.func("json_type", line), expression=exp.Literal.string("OBJECT")),
            )
        )
    )
    found = engine.rows(query)[0][0]
    structure = json.loads(found) if found else {}
    return {name: _sql_type(value) for name, value in structure.items()}


def _sql_type(structure: Any) -> str:
    """A DuckDB type from one node of a JSON structure."""
    if isinstance(structure, dict):
        fields = ", ".join(f'"{k}" {_sql_type(v)}' for k, v in structure.items())
        return f"STRUCT({fields})" if fields else "json"
    if isinstance(structure, list):
        return f"{_sql_type(structure[0]) if structure else 'varchar'}[]"
    return _JSON_TYPES.get(str(structure), "varchar")


def _described(engine: Engine) -> dict[str, str]:
    records = exp.select(exp.Star(except_=[exp.column(RECORD)])).from_(INPUT)
    return {name: sql.lower() for name, sql in engine.columns(records).items() if name != ORIGIN}


def _text_types(engine: Engine, names: list[str], *, json_input: bool) -> dict[str, str]:
    """The narrowest type all non-null values of each text column cast to."""
    if not names:
        return {}
    checks: list[exp.Expr] = []
    for name in names:
        value = (
            exp.func("json_extract_string", exp.column(LINE), exp.Literal.string(f'$."{name}"'))
            if json_input
            else exp.column(name, quoted=True)
        )
        for sql in _TEXT_TYPES:
            fits: exp.Expr = (
                exp.TryCast(this=value.copy(), to=exp.DataType.build(sql)).is_(exp.null()).not_()
            )
            if sql in _SHAPES:  # DuckDB casts '1.5' to a bigint and '…T10:00' to a date too
                fits = exp.and_(fits, exp.func("regexp_full_match", value.copy(), _SHAPES[sql]))
            casts = exp.or_(value.copy().is_(exp.null()), fits)
            checks.append(exp.func("bool_and", casts))
        offset = exp.func("regexp_matches", value.copy(), exp.Literal.string(_OFFSET))
        checks.append(exp.func("bool_or", offset))
    source = exp.select(exp.Star()).from_(INPUT)
    if json_input:
        source = source.where(exp.func("json_valid", exp.column(LINE)))
    verdicts_of = engine.rows(exp.select(*checks).from_(source.subquery("_t")))[0]
    out: dict[str, str] = {}
    width = len(_TEXT_TYPES) + 1
    for i, name in enumerate(names):
        *verdicts, has_offset = verdicts_of[i * width : (i + 1) * width]
        passing = [sql for sql, ok in zip(_TEXT_TYPES, verdicts, strict=True) if ok]
        # a cast to timestamp drops an offset: values that carry one are timestamptz
        passing = [t for t in passing if t != ("timestamp" if has_offset else "timestamptz")]
        out[name] = passing[0] if passing else "varchar"
    return out
