"""`incremental_by_key`: merge new versions of rows by a unique key; the newest version wins.

"Newest" is the model's `updated_column`, ties broken by the row's content, so merging versions
in any arrival order (late, out of order, redelivered) equals rebuilding from all of them.
Deleted keys stay in the physical table as tombstones that the published view hides, so an
older version arriving late cannot bring a deleted key back.
"""

from __future__ import annotations

from sqlglot import exp

from headwater.engine import Engine
from headwater.models import Model

INCOMING = "_hw_incoming"


def newest_per_key(query: exp.Query, model: Model, engine: Engine) -> exp.Select:
    """`query`, keeping only the winning version of each key."""
    keys = [exp.column(k, quoted=True) for k in model.config.unique_key]
    order = exp.Order(
        expressions=[
            exp.Ordered(
                this=exp.column(model.config.updated_column or "", quoted=True),
                desc=True,
                nulls_first=False,
            ),
            exp.Ordered(this=engine.content_hash("_q"), desc=True),
        ]
    )
    number = exp.Window(this=exp.RowNumber(), partition_by=keys, order=order)
    return (
        exp.select(exp.Star())
        .from_(query.subquery("_q"))
        .qualify(exp.EQ(this=number, expression=exp.Literal.number(1)))
    )


def after_truncation(query: exp.Query, model: Model) -> exp.Select:
    """`query` less the rows a truncation removed: every row whose version is not newer than
    the newest truncation's (whose own row stays, as the marker the view hides)."""
    truncated = _flag(model.config.truncated_column)
    version = exp.column(model.config.updated_column or "", quoted=True)
    cut = exp.Subquery(
        this=exp.select(exp.func("max", version.copy())).from_("_q").where(truncated.copy())
    )
    kept = exp.or_(
        truncated,
        exp.Is(this=cut, expression=exp.null()),
        exp.GT(this=version, expression=cut.copy()),
    )
    return exp.select(exp.Star()).from_("_q").where(kept).with_("_q", as_=query)


def _flag(column: str | None) -> exp.Expr:
    return exp.func("coalesce", exp.column(column or "", quoted=True), exp.false())


CUT = "_hw_cut"


def _truncate(cursor: Engine, target: str, model: Model, columns: list[str]) -> None:
    """Apply the truncations among the incoming rows (`INCOMING`, of `columns`) to `target`
    as `after_truncation` applies the newest one to a whole rebuild: a truncation newer than
    the target's marker removes the rows it does not predate and becomes the marker; an older
    or repeated one is dropped, with the incoming rows the marker does not predate."""
    version = exp.column(model.config.updated_column or "", quoted=True)
    truncated = _flag(model.config.truncated_column)

    def newest(table: str) -> exp.Select:
        return exp.select(exp.func("max", version.copy())).from_(table).where(truncated.copy())

    marker_in, marker = exp.Subquery(this=newest(INCOMING)), exp.Subquery(this=newest(target))
    # the cut: the incoming truncation if it beats the target's marker (in `newest_per_key`'s
    # order: the version, then the content, as a rebuild picks among tied truncations), else
    # the marker; each table holds one truncation at most (they share the NULL key)
    flag = model.config.truncated_column or ""
    beaten = exp.Exists(
        this=exp.select("1")
        .from_(_aliased(target, "t"))
        .where(
            exp.and_(
                exp.func("coalesce", exp.column(flag, "t", quoted=True), exp.false()),
                exp.not_(_wins(cursor, model.config.updated_column or "", columns)),
            )
        )
    )
    newer = exp.Exists(
        this=exp.select("1")
        .from_(exp.to_table(INCOMING).as_("i"))
        .where(
            exp.and_(
                exp.func("coalesce", exp.column(flag, "i", quoted=True), exp.false()),
                exp.not_(beaten),
            )
        )
    )
    _temporary(
        cursor,
        CUT,
        exp.select(
            exp.Case().when(newer, marker_in.copy()).else_(marker.copy()).as_("v"),
            newer.copy().as_("newer"),
        ),
    )
    cut = exp.Subquery(this=exp.select("v").from_(CUT))
    is_newer = exp.Subquery(this=exp.select("newer").from_(CUT))
    # as the rebuild keeps only rows newer than the cut, a row without a version goes too
    not_newer = exp.and_(
        exp.not_(exp.Is(this=cut.copy(), expression=exp.null())),
        exp.not_(exp.func("coalesce", exp.GT(this=version.copy(), expression=cut), exp.false())),
    )
    # the target: a newer truncation removes every row it does not predate, and the old marker
    cursor.execute(
        exp.delete(exp.to_table(target)).where(
            exp.and_(is_newer, exp.or_(truncated.copy(), not_newer.copy()))
        )
    )
    # the incoming: rows the cut does not predate go; so does a truncation that is not newer
    # (the table made again without them: a temporary table may be a session's view, which
    # takes no DELETE, on Spark)
    gone = exp.or_(
        exp.and_(exp.not_(truncated.copy()), not_newer.copy()),
        exp.and_(truncated.copy(), exp.not_(is_newer.copy())),
    )
    kept = exp.not_(exp.func("coalesce", gone, exp.false()))
    _temporary(cursor, INCOMING, exp.select(exp.Star()).from_(INCOMING).where(kept))
    cursor.execute(exp.Drop(tables=[exp.to_table(CUT)], kind="TABLE", exists=True))


def merge_into(cursor: Engine, target: str, incoming: exp.Query, model: Model) -> None:
    """Merge the winning versions of `incoming` into `target` (in the caller's transaction)."""
    _temporary(cursor, INCOMING, newest_per_key(incoming, model, cursor))
    columns = list(cursor.columns(INCOMING))  # the target's too
    if model.config.truncated_column:
        _truncate(cursor, target, model, columns)
    same_key = exp.and_(
        *[
            exp.EQ(this=exp.column(k, "t", quoted=True), expression=exp.column(k, "i", quoted=True))
            for k in model.config.unique_key
        ]
    )
    version = model.config.updated_column or ""
    wins = _wins(cursor, version, columns)
    beaten = exp.Exists(
        this=exp.select("1").from_(exp.to_table(INCOMING).as_("i")).where(exp.and_(same_key, wins))
    )
    cursor.execute(exp.delete(_aliased(target, "t")).where(beaten))
    kept = exp.Exists(this=exp.select("1").from_(_aliased(target, "t")).where(same_key.copy()))
    survivors = exp.select("i.*").from_(exp.to_table(INCOMING).as_("i")).where(exp.not_(kept))
    cursor.execute(exp.insert(survivors, exp.to_table(target)))
    cursor.execute(exp.Drop(tables=[exp.to_table(INCOMING)], kind="TABLE", exists=True))


def _temporary(cursor: Engine, name: str, query: exp.Query) -> None:
    """The temporary table `name` (made again if it exists): `query`'s rows, now."""
    cursor.execute(
        exp.Create(
            this=exp.to_table(name),
            kind="TABLE",
            replace=True,
            expression=query,
            properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
        )
    )


def _wins(engine: Engine, version: str, columns: list[str]) -> exp.Expr:
    """Whether the incoming row `i` beats the target's row `t` of the same key (both of
    `columns`), in `newest_per_key`'s order: the higher version (a version beats none), then
    the higher content hash."""
    va, vb = exp.column(version, "i", quoted=True), exp.column(version, "t", quoted=True)
    ha, hb = engine.content_hash("i", columns), engine.content_hash("t", columns)
    return exp.or_(
        exp.and_(
            exp.not_(exp.Is(this=va, expression=exp.null())), exp.Is(this=vb, expression=exp.null())
        ),
        exp.GT(this=va.copy(), expression=vb.copy()),
        exp.and_(
            exp.NullSafeEQ(this=va.copy(), expression=vb.copy()), exp.GT(this=ha, expression=hb)
        ),
    )


def _aliased(table: str, alias: str) -> exp.Table:
    node = exp.to_table(table)
    node.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    return node


def history(query: exp.Query, model: Model, engine: Engine) -> exp.Select:
    """`scd2`: every distinct version of each key with `valid_from` and `valid_to`.

    A version is valid from its `updated_column` until the next version of its key (NULL
    while it is current); a deleting version ends the one before it and is not shown itself.
    """
    keys = [exp.column(k, quoted=True) for k in model.config.unique_key]
    version = exp.column(model.config.updated_column or "", quoted=True)
    distinct = exp.select(exp.Star()).distinct().from_(query.subquery("_q"))
    order = exp.Order(
        expressions=[exp.Ordered(this=version.copy()), exp.Ordered(this=engine.content_hash("_d"))]
    )
    following = exp.Window(this=exp.func("lead", version.copy()), partition_by=keys, order=order)
    versions = exp.select(
        exp.Star(), version.copy().as_("valid_from"), following.as_("valid_to")
    ).from_(distinct.subquery("_d"))
    out = exp.select(exp.Star()).from_(versions.subquery("_v"))
    if model.config.deleted_column:
        deleted = exp.column(model.config.deleted_column, quoted=True)
        out = out.where(exp.not_(exp.func("coalesce", deleted, exp.false())))
    return out


def restate_keys(
    cursor: Engine, target: str, *, everything: exp.Query, new: exp.Query, model: Model
) -> None:
    """Recompute the whole history of the keys `new` touches, from `everything`."""
    keys = model.config.unique_key
    touched = (
        exp.select(*[exp.column(k, quoted=True) for k in keys]).distinct().from_(new.subquery("_n"))
    )
    _temporary(cursor, INCOMING, touched)

    def among_touched(alias: str) -> exp.Exists:
        same = exp.and_(
            *[
                exp.EQ(
                    this=exp.column(k, alias, quoted=True),
                    expression=exp.column(k, "k", quoted=True),
                )
                for k in keys
            ]
        )
        return exp.Exists(this=exp.select("1").from_(exp.to_table(INCOMING).as_("k")).where(same))

    cursor.execute(exp.delete(_aliased(target, "t")).where(among_touched("t")))
    scoped = exp.select(exp.Star()).from_(everything.subquery("_e")).where(among_touched("_e"))
    cursor.execute(exp.insert(history(scoped, model, cursor), exp.to_table(target)))
    cursor.execute(exp.Drop(tables=[exp.to_table(INCOMING)], kind="TABLE", exists=True))
