"""dbt's data tests → headwater rules: `unique`, `not_null`, `accepted_values`, `relationships`
and the common dbt_utils / dbt_expectations tests, with `severity` and `where`.

A test is read however dbt allows it to be written (`- unique`, `- accepted_values: {values:
[...]}`, arguments under `arguments:`, config under `config:` or beside the arguments); one
that has no headwater rule is flagged with its file and line, never dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlglot import exp

import headwater.engine.dialect as authored
from headwater.change.dbt.jinja import Renderer
from headwater.change.dbt.layout import YamlFile
from headwater.change.dbt.report import Report
from headwater.contracts import Rule
from headwater.contracts.load import Loc

# keys of a test entry that configure it rather than pass it arguments
_CONFIG_KEYS = {
    "severity",
    "where",
    "warn_if",
    "error_if",
    "limit",
    "store_failures",
    "store_failures_as",
    "enabled",
    "tags",
    "meta",
    "fail_calc",
    "alias",
    "schema",
    "database",
}
_DEFAULT_IF = "!= 0"
_PERIODS = {"minute", "hour", "day", "week"}


@dataclass(frozen=True)
class Site:
    """Where a test is declared: its file and key path, the column it is on (if any), and the
    table it tests (for rule names)."""

    file: YamlFile
    loc: Loc
    column: str | None
    table: str  # the headwater table tested: `marts.orders`, `raw.events`, `seed.countries`

    @property
    def short(self) -> str:
        return self.table.split(".")[-1]


@dataclass(frozen=True)
class Test:
    """A dbt test entry, read: its name as written, its arguments, its config."""

    name: str
    args: dict[str, Any]
    config: dict[str, Any]

    @property
    def short(self) -> str:
        """The name without its package (`dbt_utils.accepted_range` → `accepted_range`)."""
        return self.name.split(".")[-1]


class Converter:
    """Turns the tests of one project into rules, flagging what it cannot convert."""

    def __init__(
        self,
        renderer: Renderer,
        report: Report,
        defaults: dict[str, Any],
        reads: Callable[[str, str], bool] = lambda table, upstream: False,
    ) -> None:
        self.renderer = renderer
        self.report = report
        self.defaults = defaults  # the project's `data_tests:` config (e.g. +severity)
        self.reads = reads  # whether a table reads another, directly or not
        self.taken: dict[str, set[str]] = {}  # rule names per table
        # rules that belong on another table: a relationship to a model downstream of the one
        # tested is checked from the parent, as the child's audit cannot wait for its reader
        self.moved: dict[str, list[dict[str, Any]]] = {}

    def convert(self, entry: Any, site: Site) -> dict[str, Any] | None:
        """The rule (as it is written in YAML) for one test entry, or None (flagged, or moved
        to the table it refers to)."""
        taken = self.taken.setdefault(site.table, set())
        test = _read(entry)
        line = site.file.line(site.loc)
        if test is None:
            self.report.flag(site.file.path, line, f"test {entry!r}", "not a test entry dbt reads")
            return None
        if test.config.get("enabled") is False:
            return None
        mapping = _MAPPINGS.get(test.short)
        before = len(self.report.findings)
        body = mapping(test, site, self) if mapping else None
        if body is None:
            if len(self.report.findings) == before:  # not yet flagged by the mapping
                why = (
                    "its arguments have no headwater equivalent; write the rule by hand"
                    if mapping
                    else "no headwater rule type does this test; write a custom_sql rule "
                    "(a query returning the failing rows) in the sidecar"
                )
                self.report.flag(site.file.path, line, f"test `{test.name}`", why)
            return None
        owner = body.pop("_on", site.table)
        taken = self.taken.setdefault(owner, set())
        name = _name(test, site, taken, body.pop("name", None))
        scope = site.table if owner != site.table else "this"  # the rows `where` filters
        config = self._config(test, site, body, scope)
        rule = {"name": name, **body, **config}
        try:
            Rule.model_validate(rule)
        except ValidationError as err:
            problem = err.errors()[0]["msg"].removeprefix("Value error, ")
            self.report.flag(
                site.file.path, line, f"test `{test.name}`", f"not a valid rule: {problem}"
            )
            return None
        taken.add(rule["name"])
        if owner != site.table:
            self.moved.setdefault(owner, []).append(rule)
            return None
        return rule

    def _config(self, test: Test, site: Site, body: dict[str, Any], scope: str) -> dict[str, Any]:
        """Severity and `where` (into a custom_sql query's `scope` table); thresholds other
        than dbt's default are flagged."""
        config = {**self.defaults, **test.config}
        out: dict[str, Any] = {}
        if str(config.get("severity", "error")).lower() == "warn":
            out["severity"] = "warn"
        where = config.get("where")
        where = self.renderer.render_text(str(where), site.file.path) if where else None
        if where and body["type"] != "custom_sql":
            out["where"] = where
        elif where:
            body["sql"] = _scoped(body["sql"], scope, where)
        for key in ("warn_if", "error_if"):
            if str(config.get(key, _DEFAULT_IF)).replace(" ", "") != "!=0":
                self.report.flag(
                    site.file.path,
                    site.file.line(site.loc),
                    f"`{key}: {config[key]}` on test `{test.name}`",
                    "a rule fails on any bad row unless given a `threshold:` (allowed bad "
                    "rows); set one by hand",
                )
        return out

    def table(self, expression: Any, site: Site) -> str | None:
        """The table a `to: ref('x')` names, or None (flagged) when it cannot be resolved."""
        text = self.renderer.expression(str(expression), site.file.path)
        return None if "{{" in text else text


def _scoped(sql: str, table: str, where: str) -> str:
    """`sql` reading only the rows of `table` that `where` keeps (dbt's `where` config
    filters the model under test before the test's query runs).

    >>> _scoped("select * from this where not (a > 0)", "this", "b = 1")
    'SELECT * FROM (SELECT * FROM this WHERE b = 1) AS this WHERE NOT (a > 0)'
    """
    tree = authored.parse_one(sql)
    condition = authored.parse_one(where)
    for found in list(tree.find_all(exp.Table)):
        if ".".join(p for p in (found.db, found.name) if p) != table:
            continue
        alias = found.alias or found.name
        rows = exp.select("*").from_(exp.table_(found.name, found.db or None)).where(condition)
        found.replace(rows.subquery(alias))
    return authored.shown(tree)


def _read(entry: Any) -> Test | None:
    if isinstance(entry, str):
        return Test(entry, {}, {})
    if not isinstance(entry, dict) or not entry:
        return None
    if "test_name" in entry:  # `- name: my_name` / `test_name: accepted_values` / args beside
        given = {k: v for k, v in entry.items() if k not in ("test_name", "name")}
        test = _split(str(entry["test_name"]), given)
        if "name" in entry:
            test.config.setdefault("name", entry["name"])
        return test
    if len(entry) != 1:
        return None
    name, given = next(iter(entry.items()))
    return _split(str(name), given if isinstance(given, dict) else {})


def _split(name: str, given: dict[str, Any]) -> Test:
    """Separate a test's arguments from its config, however they are written."""
    config = dict(given.get("config") or {})
    args = dict(given.get("arguments") or {})
    for key, value in given.items():
        if key in ("config", "arguments"):
            continue
        if key in _CONFIG_KEYS or key == "name":
            config.setdefault(key, value)
        else:
            args.setdefault(key, value)
    return Test(name, args, config)


def _name(test: Test, site: Site, taken: set[str], chosen: str | None) -> str:
    """A rule name: the test's own `name:`, else `<column>_<test>` (or `<table>_<test>`)."""
    given = test.config.get("name") or chosen
    return unique_name(str(given) if given else f"{site.column or site.short}_{test.short}", taken)


def unique_name(text: str, taken: set[str], *, fallback: str = "rule") -> str:
    """`text` as an identifier no name in `taken` has (`_2`, `_3`, … when it is taken)."""
    base = re.sub(r"\W+", "_", text).strip("_") or fallback
    base = base if not base[0].isdigit() else f"t_{base}"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    return name


# ---- one function per dbt test: the rule body, or None (the function flagged why) ------------


def _column(site: Site, test: Test, conv: Converter) -> str | None:
    column = test.args.get("column_name") or site.column
    if column is None:
        conv.report.flag(
            site.file.path,
            site.file.line(site.loc),
            f"test `{test.name}`",
            "it tests a column: declare it under the column's `data_tests:`",
        )
    return str(column) if column is not None else None


def _unique(test: Test, site: Site, conv: Converter) -> dict[str, Any] | None:
    column = _column(site, test, conv)
    return None if column is None else {"type": "uniqueness", "target": column}


def _not_null(test: Test, site: Site, conv: Converter) -> dict[str, Any] | None:
    column = _column(site, test, conv)
    return None if column is None else {"type": "not_null", "target": column}


def _accepted_values(test: Test, site: Site, conv: Converter) -> dict[str, Any] | None:
    column = _column(site, test, conv)
    values = test.args.get("values") or test.args.get("value_set")
    if column is None or not isinstance(values, list):
        return None
    return {"type": "valid_values", "target": column, "values": values}


def _relationships(test: Test, site: Site, conv: Converter) -> dict[str, Any] | None:
    column = _column(site, test, conv)
    table = conv.table(test.args.get("to"), site)
    field = test.args.get("field")
    if column is None or table is None or not field:
        return None
    if conv.reads(table, site.table):
        # `table` is built from the tested one: check from there, with an anti-join
        child, parent = exp.column(column, "child"), exp.column(field, "this")
        matched = exp.select("1").from_("this").where(exp.EQ(this=parent, expression=child))
        orphan = exp.and_(
            exp.not_(child.copy().is_(exp.null())), exp.not_(exp.Exists(this=matched))
        )
        query = exp.select("child.*").from_(authored.table(site.table).as_("child")).where(orphan)
        sql = authored.shown(query)
        name = f"{site.short}_{column}_relationships"
        return {"_on": table, "name": name, "type": "custom_sql", "target": "*", "sql": sql}
    return {"type": "referential_integrity", "target": column, "to": f"{table}.{field}"}


def _combination(test: Test, site: Site, conv: Converter) -> dict[str, Any] | None:
    columns = test.args.get("combination_of_columns")
    if not isinstance(columns, list) or not columns:
        return None
    return {"type": "uniqueness", "target": ", ".join(map(str, columns))}


def _range(test: Test, site: Site, conv: Converter) -> dict[str, Any] | None:
    column = _column(site, test, conv)
    if column is None:
        return None
    low, high = test.args.get("min_value"), test.args.get("max_value")
    exclusive = test.args.get("inclusive") is False or test.args.get("strictly") is True
    if exclusive:
        parts = [f"{column} > {low}" if low is not None else None]
        parts.append(f"{column} < {high}" if high is not None else None)
        condition = " and ".join(p for p in parts if p)
        return {
            "type": "custom_sql",
            "target": "*",
            "sql": _failing(condition),
        }
    body: dict[str, Any] = {"type": "valid_values", "target": column}
    if low is not None:
        body["min"] = low
    if high is not None:
        body["max"] = high
    return body


def _expression(test: Test, site: Site, conv: Converter) -> dict[str, Any] | None:
    expression = test.args.get("expression")
    if not expression:
        return None
    column = test.args.get("column_name") or site.column
    condition = f"{column} {expression}" if column else str(expression)
    condition = conv.renderer.render_text(condition, site.file.path)
    return {
        "type": "custom_sql",
        "target": "*",
        "sql": _failing(condition),
    }


def _proportion(test: Test, site: Site, conv: Converter) -> dict[str, Any] | None:
    column = _column(site, test, conv)
    at_least = test.args.get("at_least")
    if column is None or at_least is None or test.args.get("at_most", 1) != 1:
        return None
    return {"type": "completeness", "target": column, "threshold": round(1 - float(at_least), 12)}


def _recency(test: Test, site: Site, conv: Converter) -> dict[str, Any] | None:
    field = test.args.get("field") or test.args.get("column_name") or site.column
    part = str(test.args.get("datepart", "")).lower()
    interval = test.args.get("interval")
    if not field or part not in _PERIODS or not isinstance(interval, int):
        return None
    return {"type": "freshness", "target": str(field), "threshold": f"{interval} {part}s"}


def _failing(condition: str) -> str:
    """`select * from this where not (<condition>)`: the rows a dbt test's condition fails."""
    wrong = exp.not_(exp.Paren(this=authored.parse_one(condition)))
    return authored.shown(exp.select(exp.Star()).from_("this").where(wrong))


def _at_least_one(test: Test, site: Site, conv: Converter) -> dict[str, Any] | None:
    column = _column(site, test, conv)
    if column is None:
        return None
    counted = exp.select(exp.Count(this=authored.parse_one(column)).as_("present")).from_("this")
    zero = exp.EQ(this=exp.column("present"), expression=exp.Literal.number(0))
    sql = authored.shown(exp.select(exp.Star()).from_(counted.subquery()).where(zero))
    return {"type": "custom_sql", "target": "*", "sql": sql}


def _regex(test: Test, site: Site, conv: Converter) -> dict[str, Any] | None:
    column = _column(site, test, conv)
    regex = test.args.get("regex")
    if column is None or not regex or test.args.get("flags"):
        return None
    # dbt_expectations searches (regexp_matches); a headwater pattern matches the whole value
    return {"type": "valid_values", "target": column, "pattern": f"(?s).*(?:{regex}).*"}


def _row_count(test: Test, site: Site, conv: Converter) -> dict[str, Any] | None:
    low, high = test.args.get("min_value"), test.args.get("max_value")
    if low is None and high is None:
        return None
    body: dict[str, Any] = {
        "type": "row_count",
        "target": "*",
        "min": low if low is not None else 0,
    }
    if high is not None:
        body["max"] = high
    return body


def _lengths(test: Test, site: Site, conv: Converter) -> dict[str, Any] | None:
    column = _column(site, test, conv)
    low, high = test.args.get("min_value"), test.args.get("max_value")
    if column is None or (low is None and high is None) or test.args.get("strictly"):
        return None
    body: dict[str, Any] = {"type": "valid_values", "target": column}
    if low is not None:
        body["min_length"] = low
    if high is not None:
        body["max_length"] = high
    return body


Mapping = Callable[[Test, Site, Converter], dict[str, Any] | None]
_MAPPINGS: dict[str, Mapping] = {
    "unique": _unique,
    "not_null": _not_null,
    "accepted_values": _accepted_values,
    "relationships": _relationships,
    # dbt_utils
    "unique_combination_of_columns": _combination,
    "accepted_range": _range,
    "expression_is_true": _expression,
    "not_null_proportion": _proportion,
    "recency": _recency,
    "at_least_one": _at_least_one,
    # dbt_expectations
    "expect_column_values_to_be_between": _range,
    "expect_column_values_to_match_regex": _regex,
    "expect_table_row_count_to_be_between": _row_count,
    "expect_column_values_to_not_be_null": _not_null,
    "expect_column_values_to_be_unique": _unique,
    "expect_column_values_to_be_in_set": _accepted_values,
    "expect_column_value_lengths_to_be_between": _lengths,
    "expect_row_values_to_have_recent_data": _recency,
}
