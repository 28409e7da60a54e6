"""Read a dbt project's layout: `dbt_project.yml` (paths, vars, the `models:`/`seeds:` config
trees) and every YAML properties file, keeping the line of each key for the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headwater.contracts.load import Loc, read_text, read_yaml
from headwater.errors import Location, SpecError

PROJECT_FILE = "dbt_project.yml"
# configs that hold a mapping themselves; every other mapping under `models:` is a folder
_MAPPING_CONFIGS = {"meta", "docs", "persist_docs", "grants", "contract", "labels", "column_types"}
# configs written without `+` in older projects (a folder cannot be named like these)
_KNOWN_CONFIGS = {
    "materialized",
    "schema",
    "database",
    "alias",
    "tags",
    "enabled",
    "unique_key",
    "incremental_strategy",
    "on_schema_change",
    "pre-hook",
    "post-hook",
    "pre_hook",
    "post_hook",
    "full_refresh",
    "quote_columns",
    "delimiter",
    "severity",
    "where",
    *_MAPPING_CONFIGS,
}


@dataclass(frozen=True)
class YamlFile:
    """A parsed YAML file of the dbt project: its data and the line of every key path."""

    path: str  # relative to the dbt project
    data: Any
    lines: dict[Loc, int]

    def line(self, loc: Loc) -> int | None:
        """The line of `loc`, or of its nearest parent the file has."""
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return None


@dataclass(frozen=True)
class DbtProject:
    """What `dbt_project.yml` says, and where the project's files are."""

    root: Path
    name: str
    settings: YamlFile
    model_paths: tuple[str, ...]
    seed_paths: tuple[str, ...]
    macro_paths: tuple[str, ...]
    test_paths: tuple[str, ...]
    snapshot_paths: tuple[str, ...]
    vars: dict[str, Any] = field(default_factory=dict)

    def model_config(self, relative: Path) -> dict[str, Any]:
        """The config `models:` gives a model at `relative` (under its model path)."""
        return _config_at(self.settings.data.get("models"), self.name, relative.parent.parts)

    def seed_config(self, relative: Path) -> dict[str, Any]:
        """The config `seeds:` gives a seed at `relative`, its own entry included."""
        parts = (*relative.parent.parts, relative.stem)
        return _config_at(self.settings.data.get("seeds"), self.name, parts)

    def files(self, paths: tuple[str, ...], *suffixes: str) -> list[Path]:
        """Every file under `paths` with one of `suffixes`, in a stable order."""
        found: set[Path] = set()
        for folder in paths:
            base = self.root / folder
            if base.is_dir():
                found.update(
                    p for p in base.rglob("*") if p.is_file() and p.suffix in suffixes and _seen(p)
                )
        return sorted(found)

    def shown(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


def read_project(root: Path) -> DbtProject:
    """Read `root/dbt_project.yml`.

    Raises:
        SpecError: there is no dbt project at `root`, or its file is not valid.
    """
    path = root / PROJECT_FILE
    if not path.is_file():
        raise SpecError(
            f"no {PROJECT_FILE} in {root}",
            hint="pass the folder of a dbt project (the one holding dbt_project.yml)",
        )
    settings = read_yaml_file(root, path)
    data = settings.data
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise SpecError(
            "a dbt project needs a `name:`",
            where=Location(PROJECT_FILE, settings.line(("name",))),
        )
    name = data["name"]

    def paths(key: str, default: str) -> tuple[str, ...]:
        value = data.get(key, [default])
        return tuple(value) if isinstance(value, list) else (str(value),)

    return DbtProject(
        root=root,
        name=name,
        settings=settings,
        model_paths=paths("model-paths", "models"),
        seed_paths=paths("seed-paths", "seeds"),
        macro_paths=paths("macro-paths", "macros"),
        test_paths=paths("test-paths", "tests"),
        snapshot_paths=paths("snapshot-paths", "snapshots"),
        vars=_vars(data.get("vars"), name),
    )


def read_yaml_file(root: Path, path: Path) -> YamlFile:
    """A YAML file of the dbt project; a syntax error names its file and line."""
    shown = path.relative_to(root).as_posix()
    data, lines = read_yaml(read_text(path, shown=shown), file=shown)
    return YamlFile(shown, data if data is not None else {}, lines)


def _vars(value: Any, project: str) -> dict[str, Any]:
    """Global vars, with those scoped to this project (`vars: {<project>: {...}}`) over them."""
    if not isinstance(value, dict):
        return {}
    out = {k: v for k, v in value.items() if not (k == project and isinstance(v, dict))}
    if isinstance(value.get(project), dict):
        out.update(value[project])
    return out


def _config_at(tree: Any, project: str, parts: tuple[str, ...]) -> dict[str, Any]:
    """Walk `models: {<project>: {<folder>: ...}}` down `parts`, the deeper config winning."""
    out: dict[str, Any] = {}
    node = tree.get(project) if isinstance(tree, dict) else None
    if isinstance(tree, dict):
        out.update(_own(tree))
    for part in (None, *parts):
        if part is not None:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            break
        for key, value in _own(node).items():
            out[key] = [*out.get(key, []), *_as_list(value)] if key == "tags" else value
    return out


def _own(node: dict[str, Any]) -> dict[str, Any]:
    """The configs set at one level of the tree (`+materialized`, or `materialized`)."""
    own = {}
    for key, value in node.items():
        bare = str(key).removeprefix("+")
        if str(key).startswith("+") or (bare in _KNOWN_CONFIGS and not _is_folder(bare, value)):
            own[bare] = value
    return own


def _is_folder(key: str, value: Any) -> bool:
    return isinstance(value, dict) and key not in _MAPPING_CONFIGS


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _seen(path: Path) -> bool:
    return not any(part.startswith(".") for part in path.parts[-3:])
