"""`headwater apply`, `headwater releases` and `headwater rollback`: changing an environment
as one release, the release log, and going back to an earlier release."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

ProjectDir = Annotated[
    Path, typer.Option("--project", "-p", help="The project folder.", show_default="current folder")
]
Format = Annotated[str, typer.Option("--format", help="table | json")]
Env = Annotated[str, typer.Option("--env", help="The environment (prod, dev, a branch's).")]


def apply(
    project: ProjectDir = Path("."),
    env: Env = "prod",
    approve: Annotated[
        bool,
        typer.Option(
            "--approve", help="Flip the versions staged as green (critical models) after review."
        ),
    ] = False,
    fmt: Format = "table",
) -> None:
    """Build what `headwater plan` says changed, audit every new version with all its rules
    and, only if every blocking rule passes, publish them all at once as one release; if
    any fails, nothing is published. A contract change the plan refuses stops it first.
    A change to a `critical: true` model is staged as green and flips only once approved
    (--approve, or the releases.auto_approve policy); `headwater diff` compares it first."""
    from headwater.cli.main import _check_env, _run

    _check_env(env)
    command = "apply --approve" if approve else "apply"
    _run(project, ("build",), command, fmt=fmt, env=env, apply=True, approve=approve)


def releases(
    project: ProjectDir = Path("."),
    env: Annotated[
        str | None, typer.Option("--env", help="Only this environment's releases.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many, newest first.")] = 20,
    fmt: Format = "table",
) -> None:
    """List releases, newest first: when, who, from which code, what changed, and whether a
    rollback can still restore each."""
    # main registers this command: what it needs is imported when it runs (`--help` stays fast)
    from datetime import UTC, datetime

    from rich.markup import escape
    from rich.table import Table

    from headwater.change.releases import retained
    from headwater.cli.main import _check_format, _console, _errors, _print_json, _state
    from headwater.orchestrate.stores import LakeStores
    from headwater.project import load_project

    _check_format(fmt)
    with _errors():
        loaded = load_project(project)
        stores = LakeStores.open(loaded)  # no warehouse: a run may be writing it
        _state["scrub"] = stores.secrets.scrub
        try:
            log = stores.catalog.release_log(env, limit=limit, pending=True)
            kept = retained(
                stores.catalog.release_heads(), loaded.settings.releases, now=datetime.now(UTC)
            )
            current = {
                e: next((r.id for r in stores.catalog.release_log(e, limit=1)), None)
                for e in {r.env for r in log}
            }
            # a release a crash left pending is current if the warehouse's views show it
            for release in (r for r in log if r.state == "pending"):
                if _shown_release(loaded, release.env) == release.id:
                    current[release.env] = release.id
        finally:
            stores.close()
    if fmt == "json":
        _print_json(
            [
                {
                    "id": r.id,
                    "env": r.env,
                    "kind": r.kind,
                    "created_at": r.created_at.isoformat(),
                    "created_by": r.created_by,
                    "code_version": r.code_version,
                    "note": r.note,
                    "run_id": r.run_id,
                    "changed": r.changed,
                    "checks": r.checks,
                    "current": current.get(r.env) == r.id,
                    "state": r.state,
                    "retained": r.id in kept,
                    "models": {
                        p.name: {"physical": p.physical, "rows": p.rows, "raw": p.raw}
                        for p in r.pointers.values()
                    },
                }
                for r in log
            ]
        )
        return
    if not log:
        _console().print("No releases yet: `headwater run` or `headwater apply` writes one.")
        return
    table = Table(
        title="Releases",
        title_justify="left",
        caption="* current · ! pending (a run was killed mid-release) · x expired (past "
        "`releases: {keep, retention}`: rollback cannot restore it)",
        caption_justify="left",
    )
    for column in ("id", "env", "when (UTC)", "who", "kind", "code", "what changed", "rules"):
        table.add_column(column, overflow="fold", no_wrap=column in ("id", "when (UTC)", "env"))
    for r in log:
        marks = "*" if current.get(r.env) == r.id else ""
        marks += "!" if r.state == "pending" else ""
        marks += "" if r.id in kept or r.state == "pending" else "x"
        changed = [
            f"{label}{_names(r.changed[key])}"
            for key, label in (
                ("added", "+"),
                ("changed", "~"),
                ("refreshed", "data "),
                ("removed", "-"),
            )
            if r.changed.get(key)
        ]
        failed = r.checks.get("failed", [])
        errors = sum(1 for f in failed if f.get("blocking"))
        rules = f"{r.checks.get('passed', 0)} ok"
        rules += f", {len(failed) - errors} warned" if len(failed) > errors else ""
        rules += f", {errors} failed" if errors else ""
        table.add_row(
            f"{r.id}{marks and ' ' + marks}",
            r.env,
            r.created_at.strftime("%m-%d %H:%M"),
            escape(r.created_by),
            escape(r.note or r.kind),
            _short(r.code_version),
            escape("; ".join(changed) or "nothing"),
            rules if r.checks else "-",
        )
    _console().print(table)


def rollback(
    release: Annotated[
        int | None,
        typer.Argument(help="The release to go back to (default: the one before the newest)."),
    ] = None,
    env: Env = "prod",
    project: ProjectDir = Path("."),
    fmt: Format = "table",
) -> None:
    """Point an environment at exactly what an earlier release showed — its versions and
    their data of then — at once: every view swaps in one transaction, no model runs."""
    from datetime import UTC, datetime

    from headwater.cli.main import (
        _check_env,
        _check_format,
        _console,
        _errors,
        _opened,
        _print_json,
    )
    from headwater.orchestrate import uptodate
    from headwater.orchestrate.environments import rollback as restore
    from headwater.orchestrate.lease import held

    _check_env(env)
    _check_format(fmt)
    uptodate.forget(project.resolve())  # what the last build decided no longer holds
    with _errors(), _opened(project) as (loaded, stores), held(stores.catalog, "rollback"):
        command = "rollback" + (f" {release}" if release is not None else "")
        command += "" if env == "prod" else f" --env {env}"
        with stores.catalog.recorded(command, env=env) as run_id:
            done = restore(loaded, stores, release, env, run_id=run_id, now=datetime.now(UTC))
    if fmt == "json":
        _print_json(
            {
                "env": env,
                "restored": done.target.id,
                "release": done.release,
                "changed": done.changed,
                "run_id": run_id,
            }
        )
        return
    when = done.target.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    shown = ", ".join(done.changed) if done.changed else "nothing (it showed the same already)"
    _console().print(
        f"{env} now shows release {done.target.id} (of {when}) as release {done.release}; "
        f"changed: {shown}. Its data is as it was then: `headwater build` brings it up to "
        "date with the raw zone, from the project's code as it is now.",
        highlight=False,
    )


def _shown_release(project: Any, env: str) -> int | None:
    """The release the warehouse's views of `env` show, read without waiting (None when the
    warehouse is busy: a run is writing it, and will settle the release itself)."""
    from headwater.change.environments import shown_release
    from headwater.errors import HeadwaterError
    from headwater.orchestrate.stores import warehouse_engine

    try:
        engine = warehouse_engine(project, read_only=True, lock_wait=0)
    except HeadwaterError:
        return None
    try:
        return shown_release(engine, env)
    finally:
        engine.close()


def _names(models: list[str]) -> str:
    """A few model names, or how many when there are more."""
    return ", ".join(models) if len(models) <= 3 else f"{len(models)} models"


def diff(project: ProjectDir = Path("."), env: Env = "prod", fmt: Format = "table") -> None:
    """Compare the versions staged as green with what the environment shows (blue) — or,
    for an environment other than prod with nothing staged, with prod: row counts, schema,
    per-column metrics, and a sampled row diff by each model's grain."""
    from rich.markup import escape
    from rich.table import Table

    from headwater.cli.main import (
        _check_env,
        _check_format,
        _console,
        _errors,
        _opened,
        _print_json,
    )
    from headwater.orchestrate.bluegreen import diffs, green_of

    _check_env(env)
    _check_format(fmt)
    with _errors(), _opened(project) as (loaded, stores):
        blue, green = env, green_of(env)
        if not stores.catalog.pointers(green):
            blue, green = "prod", env
        found = [] if blue == green else diffs(loaded, stores, blue, green)
    if fmt == "json":
        _print_json(
            {
                "blue": blue,
                "green": green,
                "models": [
                    {
                        **{k: v for k, v in d.__dict__.items() if k != "columns"},
                        "row_change": d.row_change,
                        "columns": [
                            {
                                "name": c.name,
                                "blue_type": c.blue_type,
                                "green_type": c.green_type,
                                "blue": c.blue.__dict__ if c.blue else None,
                                "green": c.green.__dict__ if c.green else None,
                            }
                            for c in d.columns
                        ],
                    }
                    for d in found
                ],
            }
        )
        return
    console = _console()
    if not found:
        console.print(f"Nothing to compare: {green} shows the same versions as {blue}.")
        return
    staged = green.endswith("_green")
    shown = f"{green} (green) against {blue} (blue)" if staged else f"{green} against {blue}"
    console.print(f"{shown}:", highlight=False)
    for d in found:
        rows = (
            f"{d.green_rows:,} rows"
            if d.blue_rows is None
            else (
                f"{d.blue_rows:,} → {d.green_rows:,} rows"
                + (f" ({d.row_change:+.1%})" if d.row_change is not None else "")
            )
        )
        parts = [rows]
        if d.only_blue is not None:
            parts.append(
                f"by {', '.join(d.key)}: {d.only_blue:,} only in blue, {d.only_green:,} only in "
                f"green, {d.changed:,} changed"
            )
        console.print(f"[bold]{escape(d.model)}[/] — {escape('; '.join(parts))}")
        table = Table(show_edge=False, pad_edge=False)
        for column in ("column", "type", "nulls", "distinct≈", "min", "max", "mean"):
            table.add_column(column, overflow="fold")
        for c in d.columns:
            if c.blue == c.green and c.blue_type == c.green_type:
                continue  # the same in both: not shown

            if c.blue_type is None:
                kind = f"{c.green_type} (added)"
            elif c.green_type is None:
                kind = f"{c.blue_type} (removed)"
            elif c.blue_type != c.green_type:
                kind = f"{c.blue_type} → {c.green_type}"
            else:
                kind = str(c.green_type)
            table.add_row(
                escape(c.name),
                escape(str(kind)),
                _pair(c, "nulls"),
                _pair(c, "distinct"),
                escape(_pair(c, "min")),
                escape(_pair(c, "max")),
                _pair(c, "mean"),
            )
        if table.row_count:
            console.print(table)
        for sample in d.samples:
            console.print(f"  {escape(_sample(sample))}", highlight=False)


def _short(code: str | None) -> str:
    """A commit as a table shows it: 8 characters, `+` when it was edited since."""
    if not code:
        return "-"
    commit, dirty, _ = code.partition("+")
    return commit[:8] + ("+" if dirty else "")


def _sample(sample: dict[str, Any]) -> str:
    """One sampled row of a diff: its key, and what differs."""
    key = ", ".join(f"{k}={v}" for k, v in sample["key"].items())
    if sample["side"] != "changed":
        return f"only in {sample['side']}: {key}"
    blue, green = sample["blue"] or {}, sample["green"] or {}
    differs = [f"{c} {blue.get(c)} → {green.get(c)}" for c in green if blue.get(c) != green.get(c)]
    return f"changed {key}: {'; '.join(differs)}"


def _pair(column: Any, metric: str) -> str:
    """A metric of a column in blue and green: one value when equal, else `old → new`."""
    old = getattr(column.blue, metric) if column.blue else None
    new = getattr(column.green, metric) if column.green else None
    if isinstance(old, float):
        old = round(old, 4)
    if isinstance(new, float):
        new = round(new, 4)
    shown = ["-" if v is None else str(v) for v in (old, new)]
    return shown[1] if old == new else f"{shown[0]} → {shown[1]}"
