"""A query as a role may run it: every table it reads replaced by what the role sees of it.

`headwater sql --role R` runs one SELECT. Each table it names must be a table of the project
the role is granted; it becomes `(SELECT <masked columns> FROM t WHERE <row policy>) AS t`
(`govern/masking.py`), so the query's own filters, joins and functions only ever see masked
values of the rows the role may read. Table functions and file paths are refused: they read
files past the policies. A restricted column the query names is refused by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from headwater.contracts.policies import POLICIES_FILE, Policies
from headwater.engine.dialect import AUTHORED
from headwater.errors import Denied, UsageError
from headwater.govern.masking import Sight, guarded, sight
from headwater.govern.pii import Tags

ONE_SELECT = "with --role, headwater sql runs one SELECT (or WITH … SELECT)"


@dataclass
class Guarded:
    """A rewritten query and what the role's policies did to it, for the audit log."""

    query: exp.Query
    tables: list[str] = field(default_factory=list)
    masked: dict[str, list[str]] = field(default_factory=dict)  # table → masked columns
    filtered: list[str] = field(default_factory=list)  # tables read through a row policy


def guard(
    sql: str,
    *,
    policies: Policies,
    role: str,
    tables: Mapping[str, Callable[[], dict[str, str]]],
    tags: Callable[[list[str]], Tags],
    salt: str,
) -> Guarded:
    """`sql` rewritten so it reads every table as `role` sees it.

    Args:
        tables: each table of the project → its columns (name → SQL type), asked when read.
        tags: the PII tags of the named tables (and their ancestors).

    Raises:
        UsageError: not one SELECT, or it reads something that is no table of the project.
        Denied: the role has no grant on a table, or the query names a restricted column.
    """
    try:
        chosen = policies.role(role)
    except KeyError as err:
        raise UsageError(str(err.args[0]), hint=f"declare the role in {POLICIES_FILE}") from None
    query = _one_select(sql)
    named = _tables(query, tables)
    for table in dict.fromkeys(name for _, name in named):
        if not chosen.granted(table):
            raise Denied(
                f"role {role!r} may not read {table}",
                hint=f"a grant in {POLICIES_FILE} gives it (roles.{role}.grants)",
            )
    reads = sorted({name for _, name in named})
    found = tags(reads)
    out = Guarded(query, tables=reads)
    sights: dict[str, tuple[dict[str, str], Sight]] = {}
    for table in out.tables:
        columns = tables[table]()
        seen = sight(policies, chosen, table, list(columns), found.of(table, list(columns)))
        sights[table] = (columns, seen)
        if seen.masks:
            out.masked[table] = sorted(seen.masks)
        if seen.rows is not None:
            out.filtered.append(table)
    _refuse_denied(query, sights, role)
    for node, table in named:
        columns, seen = sights[table]
        alias = node.alias_or_name
        replacement = guarded(exp.table_(node.name, db=node.db), columns, seen, salt=salt)
        node.replace(replacement.subquery(alias))
    return out


def _one_select(sql: str) -> exp.Query:
    try:
        statements = [s for s in sqlglot.parse(sql, dialect=AUTHORED) if s is not None]
    except sqlglot.errors.ParseError as err:
        raise UsageError(f"the query does not parse: {err}") from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise UsageError(ONE_SELECT, hint="run other statements without --role")
    return statements[0]


def _tables(
    query: exp.Query, known: Mapping[str, Callable[[], dict[str, str]]]
) -> list[tuple[exp.Table, str]]:
    """Every table node the query reads → the project table it names (CTEs left out)."""
    ctes = {cte.alias_or_name for cte in query.find_all(exp.CTE)}
    out: list[tuple[exp.Table, str]] = []
    for node in query.find_all(exp.Table):
        if not isinstance(node.this, exp.Identifier):
            raise UsageError(
                f"{node.sql(dialect=AUTHORED)!r} is a table function: it reads files past "
                "the policies, so --role refuses it",
                hint="read the project's tables by name",
            )
        if not node.db and node.name in ctes:
            continue
        name = f"{node.db}.{node.name}" if node.db else node.name
        if node.catalog or name not in known:
            raise UsageError(
                f"{name!r} is not a table of the project", hint="read raw tables and models"
            )
        out.append((node, name))
    return out


def _refuse_denied(
    query: exp.Query, sights: Mapping[str, tuple[dict[str, str], Sight]], role: str
) -> None:
    """A column the query names that is restricted for the role in a table it reads."""
    denied = {c: why for _, seen in sights.values() for c, why in seen.denied.items()}
    for column in query.find_all(exp.Column):
        if column.name in denied:
            raise Denied(
                f"{denied[column.name]}; role {role!r} may not read it",
                hint=f"a role that unmasks its tag in {POLICIES_FILE} may (roles.<role>.unmask)",
            )
