"""What a role sees of a table, built into the query as an AST: masked columns, denied ones
left out, and the role's row policy applied before anything the caller asks.

`sight()` decides per column from policies.yml (`contracts/policies.py`) and the column's PII
tag (`govern/pii.py`); `guarded()` turns it into `SELECT <masked columns> FROM t WHERE
<row policy>`, which `headwater sql --role` puts in place of every table a query reads and the
data API reads its products through. A masked value is text, NULL stays NULL.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
from sqlglot import exp

from headwater.contracts.policies import TAG_PREFIX, Mask, Policies, Role, row_condition
from headwater.contracts.secrets import Secrets
from headwater.govern.pii import NONE, PSEUDONYMOUS, RECORD, Tag
from headwater.project import Project

SALT_FILE = Path(".headwater", "salt")
_PARTIAL_MAX = 4  # characters a partial mask keeps at most (and a third of the value at most)
_DEFAULTS = {"number": "0", "boolean": "false", "date": "1970-01-01", "timestamp": "1970-01-01"}


@dataclass(frozen=True)
class Sight:
    """What one role sees of one table: the masked columns, the denied ones (restricted and
    not unmasked: left out of every read) and the row policy."""

    masks: dict[str, Mask] = field(default_factory=dict)
    denied: dict[str, str] = field(default_factory=dict)  # column → why
    rows: exp.Expr | None = None


def sight(
    policies: Policies,
    role: Role,
    table: str,
    columns: Sequence[str],
    tags: Mapping[str, Tag],
) -> Sight:
    """How `role` sees each of `columns` of `table`, given the columns' PII `tags`."""
    named = role.column_masks(table)
    masks: dict[str, Mask] = {}
    denied: dict[str, str] = {}
    for column in columns:
        tag = tags.get(column)
        mask = named.get(column) or _tag_mask(policies, role, tag)
        if mask is Mask.RESTRICTED:
            why = f" (PII tag {tag.tag})" if tag is not None and column not in named else ""
            denied[column] = f"{table}.{column} is restricted{why}"
        elif mask is not None:
            masks[column] = mask
    condition = role.rows.get(table)
    rows = None if condition is None else row_condition(condition, where=f"rows of {table}")
    return Sight(masks, denied, rows)


def _tag_mask(policies: Policies, role: Role, tag: Tag | None) -> Mask | None:
    """The mask a column's tag puts on it for `role` (None: the role sees it)."""
    if tag is None or tag.tag == NONE:
        return None
    if tag.tag == RECORD:  # a quarantined record: as strict as the strictest field in it
        hidden = [t for t in tag.covers if not role.sees(t)]
        if not hidden:
            return None
        if any(_by_tag(policies, role, t) is Mask.RESTRICTED for t in hidden):
            return Mask.RESTRICTED
        return Mask.REDACT
    if role.sees(tag.tag):
        return None
    if tag.tag == PSEUDONYMOUS:  # hashed upstream already: masked only when policies say so
        return role.masks.get(TAG_PREFIX + PSEUDONYMOUS) or policies.masks.get(PSEUDONYMOUS)
    return _by_tag(policies, role, tag.tag)


def _by_tag(policies: Policies, role: Role, tag: str) -> Mask:
    return role.masks.get(TAG_PREFIX + tag) or policies.tag_mask(tag)


def guarded(source: exp.Expr, columns: Mapping[str, str], seen: Sight, *, salt: str) -> exp.Select:
    """`SELECT` the visible `columns` (name → SQL type) of `source` as the role sees them,
    masked, with its row policy."""
    shown = [
        masked(name, seen.masks[name], salt=salt, kind=family(kind)).as_(name, quoted=True)
        if name in seen.masks
        else exp.column(name, quoted=True)
        for name, kind in columns.items()
        if name not in seen.denied
    ]
    select = exp.select(*shown).from_(source)
    return select if seen.rows is None else select.where(seen.rows.copy())


def masked(name: str, mask: Mask, *, salt: str, kind: str = "text") -> exp.Expr:
    """What a role sees of column `name` under `mask`, as text (NULL stays NULL); `kind` is the
    column's type family (`family()`)."""
    column = exp.column(name, quoted=True)
    text = exp.cast(column.copy(), exp.DataType.build("VARCHAR"))
    if mask in (Mask.NULL, Mask.RESTRICTED):
        return exp.cast(exp.null(), exp.DataType.build("VARCHAR"))
    shown = _shown(text, mask, salt=salt, kind=kind)
    return exp.Case(ifs=[exp.If(this=column.is_(exp.null()), true=exp.null())], default=shown)


def _shown(text: exp.Expr, mask: Mask, *, salt: str, kind: str) -> exp.Expr:
    if mask is Mask.HASH:
        # sqlglot's node, so each engine gets its own name (DuckDB's sha256, Spark's sha2)
        salted = exp.DPipe(this=exp.Literal.string(salt), expression=text)
        return exp.SHA2(this=salted, length=exp.Literal.number(256))
    if mask is Mask.REDACT:
        return exp.Literal.string("****")
    if mask is Mask.EMAIL:  # the domain kept: ****@example.com
        return exp.func(
            "regexp_replace", text, exp.Literal.string("^[^@]*"), exp.Literal.string("****")
        )
    if mask is Mask.YEAR:
        moment = exp.TryCast(this=text, to=exp.DataType.build("TIMESTAMP"))
        year = exp.func("year", moment)
        return exp.cast(year, exp.DataType.build("VARCHAR"))
    if mask is Mask.DEFAULT:
        return exp.Literal.string(_DEFAULTS.get(kind, ""))
    # partial: at most the last 4 characters, and never more than a third of them
    length = exp.Length(this=text.copy())
    kept = exp.func(
        "least",
        exp.Literal.number(_PARTIAL_MAX),
        exp.IntDiv(this=length, expression=exp.Literal.number(3)),
    )
    stars = exp.func(
        "repeat", exp.Literal.string("*"), exp.Sub(this=length.copy(), expression=kept)
    )
    return exp.DPipe(this=stars, expression=exp.func("right", text, kept.copy()))


def family(sql_type: str) -> str:
    """A SQL type's family as masks see it: number, boolean, date, timestamp or text."""
    kind = sql_type.strip().lower()
    if kind.startswith(("timestamp", "datetime")):
        return "timestamp"
    if kind == "date":
        return "date"
    if kind in ("boolean", "bool"):
        return "boolean"
    numbers = ("int", "bigint", "smallint", "tinyint", "hugeint", "double", "float", "real")
    if kind.startswith(("decimal", "numeric", "ubigint", "uinteger")) or kind in numbers:
        return "number"
    return "number" if kind.endswith("int") or kind == "integer" else "text"


def arrow_family(kind: pa.DataType) -> str:
    """An Arrow type's family as masks see it (`family()` of a SQL type)."""
    if pa.types.is_timestamp(kind):
        return "timestamp"
    if pa.types.is_date(kind):
        return "date"
    if pa.types.is_boolean(kind):
        return "boolean"
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "number"
    return "text"


def project_salt(project: Project) -> str:
    """The hash mask's salt: policies.yml's `salt:` (a secret), or one made for the project
    the first time it is needed and kept in `.headwater/salt` (readable by its owner only)."""
    declared = project.policies.salt if project.policies else None
    if declared:
        return Secrets(os.environ).expand(declared, where="policies.yml: salt")
    path = project.root / SALT_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    made = path.with_suffix(f".{secrets.token_hex(4)}")
    made.write_text(secrets.token_hex(32), encoding="utf-8")
    made.chmod(0o600)
    try:
        os.link(made, path)  # first one wins: two processes making it agree on one salt
    except FileExistsError:
        pass
    finally:
        made.unlink()
    return path.read_text(encoding="utf-8").strip()
