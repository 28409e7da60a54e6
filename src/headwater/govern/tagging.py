"""Accepting a proposed PII tag: written where the column is declared — its contract's
`columns:` entry, or its model's sidecar — keeping the file's comments, order and style.

A proposal never tags anything on its own (`headwater classify --accept` is the decision);
the edit is a plain change to a project file, reviewed like any other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from headwater.errors import SpecError, UsageError
from headwater.project import Project


def accept(project: Project, table: str, column: str, tag: str, *, type: str) -> Path:
    """Write `pii: <tag>` for `table.column`; the file written.

    Raises:
        UsageError: the table is neither a contract's raw table nor a model.
    """
    contracts = {c.table: c for c in project.contracts.values()}
    if table in contracts:
        path = project.root / project.contract_file(contracts[table])
        _edit(path, lambda doc: _tag_contract(doc, column, tag, type))
        return path
    if table in project.models:
        model = project.models[table]
        path = project.root / (model.sidecar_path or Path(model.path).with_suffix(".yml"))
        _edit(path, lambda doc: _tag_sidecar(doc, column, tag))
        return path
    raise UsageError(f"{table!r} is not a raw table or model of the project")


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long line the user wrote on one
    yaml.indent(mapping=2, sequence=4, offset=2)  # `  - item`, as the scaffolded files are
    return yaml


def _edit(path: Path, change: Any) -> None:
    yaml = _yaml()
    document = yaml.load(path.read_text(encoding="utf-8")) if path.exists() else None
    if document is None:
        document = CommentedMap()
    if not isinstance(document, dict):
        raise SpecError(f"{path.name} is not a mapping, so no tag can be written into it")
    change(document)
    with path.open("w", encoding="utf-8") as file:
        yaml.dump(document, file)


def _tag_contract(document: Any, column: str, tag: str, type: str) -> None:
    columns = document.setdefault("columns", [])
    for entry in columns:
        if isinstance(entry, dict) and entry.get("name") == column:
            entry["pii"] = tag
            return
    entry = CommentedMap(name=column, type=type, pii=tag)
    entry.fa.set_flow_style()
    columns.append(entry)


def _tag_sidecar(document: Any, column: str, tag: str) -> None:
    columns = document.setdefault("columns", CommentedMap())
    found = columns.get(column)
    if isinstance(found, dict):
        found["pii"] = tag
    elif isinstance(found, str):
        columns[column] = CommentedMap(description=found, pii=tag)
    else:
        columns[column] = CommentedMap(pii=tag)
