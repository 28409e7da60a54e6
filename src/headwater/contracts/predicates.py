"""Row-level rules as SQL conditions: what the quality scan counts and quarantine routes.

Here rather than in `quality`, because landing (`ingest`) applies the same conditions at the
door: a contract's `on_fail: quarantine` rule sends a failing record to quarantine before its
batch commits.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from headwater.contracts.specs import Rule, RuleType


def bad_rows(rule: Rule) -> exp.Expr:
    """The condition a row fails a row-level rule (not_null, completeness, valid_values);
    columns are referred to by their names."""
    col = exp.column(rule.columns[0], quoted=True)
    if rule.type in (RuleType.NOT_NULL, RuleType.COMPLETENESS):
        return col.is_(exp.null())
    if rule.type is RuleType.VALID_VALUES:
        ok: list[exp.Expr] = []
        if rule.values:
            ok.append(col.isin(*[_literal(v) for v in rule.values]))
        if rule.min is not None:
            ok.append(exp.GTE(this=col.copy(), expression=_literal(rule.min)))
        if rule.max is not None:
            ok.append(exp.LTE(this=col.copy(), expression=_literal(rule.max)))
        if rule.pattern is not None:
            ok.append(
                exp.func(
                    "regexp_full_match",
                    exp.cast(col.copy(), "varchar"),
                    exp.Literal.string(rule.pattern),
                )
            )
        length = exp.Length(this=exp.cast(col.copy(), "varchar"))
        if rule.min_length is not None:
            ok.append(exp.GTE(this=length, expression=exp.Literal.number(rule.min_length)))
        if rule.max_length is not None:
            ok.append(exp.LTE(this=length.copy(), expression=exp.Literal.number(rule.max_length)))
        return exp.and_(col.is_(exp.null()).not_(), exp.not_(exp.and_(*ok)))
    raise ValueError(f"{rule.type.value} is not a row-level rule")


HIDDEN = "(PII, not shown)"  # what a reason says in place of a PII-tagged column's value


def failure_reason(rule: Rule, *, hidden: bool = False) -> exp.Expr:
    """`rule <name>: <column> = <value>` for a row failing `rule`, NULL for a row passing it
    (so `concat_ws` over several rules names exactly the ones a row failed). `hidden`: the
    column is PII-tagged, so the reason does not quote it (reasons are shown in run summaries
    and counted by; the quarantined record keeps the value, under the policies)."""
    col = exp.column(rule.columns[0], quoted=True)
    shown: exp.Expr = exp.func("coalesce", exp.cast(col, "varchar"), exp.Literal.string("NULL"))
    if hidden:
        shown = exp.Literal.string(HIDDEN)
    text = exp.DPipe(
        this=exp.Literal.string(f"rule {rule.name}: {rule.columns[0]} = "), expression=shown
    )
    return exp.Case().when(bad_rows(rule), text)


def _literal(value: Any) -> exp.Expr:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))
