"""Convert a whole dbt project into the files of a headwater project, and the report.

The conversion is a pure function of the dbt project's files: every output is built in memory
as `path → bytes` in a fixed order, so converting twice gives byte-identical trees.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlglot
import yaml
from pydantic import ValidationError

import headwater.engine.dialect as authored
from headwater.change.dbt import models as convert_models
from headwater.change.dbt.jinja import Renderer
from headwater.change.dbt.layout import DbtProject, YamlFile, read_project, read_yaml_file
from headwater.change.dbt.models import DbtModel, zone_of
from headwater.change.dbt.report import REPORT_FILE, Report
from headwater.change.dbt.rules import Converter, Site, unique_name
from headwater.change.dbt.sources import (
    Seed,
    Source,
    attach,
    collect_seeds,
    collect_sources,
    contract,
    identifier,
    seed_spec,
)
from headwater.change.dbt.unit_tests import HEADER, TESTS_FILE, convert_unit_tests
from headwater.contracts import Rule
from headwater.contracts.load import read_text

# properties dbt reads that headwater has no place for (yet)
_UNCONVERTED_PROPERTIES = {
    "snapshots": "a snapshot is an scd2 model in headwater: write one by hand",
    "exposures": "headwater has no exposures; note the consumers in the model's description",
    "metrics": "headwater has no semantic layer; write the metric as a model",
    "semantic_models": "headwater has no semantic layer; write the metric as a model",
    "saved_queries": "headwater has no semantic layer; write the query as a model",
    "analyses": "analyses are not built; keep them as SQL files outside the project",
}


@dataclass(frozen=True)
class Conversion:
    """What an import makes: the files of the headwater project, and its report."""

    files: dict[str, bytes]
    report: Report


def convert(root: Path) -> Conversion:
    """Convert the dbt project at `root` (nothing is written).

    Raises:
        SpecError: the dbt project cannot be read (no dbt_project.yml, a YAML or Jinja
            syntax error), naming the file and line.
    """
    project = read_project(root.resolve())
    report = Report(project=project.name)
    properties = _properties(project, report)
    sources = collect_sources(properties, report)
    seeds = collect_seeds(project, properties, report)
    dbt_models = _models(project, properties, report)
    renderer = Renderer(
        project, ref=_ref(dbt_models, seeds), source=_source(sources), report=report
    )
    rendered = _render_all(dbt_models, renderer)
    reads = _reads({dbt_models[n].table: convert_models.tables(r[1]) for n, r in rendered.items()})
    tests = Converter(renderer, report, _test_defaults(project), reads)
    rules = {m.table: _rules(m.entry, m.file, m.loc, m.table, tests) for m in dbt_models.values()}
    _singular_tests(project, renderer, tests)
    files: dict[str, bytes] = {"headwater.yml": _settings(project)}
    for found in sources.values():
        files.update(_contract_files(found, project, tests, report))
    for seed in seeds.values():
        files.update(_seed_files(seed, project, tests, report))
    for name, model in dbt_models.items():
        own = rules[model.table] + tests.moved.get(model.table, [])
        files.update(_model_files(model, rendered[name], own, renderer))
    files.update(_unit_test_files(properties, dbt_models, renderer))
    _flag_other_files(project, report)
    files[REPORT_FILE] = report.render().encode()
    return Conversion(dict(sorted(files.items())), report)


def _properties(project: DbtProject, report: Report) -> list[YamlFile]:
    """Every properties file under the model, seed and snapshot paths; what headwater cannot
    take from them (snapshots, exposures, metrics) is flagged."""
    paths = (*project.model_paths, *project.seed_paths, *project.snapshot_paths)
    files = [read_yaml_file(project.root, p) for p in project.files(paths, ".yml", ".yaml")]
    for file in files:
        if not isinstance(file.data, dict):
            continue
        for key, why in _UNCONVERTED_PROPERTIES.items():
            for i, entry in enumerate(file.data.get(key) or []):
                name = entry.get("name", "?") if isinstance(entry, dict) else "?"
                report.flag(file.path, file.line((key, i)), f"{key[:-1]} `{name}`", why)
    return files


def _models(project: DbtProject, files: list[YamlFile], report: Report) -> dict[str, DbtModel]:
    out: dict[str, DbtModel] = {}
    for path in project.files(project.model_paths, ".sql", ".py"):
        base = next(
            project.root / p for p in project.model_paths if project.root / p in path.parents
        )
        relative = path.relative_to(base)
        shown = project.shown(path)
        if path.suffix == ".py":
            report.flag(shown, None, "Python model", "write it as a headwater Python model")
            continue
        config = project.model_config(relative)
        name = identifier(path.stem)
        if name != path.stem:
            report.flag(
                shown,
                None,
                f"model name `{path.stem}`",
                f"not an identifier: imported as {zone_of(relative)}.{name}",
            )
        out[path.stem] = DbtModel(name, path, shown, zone_of(relative), config)
    missing = "no model file of this name; its docs and tests are not imported"
    attach(files, "models", {identifier(k): m for k, m in out.items()}, report, missing=missing)
    enabled = {n: m for n, m in out.items() if m.config.get("enabled", True) is not False}
    _flag_clashes(enabled, report)
    return dict(sorted(enabled.items()))


def _flag_clashes(models: dict[str, DbtModel], report: Report) -> None:
    seen: dict[str, DbtModel] = {}
    for model in sorted(models.values(), key=lambda m: m.shown):
        if model.table in seen:
            report.flag(
                model.shown,
                None,
                f"model `{model.name}`",
                f"{seen[model.table].shown} is also {model.table}; rename one of them",
            )
        seen[model.table] = model


def _ref(models: dict[str, DbtModel], seeds: dict[str, Seed]) -> Callable[..., str | None]:
    """dbt's `ref('name')` (or `ref('package', 'name')`): the table a model or seed becomes."""
    tables = {name: f"seed.{name}" for name in seeds}
    tables.update({name: m.table for name, m in models.items()})

    def ref(*args: Any, **kwargs: Any) -> str | None:
        name = kwargs.get("name") or (args[-1] if args else None)
        return tables.get(str(name))

    return ref


def _source(sources: dict[tuple[str, str], Source]) -> Callable[..., str | None]:
    """dbt's `source('s', 't')`: the raw table of the contract it becomes."""

    def source(source_name: str, table_name: str) -> str | None:
        found = sources.get((str(source_name), str(table_name)))
        return f"raw.{found.contract}" if found else None

    return source


def _render_all(
    models: dict[str, DbtModel], renderer: Renderer
) -> dict[str, tuple[dict[str, Any], str]]:
    """Every model's header and SQL; a model its own `config(enabled=false)` turns off is
    dropped (from `models` too)."""
    rendered = {name: _render(model, renderer) for name, model in models.items()}
    for name in [n for n, (head, _) in rendered.items() if head.get("enabled") is False]:
        del models[name], rendered[name]
    return rendered


def _render(model: DbtModel, renderer: Renderer) -> tuple[dict[str, Any], str]:
    """A model's header and its SQL as rendered for a full build (`{"enabled": False}` for a
    model its own `config()` disables)."""
    text = read_text(model.path, shown=model.shown)
    full, step = renderer.render_model(model.shown, text, this=model.table, defaults=model.config)
    if full.config.get("enabled") is False:
        return {"enabled": False}, ""
    head = convert_models.header(model, full, step, renderer.report)
    if not full.unknown:
        convert_models.check_sql(model, full.sql, renderer.report)
    return head, full.sql


def _unit_test_files(
    properties: list[YamlFile], dbt_models: dict[str, DbtModel], renderer: Renderer
) -> dict[str, bytes]:
    tests = convert_unit_tests(
        properties,
        model_table=lambda name: dbt_models[name].table if name in dbt_models else None,
        expression=renderer.expression,
        report=renderer.report,
    )
    if not tests:
        return {}
    renderer.report.count("unit tests", len(tests))
    return {TESTS_FILE: HEADER.encode() + _yaml(tests)}


def _reads(direct: dict[str, list[str]]) -> Callable[[str, str], bool]:
    """`reads(a, b)`: whether model `a` reads `b`, directly or through other models."""

    def reads(table: str, upstream: str, seen: frozenset[str] = frozenset()) -> bool:
        parents = direct.get(table, [])
        if upstream in parents:
            return True
        return any(reads(p, upstream, seen | {table}) for p in parents if p not in seen)

    return reads


def _model_files(
    model: DbtModel,
    rendered: tuple[dict[str, Any], str],
    rules: list[dict[str, Any]],
    renderer: Renderer,
) -> dict[str, bytes]:
    head, sql = rendered
    out = {model.out_path: convert_models.model_file(head, sql).encode()}
    description = model.entry.get("description")
    if description and model.file:
        description = renderer.render_text(str(description), model.file.path).strip()
    spec = convert_models.sidecar(model, description, rules)
    if spec:
        out[model.out_path.removesuffix(".sql") + ".yml"] = _yaml(spec)
    renderer.report.count(f"models ({head['kind']})")
    renderer.report.count("rules from tests", len(rules))
    return out


def _contract_files(
    found: Source, project: DbtProject, tests: Converter, report: Report
) -> dict[str, bytes]:
    spec = contract(found, project, report)
    rules = _rules(found.entry, found.file, found.loc, f"raw.{found.contract}", tests)
    rules += tests.moved.get(f"raw.{found.contract}", [])
    rules += _freshness(found, {r["name"] for r in rules})
    if rules:
        spec["rules"] = rules
    report.count("contracts from sources")
    report.count("rules from tests", len(rules))
    return {f"contracts/{found.contract}.yml": _yaml(spec)}


def _seed_files(
    seed: Seed, project: DbtProject, tests: Converter, report: Report
) -> dict[str, bytes]:
    out = {f"seeds/{seed.name}.csv": seed.path.read_bytes()}
    spec = seed_spec(seed, project, report)
    rules = _rules(seed.entry, seed.file, seed.loc, f"seed.{seed.name}", tests) if seed.file else []
    rules += tests.moved.get(f"seed.{seed.name}", [])
    if rules:
        spec["rules"] = rules
    if spec:
        out[f"seeds/{seed.name}.yml"] = _yaml(spec)
    report.count("seeds")
    report.count("rules from tests", len(rules))
    return out


def _rules(
    entry: dict[str, Any], file: YamlFile | None, loc: tuple[Any, ...], table: str, tests: Converter
) -> list[dict[str, Any]]:
    """The rules of a model's, seed's or source table's tests and its columns' tests."""
    if file is None:
        return []
    out = []
    sites: list[tuple[tuple[Any, ...], str | None, list[Any]]] = []
    for key in ("data_tests", "tests"):
        sites.append(((*loc, key), None, entry.get(key) or []))
    for i, column in enumerate(entry.get("columns") or []):
        if isinstance(column, dict):
            for key in ("data_tests", "tests"):
                sites.append(
                    ((*loc, "columns", i, key), str(column.get("name")), column.get(key) or [])
                )
    for where, column, entries in sites:
        for j, test in enumerate(entries):
            rule = tests.convert(test, Site(file, (*where, j), column, table))
            if rule is not None:
                out.append(rule)
    return out


def _freshness(found: Source, taken: set[str]) -> list[dict[str, Any]]:
    """dbt's source freshness (`loaded_at_field` + `warn_after`/`error_after`) → freshness rules.
    Both warn: dbt checks freshness only when asked (`dbt source freshness`), never in a build."""
    field = found.entry.get("loaded_at_field") or found.parent.get("loaded_at_field")
    freshness = found.entry.get("freshness", found.parent.get("freshness")) or {}
    out = []
    for key in ("warn_after", "error_after"):
        after = freshness.get(key) if isinstance(freshness, dict) else None
        if field and isinstance(after, dict) and after.get("count") and after.get("period"):
            name = f"{found.contract}_fresh_{key.split('_')[0]}"
            if name not in taken:
                threshold = f"{after['count']} {after['period']}s"
                out.append(
                    {
                        "name": name,
                        "type": "freshness",
                        "target": str(field),
                        "threshold": threshold,
                        "severity": "warn",
                    }
                )
    return out


def _test_defaults(project: DbtProject) -> dict[str, Any]:
    """The project-wide test config (`data_tests: {+severity: warn}`)."""
    data = project.settings.data
    tree = data.get("data_tests") or data.get("tests") or {}
    if not isinstance(tree, dict):
        return {}
    own = {k.removeprefix("+"): v for k, v in tree.items() if not isinstance(v, dict)}
    nested = tree.get(project.name)
    if isinstance(nested, dict):
        own.update({k.removeprefix("+"): v for k, v in nested.items() if not isinstance(v, dict)})
    return {k: v for k, v in own.items() if k in ("severity", "where")}


def _singular_tests(project: DbtProject, renderer: Renderer, tests: Converter) -> None:
    """Singular tests (`tests/*.sql`, a query returning the failing rows) → custom_sql rules on
    the table they read that is built from all the others they read."""
    for path in project.files(project.test_paths, ".sql"):
        shown = project.shown(path)
        rendered, _ = renderer.render_model(
            shown, read_text(path, shown=shown), this="", defaults={}
        )
        read = list(dict.fromkeys(convert_models.tables(rendered.sql)))
        owner = next((t for t in read if all(t == o or tests.reads(t, o) for o in read)), None)
        if rendered.unknown or owner is None:
            why = "it reads no table" if not read else "no table it reads is built from the others"
            renderer.report.flag(
                shown, None, "singular test", f"{why}: write it as a custom_sql rule by hand"
            )
            continue
        taken = tests.taken.setdefault(owner, set())
        rule = {
            "name": unique_name(path.stem, taken, fallback="singular_test"),
            "type": "custom_sql",
            "target": "*",
        }
        if str(rendered.config.get("severity", "error")).lower() == "warn":
            rule["severity"] = "warn"
        try:
            rule["sql"] = authored.shown(authored.parse_one(rendered.sql), comments=False)
            Rule.model_validate(rule)
        except (sqlglot.errors.SqlglotError, ValidationError) as err:
            renderer.report.flag(shown, None, "singular test", f"not a query headwater runs: {err}")
            continue
        taken.add(rule["name"])
        tests.moved.setdefault(owner, []).append(rule)


def _flag_other_files(project: DbtProject, report: Report) -> None:
    """Snapshots and packages are not converted: one line each."""
    for path in project.files(project.snapshot_paths, ".sql"):
        report.flag(project.shown(path), None, "snapshot", "write it as a model of kind scd2")
    if (project.root / "packages.yml").exists() or (project.root / "dependencies.yml").exists():
        name = "packages.yml" if (project.root / "packages.yml").exists() else "dependencies.yml"
        report.flag(
            name,
            None,
            "dbt packages",
            "not installed; each of their macros a model calls is flagged where it is "
            "called (generate_surrogate_key and the common tests are converted)",
        )


def _settings(project: DbtProject) -> bytes:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", project.name)[:100] or "imported"
    return _yaml({"name": name, "engine": authored.ENGINES[0]})


def _yaml(data: dict[str, Any]) -> bytes:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100).encode()


__all__ = ["Conversion", "convert"]
