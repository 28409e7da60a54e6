"""Load a project folder into one validated `Project`: settings, contracts, models and their DAG.

Everything a run needs is checked here, before anything is built: every file parses, every table
a model reads exists, the models form no cycle. Errors name the file and line.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from headwater.contracts import Contract, Settings
from headwater.contracts.load import load_spec, locate
from headwater.errors import Location, ModelError, SpecError
from headwater.models import Dag, Model
from headwater.models.cache import ModelCache
from headwater.models.python import parse_python_model

SETTINGS_FILE = "headwater.yml"
RAW = "raw"
MODEL_CACHE = Path(".headwater", "cache")  # in the state folder, which projects git-ignore


@dataclass(frozen=True)
class Project:
    """A loaded, validated project."""

    root: Path
    settings: Settings
    contracts: dict[str, Contract]
    models: dict[str, Model]
    dag: Dag

    @property
    def raw_tables(self) -> dict[str, Contract]:
        return {c.table: c for c in self.contracts.values()}

    def contract_file(self, contract: Contract) -> str:
        return f"contracts/{contract.name}.yml"


def load_project(root: Path | str) -> Project:
    """Load and validate the project in `root`.

    Raises:
        SpecError: a file is invalid; the message names file, line and field.
        ModelError: a model's SQL is invalid, reads an unknown table, or forms a cycle.
    """
    root = Path(root).resolve()
    settings_path = root / SETTINGS_FILE
    if not settings_path.exists():
        raise SpecError(
            f"no {SETTINGS_FILE} in {root}",
            hint="run `headwater init DIR` to create a project, or pass -p DIR",
        )
    settings = load_spec(Settings, settings_path, root=root)
    with ModelCache.open(root / MODEL_CACHE) as cache:
        contracts = _contracts(root, cache)
        models = _parse_models(root, cache)
    _check_refs(models, {c.table for c in contracts.values()})
    return Project(root, settings, contracts, models, Dag(models))


def _contracts(root: Path, cache: ModelCache) -> dict[str, Contract]:
    out: dict[str, Contract] = {}
    folder = root / "contracts"
    for path in sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]):
        if not path.stem.isidentifier():
            raise SpecError(
                "a contract's file name is its table name and must be an identifier",
                where=Location(str(path.relative_to(root))),
            )
        contract = cache.contract(path, root=root, name=path.stem)
        _check_rule_targets(contract, path, root)
        out[contract.name] = contract
    return out


def _check_rule_targets(contract: Contract, path: Path, root: Path) -> None:
    """A contract's rules name columns it declares (when it declares any), or `_hw_` ones."""
    names = [c.name for c in contract.columns]
    if not names:
        return
    for index, rule in enumerate(contract.rules):
        for column in rule.columns:
            if column in names or column.startswith("_hw_"):
                continue
            close = difflib.get_close_matches(column, names, n=1, cutoff=0.6)
            raise SpecError(
                f"rule {rule.name!r}: target column {column!r} is not among the columns",
                where=Location(
                    str(path.relative_to(root)),
                    locate(path, ("rules", index, "target")),
                    f"rules[{index}].target",
                ),
                hint=f"did you mean {close[0]!r}?" if close else f"columns are: {', '.join(names)}",
            )


def _parse_models(root: Path, cache: ModelCache) -> dict[str, Model]:
    out: dict[str, Model] = {}
    folder = root / "models"
    files = [*folder.glob("*/*.sql"), *folder.glob("*/*.py")]
    for path in sorted(p for p in files if p.name != "__init__.py"):
        shown = str(path.relative_to(root))
        if path.parent.name == RAW:
            raise ModelError(
                "the raw zone holds landed data only; models go in another folder",
                where=Location(shown),
                hint="move it to models/clean/",
            )
        if not (path.parent.name.isidentifier() and path.stem.isidentifier()):
            raise ModelError(
                "a model's folder and file name must be identifiers", where=Location(shown)
            )
        parse = parse_python_model if path.suffix == ".py" else cache.parse
        model = parse(path, root=root)
        if model.name in out:
            raise ModelError(
                f"model {model.name} is defined twice",
                where=Location(shown),
                hint=f"see {out[model.name].path}",
            )
        out[model.name] = model
    return out


def _check_refs(models: dict[str, Model], raw_tables: set[str]) -> None:
    known = set(models) | raw_tables | {f"{t}__quarantine" for t in raw_tables}
    for model in models.values():
        for ref in model.refs:
            if ref.name in known:
                continue
            close = _similar_table(ref.name, known)
            hint = (
                f"did you mean {close!r}?"
                if close
                else "a table is a model (models/<zone>/<name>.sql) or raw.<contract>"
            )
            raise ModelError(
                f"unknown table {ref.name!r}", where=Location(model.path, ref.line), hint=hint
            )


def _similar_table(name: str, known: set[str]) -> str | None:
    """The same table in another zone, else a close spelling of the whole name."""
    short = name.split(".")[-1]
    same = sorted(k for k in known if k.split(".")[-1] == short)
    if same:
        return same[0]
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
    return close[0] if close else None
