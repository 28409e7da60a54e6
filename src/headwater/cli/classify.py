"""`headwater classify [TABLE]`: propose PII tags from a sample of each untagged column, with
the evidence for each; `--accept` writes them into the contract or sidecar."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.table import Table

    from headwater.orchestrate.classify import Proposed

ProjectDir = Annotated[
    Path, typer.Option("--project", "-p", help="The project folder.", show_default="current folder")
]


def classify(
    table: Annotated[
        str | None,
        typer.Argument(help="A raw table or model (default: every one that is built)."),
    ] = None,
    accept: Annotated[
        bool,
        typer.Option(
            "--accept",
            help="Write the proposals into their contract or sidecar (`pii: <tag>`).",
        ),
    ] = False,
    min_confidence: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Show proposals at least this sure.")
    ] = 0.6,
    sample: Annotated[int, typer.Option(min=10, help="Rows sampled per table.")] = 1000,
    check: Annotated[
        bool,
        typer.Option("--check", help="Exit 1 when a column looks like PII and has no tag (CI)."),
    ] = False,
    project: ProjectDir = Path("."),
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Look at the columns no PII tag covers yet (declared on a contract or sidecar, or
    followed through lineage) and propose tags from their names and a sample of their values:
    email, phone, IBAN, payment card, IP address, SSN, date of birth, postal address, person
    name. Each proposal shows its evidence (detector, match rate, name hint) and a confidence.
    Nothing is tagged unless --accept says so."""
    # main registers this command: what it needs is imported when it runs (`--help` stays fast)
    from headwater.cli.main import _check_format, _console, _errors, _print_json
    from headwater.cli.sql import open_warehouse
    from headwater.orchestrate.classify import propose, tables_to_classify
    from headwater.project import load_project

    _check_format(fmt)
    with _errors():
        loaded = load_project(project)
        engine = open_warehouse(loaded, write=False, allow_files=False)
        try:
            chosen = tables_to_classify(loaded, table)
            found = propose(loaded, engine, chosen, rows=sample)
        finally:
            engine.close()
        shown = [p for p in found if p.proposal.confidence >= min_confidence]
        written = _accept(loaded, shown) if accept and shown else []
    if fmt == "json":
        _print_json({"proposals": [_json(p) for p in shown], "accepted": written})
    elif shown:
        _console().print(_table(shown))
        if written:
            _console().print(f"tagged {len(shown)} column(s) in {', '.join(sorted(set(written)))}")
        else:
            _console().print("`headwater classify --accept` writes them as `pii:` tags.")
    else:
        _console().print(f"No untagged column looks like PII in {len(chosen)} table(s).")
    if check and shown and not accept:
        raise typer.Exit(1)


def _accept(project: Any, shown: list[Proposed]) -> list[str]:
    """Write each proposal into its file and audit it; the files written."""
    from datetime import UTC, datetime

    from headwater.govern.tagging import accept
    from headwater.orchestrate.running import audited
    from headwater.orchestrate.stores import LakeStores

    written = []
    entries = []
    for found in shown:
        path = accept(
            project, found.table, found.proposal.column, found.proposal.tag, type=found.type
        )
        written.append(str(path.relative_to(project.root)))
        subject = f"{found.table}.{found.proposal.column}"
        detail = {**_json(found), "file": written[-1]}
        entries.append(audited("classify", subject, at=datetime.now(UTC), status=0, **detail))
    stores = LakeStores.open(project)
    try:
        stores.catalog.audit(entries)
    finally:
        stores.close()
    return written


def _json(found: Proposed) -> dict[str, Any]:
    proposal = found.proposal
    return {
        "table": found.table,
        "column": proposal.column,
        "tag": proposal.tag,
        "confidence": round(proposal.confidence, 3),
        "evidence": [
            {
                "detector": e.detector,
                "match_rate": round(e.match_rate, 3),
                "sampled": e.sampled,
                "name_hint": e.name_hint,
                "note": e.note,
            }
            for e in proposal.evidence
        ],
    }


def _table(shown: list[Proposed]) -> Table:
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("column", "tag", "confidence", "evidence"):
        table.add_column(column, overflow="fold")
    for found in shown:
        proposal = found.proposal
        evidence = "; ".join(f"{e.detector}: {e.note}" for e in proposal.evidence)
        table.add_row(
            escape(f"{found.table}.{proposal.column}"),
            f"[magenta]{escape(proposal.tag)}[/]",
            f"{proposal.confidence:.2f}",
            escape(evidence),
        )
    return table
