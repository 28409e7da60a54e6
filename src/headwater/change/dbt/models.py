"""dbt models → headwater models: the rendered SQL under a `/* headwater */` header, the kind
from `materialized`, and the model's docs and tests as its sidecar.

dbt's `materialized: incremental` becomes `incremental_by_key` when the pattern is one headwater
guarantees equal to a full rebuild (a `unique_key`, an `is_incremental()` filter on a column
newer than `max(col) from this`, reading only raw and seed tables); any other incremental model
becomes a `table` (always correct, as a full rebuild is what every incremental run must equal)
and is flagged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlglot
import yaml
from sqlglot import exp

import headwater.engine.dialect as authored
from headwater.change.dbt.jinja import THIS_MARKER, Rendered
from headwater.change.dbt.layout import YamlFile
from headwater.change.dbt.report import Report
from headwater.contracts.load import Loc

ROOT_ZONE = "marts"  # the zone of models at the root of a model path
_RESERVED_ZONES = {"raw", "seed"}
_MATERIALIZED = {"view": "view", "table": "table", "ephemeral": "ephemeral"}
_MATERIALIZED |= {"materialized_view": "materialized_view"}
_UNCONVERTED_CONFIGS = {
    "pre_hook": "a hook runs SQL around the build; headwater runs none: do it in a model",
    "post_hook": "a hook runs SQL around the build; headwater runs none: do it in a model",
    "alias": "headwater names a model by its file: rename the file to change the table's name",
}
_READS_DATA = ("raw", "seed")


@dataclass
class DbtModel:
    """One dbt model file, where it goes, and what the properties files say about it."""

    name: str
    path: Path
    shown: str  # relative to the dbt project
    zone: str
    config: dict[str, Any]
    entry: dict[str, Any] = field(default_factory=dict)
    file: YamlFile | None = None
    loc: Loc = ()

    @property
    def table(self) -> str:
        return f"{self.zone}.{self.name}"

    @property
    def out_path(self) -> str:
        return f"models/{self.zone}/{self.name}.sql"


def zone_of(relative: Path) -> str:
    """The headwater zone of a model at `relative` under its model path: its first folder
    (made an identifier, not raw or seed), or `marts` at the root."""
    if len(relative.parts) == 1:
        return ROOT_ZONE
    zone = re.sub(r"\W+", "_", relative.parts[0]).strip("_") or ROOT_ZONE
    zone = zone if not zone[0].isdigit() else f"z_{zone}"
    return f"{zone}_models" if zone in _RESERVED_ZONES else zone


def header(
    model: DbtModel, full: Rendered, step: Rendered | None, report: Report
) -> dict[str, Any]:
    """The model's header (kind and its settings), flagging what does not carry over."""
    given = {**model.config, **full.config}
    config = {str(k).replace("-", "_"): v for k, v in given.items()}
    for key, why in _UNCONVERTED_CONFIGS.items():
        if config.get(key):
            report.flag(model.shown, None, f"`{key.replace('_', '-')}` config", why)
    materialized = str(config.get("materialized", "view")).lower()
    out: dict[str, Any] = {}
    if materialized == "incremental":
        out.update(_incremental(model, config, full, step, report))
    elif materialized in _MATERIALIZED:
        out["kind"] = _MATERIALIZED[materialized]
    else:
        out["kind"] = "table"
        report.flag(
            model.shown,
            None,
            f"`materialized: {materialized}`",
            "a custom materialization; built as kind table",
        )
    tags = config.get("tags")
    if tags:
        out["tags"] = sorted({str(t) for t in (tags if isinstance(tags, list) else [tags])})
    return out


def _incremental(
    model: DbtModel, config: dict[str, Any], full: Rendered, step: Rendered | None, report: Report
) -> dict[str, Any]:
    key = config.get("unique_key")
    keys = [str(k) for k in (key if isinstance(key, list) else [key] if key else [])]
    newer = _newer_than_this(step.sql) if step is not None else None
    reads = tables(full.sql)
    if keys and newer and reads and all(t.split(".")[0] in _READS_DATA for t in reads):
        return {"kind": "incremental_by_key", "unique_key": keys, "updated_column": newer}
    if step is None:
        why = "it has no is_incremental() filter"
    elif newer is None:
        why = "its is_incremental() filter is not `col > (select max(col) from {{ this }})`"
    elif not keys:
        why = "it has no unique_key"
    else:
        why = "it reads models, and incremental_by_key reads raw and seed tables only"
    report.flag(
        model.shown,
        None,
        "`materialized: incremental`",
        f"built as kind table, which always equals a full rebuild ({why}); for incremental "
        "runs write an incremental_by_time or incremental_by_key header by hand",
    )
    return {"kind": "table"}


def _newer_than_this(sql: str) -> str | None:
    """The column `c` of a filter `c > (select max(c) from __hw_this__.<model>)`, if any."""
    try:
        tree = authored.parse_one(sql)
    except sqlglot.errors.SqlglotError:
        return None
    for compare in tree.find_all(exp.GT, exp.GTE):
        column, sub = compare.this, compare.expression
        if not isinstance(column, exp.Column) or not isinstance(sub, exp.Subquery):
            continue
        inner = sub.this
        source = inner.args.get("from_") if isinstance(inner, exp.Select) else None
        table = source.this if source is not None else None
        selects = inner.selects if isinstance(inner, exp.Select) else []
        if (
            isinstance(table, exp.Table)
            and table.db == THIS_MARKER
            and len(selects) == 1
            and isinstance(selects[0].unalias(), exp.Max)
            and isinstance(selects[0].unalias().this, exp.Column)
            and selects[0].unalias().this.name == column.name
        ):
            return column.name
    return None


def tables(sql: str) -> list[str]:
    """The zone tables a rendered query reads (empty when it does not parse)."""
    try:
        tree = authored.parse_one(sql)
    except sqlglot.errors.SqlglotError:
        return []
    return [f"{t.db}.{t.name}" for t in tree.find_all(exp.Table) if t.db and t.name]


def check_sql(model: DbtModel, sql: str, report: Report) -> None:
    """Flag rendered SQL headwater will refuse: a syntax error, a table without a zone."""
    try:
        statements = authored.parse(sql)
    except sqlglot.errors.SqlglotError as err:
        first = err.errors[0] if isinstance(err, sqlglot.errors.ParseError) and err.errors else {}
        report.flag(
            model.shown,
            None,
            "SQL that does not parse once rendered",
            f"{first.get('description', str(err))}; fix it in {model.out_path}",
        )
        return
    ctes = {c.alias_or_name for s in statements for c in s.find_all(exp.CTE)}
    for statement in statements:
        for table in statement.find_all(exp.Table):
            if isinstance(table.this, exp.Identifier) and not table.db and table.name not in ctes:
                report.flag(
                    model.shown,
                    None,
                    f"table `{table.name}`",
                    "read without ref() or source(); name it as <zone>.<table> "
                    f"in {model.out_path}",
                )


def model_file(head: dict[str, Any], sql: str) -> str:
    """The headwater model file: header comment, then the SQL as rendered (tidied)."""
    lines = [line.rstrip() for line in sql.strip().rstrip(";").strip().splitlines()]
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    text = "".join(_header_line(key, value) for key, value in head.items())
    return f"/* headwater\n{text}*/\n{body}\n"


def _header_line(key: str, value: Any) -> str:
    """`kind: table`, `unique_key: [event_id]`: one line per setting, lists in flow style."""
    flow = None if isinstance(value, list) else False  # None: flow style for leaf lists only
    return yaml.safe_dump({key: value}, default_flow_style=flow, allow_unicode=True)


def sidecar(
    model: DbtModel, description: str | None, rules: list[dict[str, Any]]
) -> dict[str, Any]:
    """The sidecar's fields as written in YAML: description, owner, column docs, rules."""
    out: dict[str, Any] = {}
    if description:
        out["description"] = description
    meta = {**(model.config.get("meta") or {}), **(model.entry.get("meta") or {})}
    if meta.get("owner"):
        out["owner"] = str(meta["owner"])
    columns = {}
    for column in model.entry.get("columns") or []:
        if isinstance(column, dict) and column.get("name") and column.get("description"):
            columns[str(column["name"])] = str(column["description"]).strip()
    if columns:
        out["columns"] = columns
    if rules:
        out["rules"] = rules
    return out
