"""Render a model's query for an engine: one chain of AST passes, its text kept for reuse.

Rendering is `resolve` (point every reference at its physical table, or inline an ephemeral
model as a subquery), then the renderer's own passes in order (the seams for masking, row
filters and transpilation), then SQL in the engine's dialect. There is no other renderer.

The build renders every model it builds on every run, and generating SQL from a copied AST
costs milliseconds per model. So the chain is also run once per query, dialect and passes with
each reference resolved to a placeholder: the finished text, split at the placeholders, is a
`Compiled`, and rendering for a run joins its parts with the physical names of that run. The
`Compiled` of the authored dialect is made at parse time and kept in the model cache; a
`Renderer` makes the others on first use and keeps them by the model's fingerprint.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import exp

import headwater.engine.dialect as authored

if TYPE_CHECKING:
    from headwater.models.parse import Model

# a pass of the chain after `resolve`: takes the resolved query (its own copy) and returns it
Pass = Callable[[exp.Query], exp.Query]

# a placeholder for reference i, as a table `__hw_slot__.__hw_<i>__`; found again in the text
_SCHEMA = "__hw_slot__"
_Q, _UNQ = r'["`\[]?', r'["`\]]?'  # the quotes a dialect may put around an identifier
_PLACEHOLDER = re.compile(rf"{_Q}__hw_slot__{_UNQ}\.{_Q}__hw_(\d+)__{_UNQ}")


def resolve(
    query: exp.Query, tables: Mapping[str, str], inline: Mapping[str, exp.Query] | None = None
) -> exp.Query:
    """The first pass: every reference pointed at the physical table `tables` maps it to, or
    inlined. Returns a copy.

    An unaliased table keeps its logical name as alias, so `orders.id` still resolves.
    `inline` maps ephemeral models to their (rendered) query, placed as a subquery.

    >>> import sqlglot
    >>> resolve(sqlglot.parse_one("select orders.id from clean.orders"),
    ...         {"clean.orders": "hw_clean.orders__ab12"}).sql()
    'SELECT orders.id FROM "hw_clean"."orders__ab12" AS orders'
    """
    out = query.copy()
    for table in list(out.find_all(exp.Table)):
        logical = f"{table.db}.{table.name}" if table.db else None
        if inline and logical is not None and logical in inline:
            alias = table.alias or table.name
            table.replace(inline[logical].copy().subquery(alias))
            continue
        target = tables.get(logical) if logical else None
        if target is None:
            continue
        schema, name = target.split(".")
        if not table.alias:
            table.set("alias", exp.TableAlias(this=exp.to_identifier(table.name)))
        table.set("db", exp.to_identifier(schema, quoted=True))
        table.set("this", exp.to_identifier(name, quoted=True))
    return out


def render(
    query: exp.Query,
    tables: Mapping[str, str],
    inline: Mapping[str, exp.Query] | None = None,
    passes: Sequence[Pass] = (),
) -> exp.Query:
    """The whole chain as an AST: `resolve`, then each pass."""
    out = resolve(query, tables, inline)
    for step in passes:
        out = step(out)
    return out


@dataclass(frozen=True)
class Compiled:
    """A rendered query's text split at its references: `parts[0]`, a table, `parts[1]`, ….

    `slots[i]` is the logical name the i-th gap reads and its text when a run does not map it.
    """

    dialect: str
    parts: tuple[str, ...]
    slots: tuple[tuple[str, str], ...]

    def bind(self, tables: Mapping[str, str]) -> str:
        """The text with each gap filled with the physical table `tables` maps it to.

        >>> import sqlglot
        >>> made = compile_query(sqlglot.parse_one("select o.id from clean.orders o"))
        >>> made.bind({"clean.orders": "hw_clean.orders__ab12"})
        'SELECT o.id FROM "hw_clean"."orders__ab12" AS o'
        """
        out = [self.parts[0]]
        for (logical, text), part in zip(self.slots, self.parts[1:], strict=True):
            target = tables.get(logical)
            out.append(table_sql(target, self.dialect) if target else text)
            out.append(part)
        return "".join(out)


def compile_query(
    query: exp.Query, dialect: str = authored.AUTHORED, passes: Sequence[Pass] = ()
) -> Compiled | None:
    """The chain run once with a placeholder per reference; None when the query's own text
    already holds something that reads as a placeholder (it is then rendered as an AST)."""
    if _PLACEHOLDER.search(query.sql(dialect=dialect)):
        return None
    slots: list[tuple[str, str]] = []
    tables: dict[str, str] = {}
    for table in query.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier) or not table.db:
            continue  # a CTE or a table function
        logical = f"{table.db}.{table.name}"
        if logical not in tables:
            tables[logical] = f"{_SCHEMA}.__hw_{len(slots)}__"
            unmapped = exp.Table(this=table.this.copy(), db=table.args["db"].copy())
            slots.append((logical, unmapped.sql(dialect)))
    text = render(query, tables, passes=passes).sql(dialect=dialect, comments=False)
    pieces = _PLACEHOLDER.split(text)
    # split keeps each placeholder's number between the texts around it
    parts, order = tuple(pieces[0::2]), [int(i) for i in pieces[1::2]]
    return Compiled(dialect, parts, tuple(slots[i] for i in order))


class Renderer:
    """Renders models for one build: the chain's passes, and the `Compiled` text by model.

    A model that reads an inlined model is rendered from its AST: its text depends on that
    model's rendering too, and such models are few.
    """

    def __init__(self, passes: Sequence[Pass] = ()) -> None:
        self.passes = tuple(passes)
        self._compiled: dict[tuple[str, str], Compiled | None] = {}

    def sql(
        self,
        model: Model,
        dialect: str,
        tables: Mapping[str, str],
        inline: Mapping[str, exp.Query] | None = None,
    ) -> str | exp.Query:
        """The model's query over `tables`: text when it can be bound, else the AST."""
        if inline and not inline.keys().isdisjoint(model.depends_on):
            return self.query(model.query, tables, inline)
        compiled = self.compiled(model, dialect)
        if compiled is None:
            return self.query(model.query, tables, inline)
        return compiled.bind(tables)

    def query(
        self,
        query: exp.Query,
        tables: Mapping[str, str],
        inline: Mapping[str, exp.Query] | None = None,
    ) -> exp.Query:
        """`render` with this renderer's passes."""
        return render(query, tables, inline, self.passes)

    def compiled(self, model: Model, dialect: str) -> Compiled | None:
        """The model's `Compiled` text in `dialect`: made at parse time, or here once."""
        made = model.compiled
        if made is not None and not self.passes and made.dialect == dialect:
            return made
        key = (model.sql_hash, dialect)
        if key not in self._compiled:
            self._compiled[key] = compile_query(model.query, dialect, self.passes)
        return self._compiled[key]


@functools.lru_cache(maxsize=4096)
def table_sql(name: str, dialect: str) -> str:
    """`hw_clean.orders__ab12` as a quoted table name in `dialect`."""
    schema, table = name.split(".")
    return exp.table_(table, schema, quoted=True).sql(dialect)


def quote_table(name: str) -> str:
    """`hw_clean.orders__ab12` → `"hw_clean"."orders__ab12"`."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))
