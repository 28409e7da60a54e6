"""The few dbt and dbt_utils macros common enough to expand at import, as DuckDB SQL text.

Each returns exactly what dbt-duckdb's macro renders, so a converted model computes the same
values (`generate_surrogate_key` hashes to the same md5). Anything else from a package is
flagged by the renderer, not guessed at here.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable
from typing import Any

import headwater.engine.dialect as authored

# dbt_utils' stand-in for NULL inside a surrogate key
_NULL_IN_KEY = "_dbt_utils_surrogate_key_null_"


class CompilerError(Exception):
    """`exceptions.raise_compiler_error(...)` in a template: rendering stops there."""


def functions() -> dict[str, Callable[..., Any]]:
    """dbt's cross-database macros, callable as `dbt.x(...)` and, in older projects, `x(...)`."""
    return {
        "type_string": lambda: "varchar",
        "type_int": lambda: "integer",
        "type_bigint": lambda: "bigint",
        "type_float": lambda: "double",
        "type_numeric": lambda: "numeric(28,6)",
        "type_boolean": lambda: "boolean",
        "type_timestamp": lambda: "timestamp",
        "current_timestamp": lambda: "now()",
        "hash": lambda field: f"md5(cast({field} as varchar))",
        "concat": lambda fields: " || ".join(fields),
        "safe_cast": lambda field, type: f"try_cast({field} as {type})",
        "date_trunc": lambda datepart, date: f"date_trunc('{datepart}', {date})",
        "dateadd": _dateadd,
        "datediff": _datediff,
        "string_literal": lambda value: "'" + str(value).replace("'", "''") + "'",
    }


def dbt_utils() -> dict[str, Callable[..., Any]]:
    """The dbt_utils macros expanded at import (its tests are mapped to rules elsewhere)."""
    return {"generate_surrogate_key": generate_surrogate_key, "surrogate_key": _old_surrogate_key}


def generate_surrogate_key(field_list: list[str]) -> str:
    """dbt_utils.generate_surrogate_key: md5 of the fields cast to text, NULL as a marker,
    joined by '-'.

    >>> generate_surrogate_key(["a", "b"])
    "md5(cast(coalesce(cast(a as varchar), '_dbt_utils_surrogate_key_null_') || '-' || \
coalesce(cast(b as varchar), '_dbt_utils_surrogate_key_null_') as varchar))"
    """
    fields = [f"coalesce(cast({field} as varchar), '{_NULL_IN_KEY}')" for field in field_list]
    joined = " || '-' || ".join(fields)
    return f"md5(cast({joined} as varchar))"


def _old_surrogate_key(*fields: Any) -> str:
    listed = fields[0] if len(fields) == 1 and isinstance(fields[0], list) else list(fields)
    return generate_surrogate_key([str(f) for f in listed])


def _dateadd(datepart: str, interval: Any, from_date_or_timestamp: str) -> str:
    return f"({from_date_or_timestamp} + ({interval}) * interval 1 {datepart})"


def _datediff(first_date: str, second_date: str, datepart: str) -> str:
    return f"date_diff('{datepart}', {first_date}, {second_date})"


def target(project: str) -> dict[str, Any]:
    """`target` as a local dbt-duckdb `dev` target: a model that branches on it renders the
    dev branch (the renderer flags every use)."""
    return {
        "name": "dev",
        "type": authored.AUTHORED,
        "schema": "main",
        "database": project,
        "threads": 1,
        "profile_name": project,
    }


def modules() -> dict[str, Any]:
    return {"datetime": datetime, "re": re, "json": json}


def exceptions() -> dict[str, Callable[..., Any]]:
    def raise_compiler_error(message: str) -> None:
        raise CompilerError(message)

    return {"raise_compiler_error": raise_compiler_error, "warn": lambda *a, **k: ""}


def tojson(value: Any, *args: Any, **kwargs: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def fromjson(text: str, default: Any = None) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return default
