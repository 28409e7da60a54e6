"""`headwater lineage TABLE.COLUMN`: where a column comes from, or where it goes, as a tree."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.tree import Tree

    from headwater.orchestrate.lineage import ColumnNode


def lineage(
    target: Annotated[
        str, typer.Argument(help="A column as TABLE.COLUMN, e.g. marts.events_daily.event_count")
    ],
    upstream: Annotated[
        bool,
        typer.Option(
            "--upstream/--downstream",
            help="Follow the column up to raw columns, or down to everything built from it.",
        ),
    ] = True,
    project: Annotated[
        Path,
        typer.Option("--project", "-p", help="The project folder.", show_default="current folder"),
    ] = Path("."),
) -> None:
    """Show a column's lineage: what it derives from, down to raw columns (or what derives
    from it, out to the marts). `TABLE.*` stands for a table's rows."""
    # main registers this command: what it needs is imported when it runs (`--help` stays fast)
    from rich.markup import escape

    from headwater.cli.main import _console, _errors, _stderr
    from headwater.orchestrate.lineage import lineage_of
    from headwater.project import load_project

    with _errors():
        tree, found = lineage_of(load_project(project), target, downstream=not upstream)
    for issue in found.issues:
        _stderr().print(f"[yellow]warning:[/] {escape(issue.render())}", soft_wrap=True)
    _console().print(render_tree(tree))


def render_tree(root: ColumnNode) -> Tree:
    """The chain as a rich Tree; a column whose chain is shown above is marked, not repeated."""
    from rich.tree import Tree

    tree = Tree(f"[bold]{_label(root)}[/]")
    stack = [(tree, child) for child in reversed(root.children)]
    while stack:
        parent, node = stack.pop()
        branch = parent.add(_label(node))
        stack.extend((branch, child) for child in reversed(node.children))
    return tree


def _label(node: ColumnNode) -> str:
    from rich.markup import escape

    if node.rows:
        name = f"{escape(node.table)} [dim](rows)[/]"
    else:
        name = escape(f"{node.table}.{node.column}")
    if node.raw:
        name = f"[cyan]{name}[/]"
    return f"{name} [dim](see above)[/]" if node.repeated else name
