"""Column-level lineage of SQL models: the upstream columns every output column derives from.

Each query is qualified by sqlglot against the columns of what it reads (raw tables from the
caller's schema, models from the lineage traced before them, in DAG order), so `select *`
expands; `sqlglot.lineage` then follows each output column through CTEs, subqueries and set
operations down to the tables the model reads. Lineage is one hop per model; a chain down to raw
columns is the hops followed one after another.

`*` (`ROWS`) stands for a table's rows, for what depends on rows rather than on a value:
- an output column that reads no column (`count(*)`, `row_number() over ()`, a literal) derives
  from the rows of the tables its select reads, e.g. `event_count` → `(clean.events, *)`; a
  `count(*)` next to columns (`count(*) + sum(x)`) adds those rows to the columns;
- every model has a `*` entry of its own: its rows derive from the rows of the tables it selects
  from and from the columns that decide which rows exist and how many (WHERE, JOIN … ON,
  GROUP BY, HAVING, QUALIFY, ORDER BY under a LIMIT, and the subqueries in those clauses; a
  subquery in the select list computes a value and counts as that column's lineage only).
So `marts.events_daily.event_count` → `clean.events.*` → `raw.events.*`, `raw.events.event_type`
(its WHERE), `raw.events.event_id` and `raw.events._hw_ingested_at` (its QUALIFY).

What a column does to an upstream value is kept too, where it takes identity away (`effects`):
a hash (`sha256(email)`) or a short prefix or suffix (`right(phone, 4)`) makes it
`pseudonymous`; a count or a sum (`count(distinct email)`) leaves none of it (`dropped`). Any
other use keeps the value's identity, so PII tags follow it (`govern/pii.py`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from sqlglot import exp
from sqlglot.lineage import Node, lineage, to_node
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, ScopeType, build_scope, find_all_in_scope
from sqlglot.schema import MappingSchema

import headwater.engine.dialect as authored
from headwater.errors import Location, ModelError
from headwater.models.dag import Dag
from headwater.models.parse import Model

ROWS = "*"
PSEUDONYMOUS = "pseudonymous"  # an effect: the value is hashed or cut down to a few characters
DROPPED = "dropped"  # an effect: the value is counted or summed, nothing of it is left
_HASHES = (exp.SHA, exp.SHA2, exp.MD5, exp.MD5Digest)
_HASH_NAMES = frozenset({"hash", "xxhash32", "xxhash64", "md5_number", "sha256", "sha1"})
_CUTS = (exp.Left, exp.Right, exp.Substring)
_CUT_MAX = 4  # characters a prefix or suffix may keep and still be pseudonymous
_COUNTS = (
    exp.Count,
    exp.CountIf,
    exp.ApproxDistinct,
    exp.Sum,
    exp.Avg,
    exp.Stddev,
    exp.StddevPop,
    exp.StddevSamp,
    exp.Variance,
    exp.VariancePop,
)
DIALECT = authored.AUTHORED
# part of every key: a change to how lineage is traced invalidates what was stored before
FORMAT = "1"
_ROW_CLAUSES = ("where", "group", "having", "qualify")


@dataclass(frozen=True, order=True)
class Upstream:
    """A column of a table a model reads; `column` is `ROWS` for the table's rows."""

    table: str
    column: str

    def __str__(self) -> str:
        return f"{self.table}.{self.column}"


@dataclass(frozen=True)
class Effect:
    """What a column does to an upstream value that takes its identity away: `PSEUDONYMOUS`
    or `DROPPED`, and the SQL that does it (`via`)."""

    kind: str
    via: str


@dataclass(frozen=True)
class ModelLineage:
    """One model's lineage: each output column (in select order, then `ROWS`) → its upstream.

    `key` identifies what it was traced from (the SQL, the columns of what it reads); it is
    empty when tracing reported issues. `effects`: per column, the upstream columns whose
    identity it takes away on every path (traced now; lineage read from the catalog has none).
    """

    model: str
    key: str
    columns: dict[str, tuple[Upstream, ...]]
    effects: dict[str, dict[Upstream, Effect]] = field(default_factory=dict, compare=False)

    @property
    def outputs(self) -> list[str]:
        """The model's output columns, in select order."""
        return [c for c in self.columns if c != ROWS]


@dataclass(frozen=True)
class Lineage:
    """Lineage of every model that could be traced, and what went wrong for the others.

    `issues` are located `ModelError`s: a model whose query could not be traced is left out of
    `models`; a column that could not be followed to a table is left out of its model's columns.
    `traced` names the models traced now rather than reused from `known`.
    """

    models: dict[str, ModelLineage]
    issues: list[ModelError] = field(default_factory=list)
    traced: list[str] = field(default_factory=list)


def trace(
    models: Mapping[str, Model],
    schema: Mapping[str, Mapping[str, str]],
    *,
    order: Sequence[str] | None = None,
    known: Mapping[str, ModelLineage] | None = None,
) -> Lineage:
    """Trace the lineage of every model, upstream first.

    Args:
        models: the project's models by name.
        schema: table → {column: SQL type} for every table that is not a model (raw tables).
        order: the models in dependency order (`project.dag.order`); computed when omitted.
        known: lineage traced before; a model whose key (its SQL and the columns of what it
            reads) is unchanged is reused as it is instead of traced again.

    Example:
        >>> found = trace(project.models, {"raw.events": {"event_id": "varchar", ...}})
        >>> found.models["marts.events_daily"].columns["event_count"]
        (Upstream(table='clean.events', column='*'),)
    """
    known = known or {}
    columns = {table: list(cols) for table, cols in schema.items()}
    types = {table: dict(cols) for table, cols in schema.items()}
    mapping = _Schema()
    out = Lineage(models={})
    for name in Dag(models).order if order is None else order:
        model = models[name]
        key = _key(model, columns)
        found = known.get(name)
        if found is None or found.key != key:
            mapping.require(model.depends_on, columns, types)
            found = _trace_one(model, mapping.schema, key, out.issues)
            out.traced.append(name)
        if found is None:
            columns[name] = [s.alias_or_name for s in model.query.selects if not _is_star(s)]
        else:
            out.models[name] = found
            columns[name] = found.outputs
    return out


class _Schema:
    """The sqlglot schema, filled only with the tables a traced model reads (reuse costs none)."""

    def __init__(self) -> None:
        self.schema = MappingSchema(dialect=DIALECT)
        self.added: set[str] = set()

    def require(
        self,
        tables: Iterable[str],
        columns: Mapping[str, list[str]],
        types: Mapping[str, Mapping[str, str]],
    ) -> None:
        for table in tables:
            if table in self.added or table not in columns:
                continue
            self.added.add(table)
            kinds = types.get(table, {})
            zone, _, name = table.rpartition(".")
            self.schema.add_table(
                exp.table_(name, db=zone or None),
                {c: kinds.get(c, "unknown") for c in columns[table]},
                dialect=DIALECT,
            )


def _key(model: Model, columns: Mapping[str, list[str]]) -> str:
    reads = {dep: columns.get(dep) for dep in sorted(model.depends_on)}
    payload = json.dumps([FORMAT, model.sql_hash, reads])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _trace_one(
    model: Model, schema: MappingSchema, key: str, issues: list[ModelError]
) -> ModelLineage | None:
    try:
        tracer = _Tracer(model, schema)
        columns = tracer.columns()
        effects = tracer.effects
    except Exception as err:
        # sqlglot's optimizer on user SQL can fail in many ways; one model must not stop the rest
        issues.append(_issue(model, f"column lineage cannot be traced: {err}"))
        return None
    issues.extend(_issue(model, problem) for problem in dict.fromkeys(tracer.problems))
    # with issues the key stays empty: never reused, so the issues are reported on every run
    return ModelLineage(model.name, "" if tracer.problems else key, columns, effects)


def _issue(model: Model, message: str) -> ModelError:
    return ModelError(message, where=Location(model.path))


class _Tracer:
    """One model's query, qualified and scoped, and the upstream of each of its columns."""

    def __init__(self, model: Model, schema: MappingSchema):
        self.schema = schema
        self.problems: list[str] = []
        self.unnamed = [
            s for s in model.query.selects if not isinstance(s, (exp.Alias, exp.Column, exp.Star))
        ]
        self.query = qualify(
            model.query.copy(),
            schema=schema,
            dialect=DIALECT,
            validate_qualify_columns=False,
            identify=False,
            quote_identifiers=False,
        )
        root = build_scope(self.query)
        if root is None:
            raise ValueError("the query has no SELECT to trace")
        self.root = root
        self.scopes = {id(s.expression): s for s in root.traverse()}
        self.effects: dict[str, dict[Upstream, Effect]] = {}

    def columns(self) -> dict[str, tuple[Upstream, ...]]:
        nodes = lineage(
            None,
            self.query,
            self.schema,
            dialect=DIALECT,
            scope=self.root,
            trim_selects=False,
            copy=False,
        )
        out: dict[str, tuple[Upstream, ...]] = {}
        for name, node in nodes.items():
            if name == ROWS:
                self.problems.append(_unexpanded(node))
                continue
            found = self._upstream(node, name)
            if found is not None:
                out[name] = tuple(sorted(found))
                if effects := _effects(node):
                    self.effects[name] = effects
        out[ROWS] = tuple(sorted(self._rows()))
        for select in self.unnamed:
            self.problems.append(
                f"column lineage: {select.sql(dialect=DIALECT)!r} has no name of its own, so the "
                "warehouse and the lineage name it differently; name it with AS"
            )
        return out

    def _upstream(self, start: Node, name: str) -> set[Upstream] | None:
        found: set[Upstream] = set()
        for node in start.walk():
            expression = node.expression
            if isinstance(expression, exp.Table):
                table = _table_name(expression)
                if table:
                    found.add(Upstream(table, _column_name(node.name)))
            elif isinstance(expression, exp.Placeholder):
                self.problems.append(
                    f"column lineage of {name!r}: cannot tell which table {node.name!r} comes from"
                )
                return None
            elif not node.downstream or _counts_rows(expression):
                scope = self.scopes.get(id(node.source))
                if scope is not None:
                    found.update(Upstream(t, ROWS) for t in _row_tables(scope))
        return found

    def _rows(self) -> set[Upstream]:
        """What the model's rows derive from: the tables it selects from, row-shaping columns."""
        found: set[Upstream] = set()
        for scope in self.root.traverse():
            if _in_value(scope):
                continue  # a subquery in the select list computes a value, not which rows exist
            for source in scope.sources.values():
                if isinstance(source, exp.Table) and _table_name(source):
                    found.add(Upstream(_table_name(source), ROWS))
            for column in _row_columns(scope):
                found.update(self._resolve(column, scope))
        return found

    def _resolve(self, column: exp.Column, scope: Scope) -> set[Upstream]:
        """The upstream of a column read in `scope` (looking outwards for correlated ones)."""
        at: Scope | None = scope
        while at is not None and column.table not in at.sources:
            at = at.parent
        source = at.sources.get(column.table) if at is not None else None
        if isinstance(source, exp.Table):
            table = _table_name(source)
            return {Upstream(table, column.name)} if table else set()
        if isinstance(source, Scope):
            node = to_node(column.name, source, DIALECT, self.schema, trim_selects=False)
            return self._upstream(node, column.name) or set()
        self.problems.append(
            f"row lineage: cannot tell which table {column.sql(dialect=DIALECT)!r} comes from"
        )
        return set()


def _effects(start: Node) -> dict[Upstream, Effect]:
    """The upstream columns whose identity `start`'s column takes away on every path to them
    (a value kept on one path keeps it)."""
    found: dict[Upstream, Effect | None] = {}
    stack: list[tuple[Node, Effect | None]] = [(start, None)]
    while stack:
        node, effect = stack.pop()
        for child in node.downstream:
            here = _weaker(effect, _effect_on(node.expression, child.name))
            if isinstance(child.expression, exp.Table):
                table = _table_name(child.expression)
                if table:
                    upstream = Upstream(table, _column_name(child.name))
                    found[upstream] = _stronger(found.get(upstream, here), here)
            else:
                stack.append((child, here))
    return {u: e for u, e in found.items() if e is not None}


def _effect_on(expression: exp.Expr, name: str) -> Effect | None:
    """What `expression` does to the column called `name` in it (None: keeps it); a column
    used twice keeps what its most revealing use keeps."""
    uses = [c for c in expression.find_all(exp.Column) if _named(c, name)]
    effects = [_use(c, expression) for c in uses]
    if not effects or None in effects:
        return None
    return next((e for e in effects if e is not None and e.kind == PSEUDONYMOUS), effects[0])


def _use(column: exp.Column, top: exp.Expr) -> Effect | None:
    """The weakest identity the functions around one use of a column leave."""
    effect: Effect | None = None
    node = column.parent
    while node is not None and node is not top.parent:
        if isinstance(node, _COUNTS):
            return Effect(DROPPED, node.sql(dialect=DIALECT))
        if _hashes(node) or _cuts(node):
            effect = effect or Effect(PSEUDONYMOUS, node.sql(dialect=DIALECT))
        node = node.parent
    return effect


def _hashes(node: exp.Expr) -> bool:
    if isinstance(node, _HASHES):
        return True
    return isinstance(node, exp.Anonymous) and str(node.this).lower() in _HASH_NAMES


def _cuts(node: exp.Expr) -> bool:
    """A prefix or suffix of a few characters: `left(x, 3)`, `right(x, 4)`, `substr(x, 1, 4)`."""
    if not isinstance(node, _CUTS):
        return False
    length = node.args.get("length") if isinstance(node, exp.Substring) else node.expression
    return isinstance(length, exp.Literal) and length.is_int and int(length.this) <= _CUT_MAX


def _named(column: exp.Column, name: str) -> bool:
    plain = f"{column.table}.{column.name}" if column.table else column.name
    return name in (plain, column.sql(dialect=DIALECT))


_IDENTITY = {PSEUDONYMOUS: 1, DROPPED: 0}


def _left(effect: Effect | None) -> int:
    """How much of a value's identity is left after `effect` (None: all of it)."""
    return 2 if effect is None else _IDENTITY[effect.kind]


def _weaker(a: Effect | None, b: Effect | None) -> Effect | None:
    """Two effects one after another: the one that leaves less."""
    return a if _left(a) <= _left(b) else b


def _stronger(a: Effect | None, b: Effect | None) -> Effect | None:
    """Two paths to one column: the one that leaves more."""
    return a if _left(a) >= _left(b) else b


def _row_columns(scope: Scope) -> Iterator[exp.Column]:
    """Columns that decide which rows `scope` yields, and how many."""
    select = scope.expression
    if not isinstance(select, exp.Select):
        return
    clauses: list[exp.Expr | None] = [select.args.get(k) for k in _ROW_CLAUSES]
    clauses += [join.args.get("on") for join in select.args.get("joins") or []]
    if select.args.get("limit") or select.args.get("offset"):
        clauses.append(select.args.get("order"))
    if scope.scope_type == ScopeType.SUBQUERY:
        clauses += select.selects  # `x in (select …)`, `> (select max(…))`: its values filter
    for clause in clauses:
        if clause is not None:
            yield from find_all_in_scope(clause, exp.Column)


def _in_value(scope: Scope | None) -> bool:
    """Whether a scope is, or is inside, a subquery in its parent's select list."""
    while scope is not None:
        if scope.scope_type == ScopeType.SUBQUERY and _in_projection(scope):
            return True
        scope = scope.parent
    return False


def _in_projection(scope: Scope) -> bool:
    """Whether a subquery sits in its parent's select list (a value, not a filter)."""
    parent = scope.parent
    if parent is None or not isinstance(parent.expression, exp.Select):
        return False
    projections = {id(s) for s in parent.expression.selects}
    node: exp.Expr | None = scope.expression
    while node is not None and node is not parent.expression:
        if id(node) in projections:
            return True
        node = node.parent
    return False


def _row_tables(scope: Scope) -> set[str]:
    """The tables whose rows a scope's select reads, through CTEs, subqueries and unions."""
    if scope.set_operation_scopes:
        return set().union(*(_row_tables(s) for s in scope.set_operation_scopes))
    if scope.subquery_scopes and isinstance(scope.expression, exp.Subquery):
        return set().union(*(_row_tables(s) for s in scope.subquery_scopes))
    out: set[str] = set()
    for _, source in scope.selected_sources.values():
        if isinstance(source, Scope):
            out |= _row_tables(source)
        elif _table_name(source):
            out.add(_table_name(source))
    return out


def _unexpanded(node: Node) -> str:
    tables = sorted(
        {_table_name(n.expression) for n in node.walk() if isinstance(n.expression, exp.Table)}
        - {""}
    )
    what = ", ".join(tables) if tables else "what it reads"
    return f"column lineage: cannot expand `*`, the columns of {what} are unknown"


def _counts_rows(expression: exp.Expr) -> bool:
    return any(isinstance(star.parent, exp.Count) for star in expression.find_all(exp.Star))


def _table_name(table: exp.Table) -> str:
    """`zone.name` of a table; empty for a table function such as `range(…)`."""
    if not isinstance(table.this, exp.Identifier):
        return ""
    return f"{table.db}.{table.name}" if table.db else table.name


def _column_name(sql: str) -> str:
    """The column of a lineage leaf's name (`o.amount` → `amount`, `"o"."a.b"` → `a.b`)."""
    if '"' not in sql:
        return sql.rsplit(".", 1)[-1]
    return exp.maybe_parse(sql, into=exp.Column, dialect=DIALECT).name


def _is_star(select: exp.Expr) -> bool:
    return isinstance(select, exp.Star) or (
        isinstance(select, exp.Column) and isinstance(select.this, exp.Star)
    )
