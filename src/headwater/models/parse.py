"""Read a model file: its YAML header block, its one SELECT, and the tables it reads.

A model is a plain SQL file; `models/marts/events_daily.sql` is model `marts.events_daily`.
Dependencies come from the SQL itself (sqlglot), with the line of every reference kept for
error messages. A `create table … as select` (the seed's own example) is accepted as its select.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

import headwater.engine.dialect as authored
from headwater.contracts import ModelConfig, ModelKind, ModelSidecar, OnFail, Rule
from headwater.contracts.load import load_spec, locate, parse_spec
from headwater.errors import Location, ModelError
from headwater.models.renderer import Compiled, compile_query

_HEADER = re.compile(r"\A\s*/\*\s*headwater\b[^\n]*\n(?P<yaml>.*?)\*/", re.DOTALL)


@dataclass(frozen=True)
class Ref:
    """A table a model reads, and where in the file it says so."""

    name: str
    line: int | None


class _Query:
    """The `query` field: an AST, or a function returning it, called on first read.

    The model cache (models/cache.py) passes a function, so a run that builds nothing never
    unpacks an AST. Reading the field from the class raises, so the field has no default.
    """

    def __get__(self, model: object | None, owner: type | None = None) -> exp.Query:
        if model is None:
            raise AttributeError("query")
        value = model.__dict__["query"]
        if not isinstance(value, exp.Query):
            value = model.__dict__["query"] = value()
        return value  # type: ignore[no-any-return]

    def __set__(self, model: object, value: exp.Query | Callable[[], exp.Query]) -> None:
        model.__dict__["query"] = value


@dataclass(frozen=True)
class Model:
    """One parsed model: identity, configuration, its query AST and what it reads."""

    name: str
    path: str
    config: ModelConfig
    refs: tuple[Ref, ...]
    query: _Query = _Query()  # required: see _Query
    sidecar: ModelSidecar = field(default_factory=ModelSidecar)
    sidecar_path: str | None = None
    compiled: Compiled | None = None  # the query rendered once, split at its references
    function: Callable[..., Any] | None = None  # a Python model's `model` function
    source_hash: str | None = None  # a Python model's file hash (its "normalized SQL")
    # the output columns as far as the SQL says, "*" standing for every column of `star_from`
    # (its one source table); None when an output has no name the SQL gives (`b + 1`)
    outputs: tuple[str, ...] | None = None
    star_from: str | None = None
    # tables the model's rules read besides the model (`to:` of referential integrity, the
    # tables of custom SQL): its audit waits for them, though its data does not
    audit_refs: tuple[str, ...] = ()

    @property
    def zone(self) -> str:
        return self.name.split(".")[0]

    @property
    def short(self) -> str:
        return self.name.split(".")[1]

    @property
    def depends_on(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(ref.name for ref in self.refs))

    @property
    def rules(self) -> list[Rule]:
        return list(self.sidecar.rules)

    @property
    def tags(self) -> list[str]:
        return sorted({*self.config.tags, *self.sidecar.tags})

    @functools.cached_property
    def sql_hash(self) -> str:
        """Hash of the normalized query: formatting and comments do not change it."""
        if self.source_hash is not None:
            return self.source_hash
        return hashlib.sha256(self.normalized_sql.encode()).hexdigest()

    @functools.cached_property
    def normalized_sql(self) -> str:
        """The query without formatting or comments, in the authored dialect (what a version
        records, so a later plan can say what changed); "" for a Python model."""
        if self.source_hash is not None:
            return ""
        return authored.shown(self.query, comments=False, normalize=True)

    @functools.cached_property
    def meta_key(self) -> str:
        """Hash of what documents the model but never shapes its data: descriptions, owners,
        tags, column docs (a change to them rebuilds nothing)."""
        payload = {
            "header": [self.config.description, self.config.owner, sorted(self.config.tags)],
            "sidecar": self.sidecar.model_dump(mode="json", exclude={"rules"}),
        }
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_model(path: Path, *, root: Path) -> Model:
    """Parse `root/models/<zone>/<name>.sql` (and its optional `.yml` sidecar)."""
    shown = str(path.relative_to(root))
    name = model_name(path, root)
    text = read_text(path, shown)
    config = _header(text, shown)
    query = _query(text, shown)
    refs = _refs(query, shown)
    _check_parameters(config, query, shown)
    _check_append(config, refs, shown)
    sidecar_file = path.with_suffix(".yml")
    sidecar = ModelSidecar()
    if sidecar_file.exists():
        sidecar = load_spec(ModelSidecar, sidecar_file, root=root)
    _check_quarantine(config, sidecar, sidecar_file, root=root)
    outputs, star_from = _outputs(query)
    return Model(
        name=name,
        path=shown,
        config=config,
        query=query,
        refs=refs,
        compiled=compile_query(query),
        sidecar=sidecar,
        sidecar_path=str(sidecar_file.relative_to(root)) if sidecar_file.exists() else None,
        outputs=outputs,
        star_from=star_from,
        audit_refs=audit_refs(sidecar, name),
    )


def _outputs(query: exp.Query) -> tuple[tuple[str, ...] | None, str | None]:
    """The query's output column names, "*" for a star over its one source table (named
    second); (None, None) when the SQL does not say them all."""
    names = []
    for select in query.selects:
        star = select.this if isinstance(select, exp.Column) else select
        if isinstance(star, exp.Star):
            if star.args.get("rename"):
                return None, None  # renamed columns: known only once built
            names.append("*")
        elif isinstance(select, (exp.Alias, exp.Column)) and select.alias_or_name:
            names.append(select.alias_or_name)
        else:
            return None, None  # `count(*)`, `b + 1`: the engine names them
    if "*" not in names:
        return tuple(names), None
    source = query.args.get("from_") if isinstance(query, exp.Select) else None
    table = source.this if source is not None else None
    if query.args.get("joins") or not isinstance(table, exp.Table) or not table.db:
        return None, None
    return tuple(names), f"{table.db}.{table.name}"


def audit_refs(sidecar: ModelSidecar, name: str) -> tuple[str, ...]:
    """The tables the rules of model `name` read besides the model itself."""
    out: dict[str, None] = {}
    for rule in sidecar.rules:
        if rule.to and rule.to.count(".") == 2:
            out[rule.to.rsplit(".", 1)[0]] = None
        if rule.sql:
            out.update(dict.fromkeys(custom_sql_tables(rule.sql)))
    out.pop(name, None)
    return tuple(out)


def custom_sql_tables(sql: str) -> list[str]:
    """The zone tables a custom SQL rule reads (`this` is the table under test)."""
    try:
        query = authored.parse_one(sql)
    except sqlglot.errors.ParseError:
        return []  # the rule reports its own syntax error where it runs
    return [f"{t.db}.{t.name}" for t in query.find_all(exp.Table) if t.db and t.name]


def model_name(path: Path, root: Path) -> str:
    """`models/marts/events_daily.sql` → `marts.events_daily`. The first folder under
    `models/` is the zone; deeper folders only organize files (the name is the file stem)."""
    return f"{path.relative_to(root / 'models').parts[0]}.{path.stem}"


def read_text(path: Path, shown: str) -> str:
    """A model file's text; one that is not UTF-8 is an error naming the line of the byte."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ModelError(
            f"the file is not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})",
            where=Location(shown, line),
            hint="save it as UTF-8",
        ) from None


_JINJA = re.compile(r"\{\{-?\s*(?P<expr>.*?)\s*-?\}\}|\{%-?\s*(?P<block>\w*)", re.DOTALL)
_CALL = re.compile(r"(?P<fn>ref|source|config)\s*\((?P<args>[^)]*)\)")


def _refuse_jinja(text: str, shown: str) -> None:
    """A dbt model (Jinja) is refused with what to write instead, not a SQL parser's tokens.
    Called when the SQL does not parse: `'{{ x }}'` in a string literal is the user's data."""
    match = _JINJA.search(text)
    if match is None:
        return
    line = text[: match.start()].count("\n") + 1
    hint = "write out the SQL the template would make"
    call = _CALL.match(match["expr"] or "")
    args = re.findall(r"['\"]([^'\"]+)['\"]", call["args"]) if call else []
    if call and call["fn"] == "ref" and args:
        hint = f"write the table's name, e.g. clean.{args[-1]}, instead of {match[0]}"
    elif call and call["fn"] == "source" and args:
        hint = f"a source is a contract: write raw.{args[-1]} instead of {match[0]}"
    elif call and call["fn"] == "config":
        hint = "configuration goes in a `/* headwater ... */` comment at the top (kind: table)"
    elif match["block"] is not None:
        hint = f"{{% {match['block']} %}} blocks are not run: write out the SQL they would make"
    raise ModelError(
        "headwater models are plain SQL, not Jinja templates",
        where=Location(shown, line),
        hint=hint,
    )


def _braces_outside_strings(text: str) -> bool:
    """Whether `{{` opens outside a string literal or comment (no DuckDB struct starts so)."""
    try:
        tokens = authored.tokenize(text)
    except sqlglot.errors.TokenError:
        return False  # the parser reports it
    brace = sqlglot.TokenType.L_BRACE
    return any(
        a.token_type is brace and b.token_type is brace and b.start == a.end + 1
        for a, b in itertools.pairwise(tokens)
    )


def _header(text: str, shown: str) -> ModelConfig:
    match = _HEADER.match(text)
    if not match:
        return ModelConfig()
    offset = text[: match.start("yaml")].count("\n")
    return parse_spec(ModelConfig, match.group("yaml"), file=shown, line_offset=offset)


def _query(text: str, shown: str) -> exp.Query:
    if "{{" in text and _braces_outside_strings(text):
        _refuse_jinja(text, shown)  # `{{ x }}` parses as DuckDB struct literals: refuse it first
    try:
        statements = authored.parse(text)
    except sqlglot.errors.TokenError as err:  # an unterminated string or comment
        _refuse_jinja(text, shown)
        raise ModelError(f"SQL syntax error: {err}", where=Location(shown)) from None
    except sqlglot.errors.ParseError as err:
        _refuse_jinja(text, shown)
        first = err.errors[0]
        raise ModelError(
            f"SQL syntax error: {first['description']}",
            where=Location(shown, first.get("line")),
            hint=f"near {first.get('highlight')!r}",
        ) from None
    if len(statements) != 1:
        raise ModelError(
            f"a model is one SELECT statement, found {len(statements)}", where=Location(shown)
        )
    statement = statements[0]
    if isinstance(statement, exp.Create) and isinstance(statement.expression, exp.Query):
        statement = statement.expression
    if not isinstance(statement, exp.Query):
        raise ModelError(
            f"a model is a SELECT statement, found {statement.key.upper()}",
            where=Location(shown),
            hint="write the query; headwater materializes it",
        )
    return statement


def _check_parameters(config: ModelConfig, query: exp.Query, shown: str) -> None:
    """Interval bounds are the only parameters, and an incremental model must use both."""
    used = {p.name for p in query.find_all(exp.Placeholder)}
    incremental = config.kind is ModelKind.INCREMENTAL_BY_TIME
    if incremental and not {"start", "end"} <= used:
        raise ModelError(
            "an incremental_by_time model reads one interval at a time",
            where=Location(shown),
            hint="filter its input by the bound interval, e.g. "
            "`where occurred_at >= :start and occurred_at < :end`",
        )
    unknown = used - {"start", "end"} if incremental else used
    if unknown:
        name = sorted(unknown)[0]
        raise ModelError(
            f"unknown parameter :{name}",
            where=Location(shown),
            hint="only :start and :end exist, bound for kind incremental_by_time",
        )
    names = query.named_selects
    if incremental and "*" not in names and config.time_column not in names:
        raise ModelError(
            f"time_column {config.time_column!r} is not a column of the query",
            where=Location(shown),
            hint=f"the query returns: {', '.join(names)}",
        )


def _check_quarantine(
    config: ModelConfig, sidecar: ModelSidecar, file: Path, *, root: Path
) -> None:
    """`on_fail: quarantine` moves rows out of a version it writes whole or by interval."""
    routable = (ModelKind.TABLE, ModelKind.INCREMENTAL_BY_TIME)
    for index, rule in enumerate(sidecar.rules):
        if rule.action is OnFail.QUARANTINE and config.kind not in routable:
            raise ModelError(
                f"rule {rule.name!r}: on_fail: quarantine applies to models of kind table or "
                f"incremental_by_time, not {config.kind.value}",
                where=Location(
                    str(file.relative_to(root)),
                    locate(file, ("rules", index, "on_fail")),
                    f"rules[{index}].on_fail",
                ),
                hint="use on_fail: block or warn here, or quarantine in the upstream contract",
            )


def _check_append(config: ModelConfig, refs: tuple[Ref, ...], shown: str) -> None:
    """An append model sees only new raw batches, so it may read only raw tables."""
    if config.kind not in (ModelKind.APPEND, ModelKind.INCREMENTAL_BY_KEY, ModelKind.SCD2):
        return
    for ref in refs:
        if not ref.name.startswith(("raw.", "seed.")):
            raise ModelError(
                f"an {config.kind.value} model reads raw tables (and seeds) only, not {ref.name}",
                where=Location(shown, ref.line),
                hint="each run appends what the query makes of the new raw batches; "
                "use kind: table or incremental_by_time to read models",
            )


def _refs(query: exp.Query, shown: str) -> tuple[Ref, ...]:
    ctes = {cte.alias_or_name for cte in query.find_all(exp.CTE)}
    refs = []
    for table in query.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue  # table functions such as range(...)
        line = table.this.meta.get("line")
        if not table.db:
            if table.name in ctes:
                continue
            raise ModelError(
                f"table {table.name!r} has no zone",
                where=Location(shown, line),
                hint=f"write it as <zone>.{table.name}, e.g. raw.{table.name} or "
                f"clean.{table.name}",
            )
        refs.append(Ref(f"{table.db}.{table.name}", line))
    return tuple(refs)
