"""`headwater batches`: raw batches held by a blocking rule; release or discard them.

A held batch stays in the lake, out of `raw.<name>`, until its rules pass at a later landing
or an operator decides: `release` puts it back into `raw.<name>` (incremental models take it
in on their next build), `discard` keeps it out for good. Either is recorded with who and why.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.table import Table

    from headwater.orchestrate.stores import LakeStores, Stores
    from headwater.project import Project
    from headwater.zones.catalog.holds import FailedRule, HeldBatch

ProjectDir = Annotated[
    Path, typer.Option("--project", "-p", help="The project folder.", show_default="current folder")
]
SHORTEST_PREFIX = 8  # characters of a batch id that may stand for it
Rows = dict[tuple[str, str], int | None]  # (table, batch id) → rows the batch landed


class Action(StrEnum):
    RELEASE = "release"
    DISCARD = "discard"


def batches(
    action: Annotated[
        Action | None,
        typer.Argument(
            metavar="ACTION",
            help="release: put the batch back into raw.<name>; discard: keep it out for good. "
            "Omit it to list the batches.",
            show_default=False,
        ),
    ] = None,
    batch: Annotated[
        str | None,
        typer.Argument(
            metavar="ID",
            help=f"The batch to release or discard: its id, or its first {SHORTEST_PREFIX} "
            "characters or more.",
            show_default=False,
        ),
    ] = None,
    project: ProjectDir = Path("."),
    held: Annotated[
        bool, typer.Option("--held", help="List the batches awaiting a decision (the default).")
    ] = False,
    every: Annotated[
        bool,
        typer.Option("--all", help="List the released and discarded batches too: who, when, why."),
    ] = False,
    table: Annotated[
        str | None, typer.Option("--table", help="Only the batches of this raw table (raw.x).")
    ] = None,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="Why you release or discard the batch (required; recorded)."),
    ] = None,
    by: Annotated[
        str | None,
        typer.Option(
            "--by", help="Who decides (recorded).", show_default="$HEADWATER_USER, else your login"
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """List the raw batches a blocking rule holds out of raw.<name>, with the rules that
    failed; release one into raw.<name>, or discard it for good.

    [bold]headwater batches[/] [--all]                   list them (--all: decided ones too)
    [bold]headwater batches release[/] ID --reason TEXT  into raw.<name> now, into models next build
    [bold]headwater batches discard[/] ID --reason TEXT  kept out of raw.<name> for good
    """
    # main registers this command: what it needs is imported when it runs (`--help` stays fast)
    from headwater.cli.main import _check_format, _errors
    from headwater.errors import UsageError

    _check_format(fmt)
    with _errors():
        if held and every:
            raise UsageError("--held and --all: give one (--all lists the held batches too)")
        if action is None:
            given = {"ID": batch, "--reason": reason, "--by": by}
            if stray := [name for name, value in given.items() if value]:
                raise UsageError(
                    f"{' and '.join(stray)}: only with release or discard",
                    hint="e.g. headwater batches release ID --reason TEXT",
                )
            _list(project, table=table, decided=every, fmt=fmt)
            return
        if held or every:
            raise UsageError(f"--{'all' if every else 'held'} lists batches; {action} takes an ID")
        if not batch:
            raise UsageError(
                f"which batch? headwater batches {action} ID --reason TEXT",
                hint="`headwater batches` lists the held batches and their ids",
            )
        if not reason or not reason.strip():
            raise UsageError(
                f"{action} needs --reason: say why (it is recorded, with who decided)",
                hint=f'e.g. headwater batches {action} {batch} --reason "source confirmed it"',
            )
        _decide(project, action, batch, table=table, reason=reason.strip(), by=by, fmt=fmt)


def _list(project: Path, *, table: str | None, decided: bool, fmt: str) -> None:
    from headwater.cli.main import _console, _print_json

    loaded = _load(project)
    stores, _ = _open(loaded, warehouse=False)
    try:
        table = _table(loaded, stores, table)
        found = stores.catalog.holds(table=table, decided=decided)
        rows = _rows(stores, {b.table for b in found})
        records = [_record(b, stores.catalog.failed_rules(b), rows) for b in found]
    finally:
        stores.close()
    if fmt == "json":
        _print_json({"batches": records})
    elif records:
        _console().print(_listing(records, decided=decided))
    else:
        of = f" of {table}" if table else ""
        shown = f"No batch{of} was ever held." if decided else f"No batch{of} is held."
        _console().print(shown, highlight=False)


def _decide(
    project: Path,
    action: Action,
    wanted: str,
    *,
    table: str | None,
    reason: str,
    by: str | None,
    fmt: str,
) -> None:
    """Release or discard the held batch `wanted` names; a release also refreshes the raw
    view (when the warehouse is free: else the next run does)."""
    from rich.markup import escape

    from headwater.cli.main import _console, _print_json, _stderr

    loaded = _load(project)
    stores, busy = _open(loaded, warehouse=action is Action.RELEASE)
    try:
        table = _table(loaded, stores, table)
        chosen = _resolve(stores.catalog.holds(table=table, decided=True), wanted, table)
        done = _record_decision(stores, chosen, action, by=by or _user(), reason=reason)
        record = _record(done, stores.catalog.failed_rules(done), _rows(stores, {done.table}))
        if action is Action.RELEASE and busy is None:
            busy = _refresh(loaded, stores, done.table)
    finally:
        stores.close()
    stale = busy if action is Action.RELEASE else None
    if fmt == "json":
        _print_json({"action": action.value, "batch": record, "raw_view_stale": stale})
        return
    _console().print(_told(record, action, stale=stale is not None), markup=False, highlight=False)
    if stale is not None:
        _stderr().print(
            f"[yellow]warning:[/] {record['table']} not refreshed now: {escape(stale)}",
            highlight=False,
        )


def _record_decision(
    stores: Stores | LakeStores, chosen: HeldBatch, action: Action, *, by: str, reason: str
) -> HeldBatch:
    """Record the operator's decision; the batch as it stands after it.

    Raises:
        UsageError: the batch is decided already (maybe just now, by a run or someone else).
    """
    _undecided(chosen, action)
    catalog = stores.catalog
    decide = catalog.release if action is Action.RELEASE else catalog.discard
    recorded = decide(chosen.table, chosen.batch_id, now=datetime.now(UTC), by=by, note=reason)
    [now] = [
        b for b in catalog.holds(table=chosen.table, decided=True) if b.batch_id == chosen.batch_id
    ]
    if not recorded:
        _undecided(now, action)
    return now


def _undecided(batch: HeldBatch, action: Action) -> None:
    """Raises UsageError when `batch` is decided already, naming how."""
    from headwater.errors import UsageError
    from headwater.zones.catalog.holds import HoldState

    if batch.state is HoldState.HELD:
        return
    raise UsageError(
        f"batch {batch.batch_id} of {batch.table} was {_decision(batch)}: only a held batch "
        f"can be {'released' if action is Action.RELEASE else 'discarded'}",
        hint="a discarded batch stays out of raw for good"
        if batch.state is HoldState.DISCARDED
        else f"it is in {batch.table} already",
    )


def _resolve(found: list[HeldBatch], wanted: str, table: str | None) -> HeldBatch:
    """The one batch `wanted` names: its id, or a prefix of it of SHORTEST_PREFIX or more.

    Raises:
        UsageError: too short, nothing matches (with a did-you-mean), or several do.
    """
    import difflib

    from headwater.errors import UsageError

    key = wanted.strip().lower()
    exact = [b for b in found if b.batch_id.lower() == key]
    matches = exact or [
        b for b in found if len(key) >= SHORTEST_PREFIX and b.batch_id.lower().startswith(key)
    ]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        listed = ", ".join(f"{b.batch_id} ({b.table})" for b in matches[:5])
        raise UsageError(
            f"{wanted} is ambiguous: it matches {listed}",
            hint="give more of the id" + ("" if table else ", or --table"),
        )
    if len(key) < SHORTEST_PREFIX:
        raise UsageError(
            f"{wanted} is too short: give the batch id, or at least its first {SHORTEST_PREFIX} "
            "characters",
            hint="`headwater batches` lists the held batches and their ids",
        )
    held = [b for b in found if b.decided_at is None]
    of = f" in {table}" if table else ""
    close = difflib.get_close_matches(key, [b.batch_id[: len(key)] for b in held], n=1)
    if close:
        [guess] = [b for b in held if b.batch_id.startswith(close[0])][:1]
        hint = f"did you mean {guess.batch_id} ({guess.table})?"
    elif held:
        hint = "held now: " + ", ".join(f"{b.batch_id} ({b.table})" for b in held[:5])
    else:
        hint = f"no batch{of} is held now"
    raise UsageError(f"no held batch {wanted}{of}", hint=hint)


def _table(loaded: Project, stores: Stores | LakeStores, table: str | None) -> str | None:
    """The raw table `--table` names (`raw.x`, or `x`), None for every table.

    Raises:
        UsageError: no contract or held batch has that table (with a did-you-mean).
    """
    import difflib

    from headwater.errors import UsageError

    if table is None:
        return None
    known = {*loaded.raw_tables, *(b.table for b in stores.catalog.holds(decided=True))}
    for name in (table, f"raw.{table}"):
        if name in known:
            return name
    close = difflib.get_close_matches(table, sorted(known), n=1)
    hint = f"did you mean {close[0]}?" if close else "raw tables: " + ", ".join(sorted(known))
    raise UsageError(f"--table {table}: no such raw table", hint=hint)


def _refresh(loaded: Project, stores: Stores | LakeStores, table: str) -> str | None:
    """Refresh `table`'s raw view now; None when done, else why it waits for the next run."""
    from headwater.errors import HeadwaterError
    from headwater.orchestrate.raw import refresh_raw_view
    from headwater.orchestrate.stores import Stores

    contract = loaded.raw_tables.get(table)
    if contract is None:
        return f"no contract in the project lands {table} any more"
    if not isinstance(stores, Stores):
        return "the warehouse is not open"
    try:
        refresh_raw_view(contract, stores)
    except HeadwaterError as err:  # the decision stands: the next run refreshes the view
        return err.render()
    return None


def _load(project: Path) -> Project:
    from headwater.project import load_project

    return load_project(project)


def _open(loaded: Project, *, warehouse: bool) -> tuple[Stores | LakeStores, str | None]:
    """The catalog and the lake, and the warehouse when `warehouse` and it can be opened; with
    why it could not (another process writing it, say)."""
    from headwater.cli.main import _state
    from headwater.errors import StoreError
    from headwater.orchestrate.stores import LakeStores, Stores

    why = None
    if warehouse:
        try:
            stores = Stores.open(loaded)
        except StoreError as err:
            if err.where is None or err.where.field != "warehouse":
                raise
            why = err.render()
        else:
            _state["scrub"] = stores.secrets.scrub
            return stores, None
    lake = LakeStores.open(loaded)
    _state["scrub"] = lake.secrets.scrub
    return lake, why


def _rows(stores: Stores | LakeStores, tables: set[str]) -> Rows:
    """The rows each batch of `tables` landed, from the lake's snapshot summaries."""
    out: Rows = {}
    for table in tables:
        for snapshot in stores.lake.snapshots(table):
            if snapshot.batch_id:
                out[table, snapshot.batch_id] = snapshot.properties.get("rows")
    return out


def _user() -> str:
    import getpass
    import os

    if os.environ.get("HEADWATER_USER"):
        return os.environ["HEADWATER_USER"]
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        return "unknown"


def _record(batch: HeldBatch, failed: list[FailedRule], rows: Rows) -> dict[str, Any]:
    """What `--format json` shows of a batch (and the table is drawn from)."""
    return {
        "table": batch.table,
        "batch_id": batch.batch_id,
        "state": batch.state.value,
        "held_at": _iso(batch.held_at),
        "rows": rows.get((batch.table, batch.batch_id)),
        "reason": batch.reason,
        "failed_rules": [
            {"rule": f.rule, "type": f.type or None, "metric": f.metric, "threshold": f.threshold}
            for f in failed
        ],
        "decided_at": _iso(batch.decided_at),
        "decided_by": batch.decided_by,
        "decision_note": batch.decision_note,
    }


def _iso(when: datetime | None) -> str | None:
    if when is None:
        return None
    # SQLite hands back what it stored without its zone: every time the catalog keeps is UTC
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()


def _listing(records: list[dict[str, Any]], *, decided: bool) -> Table:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    title = "Held batches, released and discarded" if decided else "Held batches"
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    columns = ["table", "batch", "held since (UTC)", "rows", "failed rules"]
    for column in [*columns, *(["state", "decided (UTC)", "by", "why"] if decided else [])]:
        table.add_column(column, overflow="fold", justify="right" if column == "rows" else "left")
    for r in records:
        cells = [
            r["table"],
            r["batch_id"],
            _when(r["held_at"]),
            "" if r["rows"] is None else f"{r['rows']:,}",
            escape("\n".join(_failure(f) for f in r["failed_rules"]) or r["reason"]),
        ]
        if decided:
            by = r["decided_by"] or ("headwater" if r["state"] == "released" else "")
            cells += [r["state"], _when(r["decided_at"]), by, escape(r["decision_note"] or "")]
        table.add_row(*cells)
    if not decided:
        table.caption = "headwater batches release|discard ID --reason TEXT decides one"
        table.caption_justify = "left"
    return table


def _failure(failed: dict[str, Any]) -> str:
    """`rule: metric (threshold T)`: what the rule measured on the batch against its bar."""
    metric = failed["metric"]
    shown = "n/a" if metric is None else f"{metric:,.6g}"
    bar = "" if failed["threshold"] is None else f" (threshold {failed['threshold']})"
    return f"{failed['rule']}: {shown}{bar}"


def _when(iso: str | None) -> str:
    return "" if iso is None else datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S")


def _decision(batch: HeldBatch) -> str:
    """`released by ana at 2026-11-01 12:00:00 UTC (why)`: a decided batch, in words."""
    who = f" by {batch.decided_by}" if batch.decided_by else ""
    why = f" ({batch.decision_note})" if batch.decision_note else ""
    return f"{batch.state.value}{who} at {_when(_iso(batch.decided_at))} UTC{why}"


def _told(record: dict[str, Any], action: Action, *, stale: bool) -> str:
    """What a release or discard says it did."""
    rows = "" if record["rows"] is None else f" ({record['rows']:,} rows)"
    table = record["table"]
    head = (
        f"{record['state'].capitalize()} batch {record['batch_id']} of {table}{rows}, by "
        f"{record['decided_by']}: {record['decision_note']}"
    )
    if action is Action.DISCARD:
        return f"{head}\nIt stays out of {table} for good (kept in the lake; --all lists it)."
    shown = f"{table} shows it from the next run" if stale else f"{table} shows it now"
    return f"{head}\n{shown}; the models reading it take it in on their next build."
