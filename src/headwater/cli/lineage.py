"""`headwater lineage TABLE.COLUMN`: where a column comes from, or where it goes, as a tree."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.tree import Tree

    from headwater.orchestrate.lineage import ColumnNode
    from headwater.project import Project


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
    tags: Annotated[
        bool,
        typer.Option(
            "--tags",
            help="Explain the column's PII tag: each upstream tagged column, and whether it "
            "was passed on, made pseudonymous (a hash) or dropped (a count).",
        ),
    ] = False,
    project: Annotated[
        Path,
        typer.Option("--project", "-p", help="The project folder.", show_default="current folder"),
    ] = Path("."),
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Show a column's lineage: what it derives from, down to raw columns (or what derives
    from it, out to the marts). `TABLE.*` stands for a table's rows."""
    # main registers this command: what it needs is imported when it runs (`--help` stays fast)
    from rich.markup import escape

    from headwater.cli.main import _check_format, _console, _errors, _print_json, _stderr
    from headwater.orchestrate.lineage import lineage_of
    from headwater.project import load_project

    _check_format(fmt)
    if tags:
        with _errors():
            explained = explain_tags(load_project(project), target)
        if fmt == "json":
            _print_json(explained)
        else:
            _console().print(render_tags(explained))
        return
    with _errors():
        tree, found = lineage_of(load_project(project), target, downstream=not upstream)
    for issue in found.issues:
        _stderr().print(f"[yellow]warning:[/] {escape(issue.render())}", soft_wrap=True)
    _console().print(render_tree(tree))


def explain_tags(project: Project, target: str) -> dict[str, Any]:
    """`TABLE.COLUMN`'s PII tag, and how each tagged upstream column reached it (or not)."""
    from headwater.errors import UsageError
    from headwater.govern.pii import project_tags

    table, _, column = target.rpartition(".")
    known = {*project.models, *(c.table for c in project.contracts.values())}
    if table not in known or not column:
        raise UsageError(f"{target!r} is not TABLE.COLUMN of the project", hint="e.g. marts.x.y")
    found = project_tags(project, [table] if table in project.models else [])

    def node(table: str, column: str, depth: int) -> dict[str, Any]:
        tag = found.of(table, [column]).get(column)
        out: dict[str, Any] = {
            "column": f"{table}.{column}",
            "tag": tag.tag if tag else None,
            "how": tag.how if tag else None,
            "upstream": [],
        }
        for step in found.steps(table, column) if depth < 50 else ():
            up_table, _, up_column = step.upstream.rpartition(".")
            child = node(up_table, up_column, depth + 1)
            child["effect"] = step.effect.kind if step.effect else "kept"
            child["via"] = step.effect.via if step.effect else None
            out["upstream"].append(child)
        return out

    return node(table, column, 0)


def render_tags(explained: dict[str, Any]) -> Tree:
    from rich.markup import escape
    from rich.tree import Tree

    def label(item: dict[str, Any]) -> str:
        tag = f"[magenta]{escape(item['tag'])}[/]" if item["tag"] else "[green]no PII[/]"
        text = f"[bold]{escape(item['column'])}[/]: {tag}"
        effect = item.get("effect")
        if effect == "dropped":
            text += f" [dim]— dropped by {escape(item['via'])}[/]"
        elif effect == "pseudonymous":
            text += f" [dim]— made pseudonymous by {escape(item['via'])}[/]"
        elif item["how"] and item["how"].startswith(("declared", "lineage")):
            text += f" [dim]({escape(item['how'])})[/]"
        return text

    tree = Tree(label(explained))
    stack = [(tree, child) for child in reversed(explained["upstream"])]
    while stack:
        parent, item = stack.pop()
        branch = parent.add(label(item))
        stack.extend((branch, child) for child in reversed(item["upstream"]))
    return tree


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
