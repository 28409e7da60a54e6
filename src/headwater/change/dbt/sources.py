"""dbt sources → contracts (`contracts/<name>.yml`), dbt seeds → `seeds/` with their sidecars.

A source whose dbt-duckdb `external_location` names files gets a real files connector; any
other gets a stub at `data/<source>/<table>/*.csv`, flagged so the user fills it in. A source
is the whole table at each read, so its contract loads with `load: snapshot`, as a seed does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import headwater.engine.dialect as authored
from headwater.change.dbt.layout import DbtProject, YamlFile
from headwater.change.dbt.report import Report
from headwater.contracts.load import Loc
from headwater.contracts.specs import sql_type

_FORMATS = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".jsonl": "jsonl"}
_FORMATS |= {".ndjson": "jsonl", ".json": "jsonl"}
_COMPRESSED = {".gz", ".zst", ".bz2"}


@dataclass(frozen=True)
class Source:
    """One dbt source table and the contract it becomes."""

    source: str
    table: str
    contract: str  # the contract's (and raw table's) name
    entry: dict[str, Any]
    parent: dict[str, Any]
    file: YamlFile
    loc: Loc


@dataclass
class Seed:
    """One dbt seed file and the headwater seed it becomes."""

    name: str
    path: Path
    config: dict[str, Any]
    entry: dict[str, Any] = field(default_factory=dict)
    file: YamlFile | None = None
    loc: Loc = ()


def collect_sources(files: list[YamlFile], report: Report) -> dict[tuple[str, str], Source]:
    """Every source table of the properties files, named `raw.<table>` (or, when two sources
    share a table name, `raw.<source>_<table>`, flagged)."""
    found: list[tuple[str, str, dict[str, Any], dict[str, Any], YamlFile, Loc]] = []
    for file in files:
        for i, source in enumerate(_entries(file.data, "sources")):
            for j, table in enumerate(_entries(source, "tables")):
                loc: Loc = ("sources", i, "tables", j)
                found.append((str(source["name"]), str(table["name"]), table, source, file, loc))
    counts: dict[str, int] = {}
    for _, short, *_ in found:
        counts[identifier(short)] = counts.get(identifier(short), 0) + 1
    out: dict[tuple[str, str], Source] = {}
    for origin, short, entry, parent, file, loc in found:
        name = identifier(short)
        if counts[name] > 1:
            name = identifier(f"{origin}_{short}")
            report.flag(
                file.path,
                file.line(loc),
                f"source table `{origin}.{short}`",
                f"another source has a table named {short!r}: its contract is "
                f"contracts/{name}.yml (raw.{name})",
            )
        out[(origin, short)] = Source(origin, short, name, entry, parent, file, loc)
    return out


def contract(source: Source, project: DbtProject, report: Report) -> dict[str, Any]:
    """The contract of one source table, as written in YAML (rules are added by the caller)."""
    meta = {**_meta(source.parent), **_meta(source.entry)}
    out: dict[str, Any] = {
        "source": f"{source.source}.{source.table}",
        "schema_version": "1",
        "delivery": "batch",
        "privacy_level": "internal",
    }
    if meta.get("owner"):
        out["owner"] = str(meta["owner"])
    description = source.entry.get("description") or source.parent.get("description")
    if description:
        out["description"] = str(description).strip()
    out["connector"] = _connector(source, meta, project, report)
    out["load"] = "snapshot"
    columns = _typed_columns(source.entry)
    if columns:
        out["columns"] = columns
    return out


def _connector(
    source: Source, meta: dict[str, Any], project: DbtProject, report: Report
) -> dict[str, Any]:
    location = meta.get("external_location")
    config = {**(source.parent.get("config") or {}), **(source.entry.get("config") or {})}
    location = config.get("external_location", location)
    identifier = str(source.entry.get("identifier") or source.table)
    path = None
    if isinstance(location, str):
        path = _location(location.replace("{name}", identifier), project.root)
    if path is not None:
        return {"kind": "files", "path": path, "format": _format(path)}
    stub = f"data/{source.source}/{source.table}/*.csv"
    what = (
        f"`external_location: {location}` is not a file path headwater reads"
        if location
        else "dbt does not say where this table's data is"
    )
    report.flag(
        source.file.path,
        source.file.line(source.loc),
        f"source `{source.source}.{source.table}`",
        f"{what}; fill in the connector of contracts/{source.contract}.yml (a stub reads {stub})",
    )
    return {"kind": "files", "path": stub, "format": "csv"}


def _location(text: str, root: Path) -> str | None:
    """A file location headwater's files connector reads, absolute (a relative one is relative
    to the dbt project), or None for what is not a plain path (`read_csv(...)`, a table)."""
    if "(" in text or _format(text) is None:
        return None
    if "://" in text or text.startswith("/"):
        return text
    return (root / text).resolve().as_posix()


def _format(path: str) -> str | None:
    """The files connector's format of `path` by its extension (`.csv.gz` is csv)."""
    suffixes = [s.lower() for s in PurePosixPath(path).suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes.pop()
    return _FORMATS.get(suffixes[-1]) if suffixes else None


def _typed_columns(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The source's columns when dbt gives every one a type (else they are inferred)."""
    columns = [c for c in entry.get("columns") or [] if isinstance(c, dict) and c.get("name")]
    if not columns or not all(_type(c.get("data_type")) for c in columns):
        return []
    out = []
    for column in columns:
        declared: dict[str, Any] = {"name": str(column["name"]), "type": _type(column["data_type"])}
        if column.get("description"):
            declared["description"] = str(column["description"]).strip()
        out.append(declared)
    return out


def _type(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    try:
        return authored.shown(sql_type(text)).lower()
    except ValueError:
        return None


def collect_seeds(project: DbtProject, files: list[YamlFile], report: Report) -> dict[str, Seed]:
    """Every seed file (CSV) of the project with its config and properties entry."""
    out: dict[str, Seed] = {}
    for path in project.files(project.seed_paths, ".csv"):
        base = next(
            project.root / p for p in project.seed_paths if (project.root / p) in path.parents
        )
        name = identifier(path.stem)
        if name in out:
            report.flag(
                project.shown(path),
                None,
                f"seed `{path.stem}`",
                f"a seed named {name!r} is already imported from {project.shown(out[name].path)}",
            )
            continue
        out[name] = Seed(name, path, project.seed_config(path.relative_to(base)))
    attach(files, "seeds", out, report, missing="no seed file of this name; remove the entry")
    return out


def attach(
    files: Iterable[YamlFile],
    key: str,
    found: Mapping[str, Any],
    report: Report,
    *,
    missing: str,
) -> None:
    """Give each model or seed in `found` (by identifier) its entry of the YAML files' `key:`
    list — the entry, where it is, its config over the project's; an entry naming nothing
    found is flagged with `missing`."""
    for file in files:
        for i, entry in enumerate(_entries(file.data, key)):
            item = found.get(identifier(str(entry["name"])))
            if item is None:
                what = f"{key.removesuffix('s')} `{entry['name']}`"
                report.flag(file.path, file.line((key, i)), what, missing)
                continue
            item.entry, item.file, item.loc = entry, file, (key, i)
            item.config = {**item.config, **(entry.get("config") or {})}


def seed_spec(seed: Seed, project: DbtProject, report: Report) -> dict[str, Any]:
    """`seeds/<name>.yml`: description, owner, column types and docs (rules are added by the
    caller); empty when dbt says nothing beyond the file."""
    out: dict[str, Any] = {}
    if seed.entry.get("description"):
        out["description"] = str(seed.entry["description"]).strip()
    owner = _meta(seed.entry).get("owner") or (seed.config.get("meta") or {}).get("owner")
    if owner:
        out["owner"] = str(owner)
    types = dict(seed.config.get("column_types") or {})
    docs = {
        str(c["name"]): str(c.get("description") or "").strip()
        for c in seed.entry.get("columns") or []
        if isinstance(c, dict) and c.get("name")
    }
    columns = []
    for name, given in types.items():
        column: dict[str, Any] = {"name": name, "type": _type(given)}
        if column["type"] is None:
            report.flag(
                _where(seed, project),
                None,
                f"column_types {name}: {given}",
                "not a DuckDB type; the column's type is inferred instead",
            )
            continue
        if docs.get(name):
            column["description"] = docs[name]
        columns.append(column)
    if columns:
        out["columns"] = columns
    untyped = sorted(name for name, doc in docs.items() if doc and name not in types)
    if untyped and seed.file is not None:
        report.flag(
            seed.file.path,
            seed.file.line((*seed.loc, "columns")),
            f"descriptions of seed columns {', '.join(untyped)}",
            f"a column listed in seeds/{seed.name}.yml pins its type; add them there with "
            "`type:` to keep their docs",
        )
    delimiter = seed.config.get("delimiter")
    if delimiter not in (None, ","):
        out["delimiter"] = delimiter
    return out


def _where(seed: Seed, project: DbtProject) -> str:
    return seed.file.path if seed.file else project.shown(seed.path)


def _entries(data: Any, key: str) -> list[dict[str, Any]]:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, list):
        return []
    return [e if isinstance(e, dict) and "name" in e else {"name": "?"} for e in value]


def _meta(entry: dict[str, Any]) -> dict[str, Any]:
    meta = dict(entry.get("meta") or {})
    meta.update((entry.get("config") or {}).get("meta") or {})
    return meta


def identifier(text: str) -> str:
    """A name headwater takes as a table name: letters, digits and _, not starting with a digit."""
    name = re.sub(r"\W+", "_", text).strip("_") or "table"
    return name if not name[0].isdigit() else f"t_{name}"
