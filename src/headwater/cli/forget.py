"""`headwater forget`: the right to erasure. A subject's rows out of the lake, the warehouse,
the data products and the catalog's text now; out of every old snapshot and free block once
the grace period is over (`--expire`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from headwater.orchestrate.expiry import Expiry
    from headwater.orchestrate.forget import Forgotten

ProjectDir = Annotated[
    Path, typer.Option("--project", "-p", help="The project folder.", show_default="current folder")
]


def forget(
    subject: Annotated[
        list[str] | None,
        typer.Option(
            "--subject",
            help="KEY=VALUE: the key column and the value of whom to forget, e.g. "
            "customer_id=42 (repeat it to forget several at once).",
            show_default=False,
        ),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (kept with the erasure and audited).")
    ] = None,
    grace: Annotated[
        str,
        typer.Option(
            "--grace",
            help="How long the old snapshots stay readable before they expire (e.g. 7d; 0: "
            "expire them and compact the stores now).",
        ),
    ] = "7d",
    expire: Annotated[
        bool,
        typer.Option(
            "--expire",
            help="Expire the snapshots of every erasure whose grace period is over, and "
            "compact the stores.",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be removed; change nothing.")
    ] = False,
    project: ProjectDir = Path("."),
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Forget a subject (GDPR's right to erasure): every raw row and quarantined record whose
    KEY is VALUE, in every contract that has the column KEY, leaves the lake; the models that
    read them are rebuilt; their rows leave every other warehouse table and data product;
    the catalog's text no longer quotes them. The erasure is recorded (the key and a SHA-256
    of the value, never the value) and audited.

    The old Iceberg snapshots still hold the rows until the grace period is over: then
    `headwater forget --expire` expires them, deletes their files and rewrites the warehouse
    and catalog files, so no byte of the subject is left under .headwater.

    Exits 2 when a subject matches nothing (naming what was searched), 1 when the rebuild
    of a model failed (the subject's rows were deleted from it all the same).
    """
    # main registers this command: what it needs is imported when it runs (`--help` stays fast)
    from datetime import UTC, datetime

    from headwater.cli.main import _check_format, _errors, _opened, _print_json, _stderr
    from headwater.contracts.thresholds import parse_duration
    from headwater.orchestrate.expiry import expire as expire_due
    from headwater.orchestrate.forget import forget as forget_subjects
    from headwater.orchestrate.subjects import Subject

    _check_format(fmt)
    if not subject and not expire:
        raise typer.BadParameter("name whom to forget: --subject KEY=VALUE", param_hint="--subject")
    try:
        grace_s = 0.0 if grace.strip() == "0" else parse_duration(grace)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--grace") from None
    with _errors():
        subjects = [Subject.parse(s) for s in subject or []]
    now = datetime.now(UTC)
    done: Forgotten | None = None
    expired: Expiry | None = None
    with _errors(), _opened(project) as (loaded, stores), _spinner(_stderr()) as progress:
        if subjects:
            done = forget_subjects(
                loaded,
                stores,
                subjects,
                now=now,
                reason=reason,
                grace_s=grace_s,
                dry_run=dry_run,
                progress=progress,
            )
            expired = done.expired
        if expire and not dry_run and expired is None:  # (a grace of 0 expired already)
            expired = expire_due(loaded, stores, now=now, progress=progress)
    if fmt == "json":
        _print_json({"forgotten": _as_dict(done), "expired": _as_dict(expired)})
    else:
        _show(done, expired)
    if done is not None and not done.ok:
        raise typer.Exit(1)


@contextmanager
def _spinner(console: Console) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr naming the stage at work (drawn on a terminal only)."""
    with console.status("forgetting…") as status:
        yield lambda text: status.update(f"{text}…")


def _as_dict(found: Any) -> dict[str, Any] | None:
    from dataclasses import asdict

    return None if found is None else asdict(found)


def _show(done: Forgotten | None, expired: Expiry | None) -> None:
    from headwater.cli.main import _console

    console = _console()
    if done is not None:
        verb = "would remove" if done.dry_run else "removed"
        who = ", ".join(done.subjects)
        where = f" (erasure {done.erasure_id})" if done.erasure_id is not None else ""
        console.print(
            f"forget {who}: {verb} {done.rows:,} row(s) from {len(done.removed)} table(s){where}",
            highlight=False,
            soft_wrap=True,
        )
        width = max((len(t) for t in done.removed), default=0)
        for table, rows in sorted(done.removed.items()):
            console.print(f"  {table:<{width}}  {rows:>8,}", highlight=False)
        if done.rebuilt:
            verb = "would rebuild" if done.dry_run else "rebuilt"
            console.print(f"{verb} {len(done.rebuilt)} model(s): {', '.join(done.rebuilt)}")
        if done.scrubbed:
            parts = ", ".join(f"{t} ({n})" for t, n in sorted(done.scrubbed.items()))
            console.print(f"scrubbed: {parts}", highlight=False, soft_wrap=True)
        for note in done.notes:
            console.print(f"note: {note}", highlight=False, soft_wrap=True)
        if done.expire_after is not None and done.expired is None:
            console.print(
                f"the old snapshots stay readable until {done.expire_after:%Y-%m-%d %H:%M} UTC; "
                "then `headwater forget --expire` removes them and compacts the stores",
                highlight=False,
                soft_wrap=True,
            )
    if expired is not None:
        _show_expiry(console, expired)


def _show_expiry(console: Console, expired: Expiry) -> None:
    if not expired.erasures:
        due = expired.next_due
        later = f" (the next is due {due:%Y-%m-%d %H:%M} UTC)" if due is not None else ""
        console.print(f"no erasure is due to expire{later}", highlight=False)
        return
    snapshots = sum(expired.snapshots.values())
    size = ""
    if expired.warehouse is not None:
        before, after = expired.warehouse
        size = f"; the warehouse file rewritten ({before:,} → {after:,} bytes)"
    console.print(
        f"expired erasure(s) {', '.join(map(str, expired.erasures))}: {snapshots} snapshot(s) of "
        f"{len(expired.snapshots)} lake table(s) removed with their files{size}; the catalog "
        "compacted",
        highlight=False,
        soft_wrap=True,
    )
    for note in expired.notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True)
