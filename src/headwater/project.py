"""Load a project folder into one validated `Project`: settings, contracts, models and their DAG.

Everything a run needs is checked here, before anything is built: every file parses, every table
a model reads exists, the models form no cycle. Errors name the file and line.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from headwater.contracts import Contract, Rule, Settings
from headwater.contracts.load import load_spec, locate
from headwater.contracts.policies import POLICIES_FILE, TAG_PREFIX, Policies, condition_columns
from headwater.contracts.seeds import ZONE as SEED
from headwater.contracts.seeds import load_seeds, seed_file
from headwater.errors import Location, ModelError, SpecError
from headwater.models import Dag, Model
from headwater.models.cache import ModelCache
from headwater.models.outputs import Columns, resolve_outputs
from headwater.models.python import parse_python_model
from headwater.zones.layout import QUARANTINE, RAW_METADATA

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
    policies: Policies | None = None  # policies.yml; None: the data API's open default

    @property
    def raw_tables(self) -> dict[str, Contract]:
        return {c.table: c for c in self.contracts.values()}

    def contract_file(self, contract: Contract) -> str:
        return project_file(self.root, contract)


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
        contracts.update(_seeds(root, contracts))
        models = _parse_models(root, cache)
    _check_refs(models, {v for c in contracts.values() for v in c.views})
    dag = Dag(models)
    outputs = _check_columns(root, models, dag, contracts)
    _check_pools(root, settings.pools, contracts, models)
    _check_served_names(models)
    _check_engine(root, settings, models)
    policies = _policies(root, outputs)
    return Project(root, settings, contracts, models, dag, policies)


def _check_served_names(models: dict[str, Model]) -> None:
    """Feature views and vector indexes are looked up by name: one name, one model."""
    for field in ("features", "vectors"):
        seen: dict[str, Model] = {}
        for name, model in sorted(models.items()):
            for item in getattr(model.sidecar, field):
                if item in seen:
                    raise SpecError(
                        f"{field}: {item!r} is declared by {seen[item].name} and by {name}",
                        where=Location(model.sidecar_path or model.path),
                        hint="the API looks them up by name: rename one of them",
                    )
                seen[item] = model


def _policies(root: Path, tables: dict[str, Columns]) -> Policies | None:
    """policies.yml, with every table, column and row condition it names checked against the
    project's raw tables and models (`tables`: each one's columns, None where not yet known)."""
    path = root / POLICIES_FILE
    if not path.exists():
        return None
    policies = load_spec(Policies, path, root=root)
    for role_name, role in policies.roles.items():
        for key in role.masks:
            if not key.startswith(TAG_PREFIX):
                table, _, column = key.rpartition(".")
                loc = ("roles", role_name, "masks", key)
                _policy_column(path, loc, tables, table, {column}, what="masks")
        for table, condition in role.rows.items():
            loc = ("roles", role_name, "rows", table)
            _policy_column(path, loc, tables, table, condition_columns(condition), what="rows")
    return policies


def _policy_column(
    path: Path,
    loc: tuple[str, ...],
    tables: dict[str, Columns],
    table: str,
    columns: set[str],
    *,
    what: str,
) -> None:
    """A table a policy names exists, and has the columns it names (where they are known)."""
    where = Location(POLICIES_FILE, locate(path, loc), field=".".join(loc[:3]))
    if table not in tables:
        close = difflib.get_close_matches(table, list(tables), n=1, cutoff=0.6)
        raise SpecError(
            f"{what}: {loc[-1]!r}: no table {table!r} in the project",
            where=where,
            hint=f"did you mean {close[0]!r}?" if close else "name a raw table or a model",
        )
    known = tables[table]
    for column in sorted(columns - set(known or columns)):
        close = difflib.get_close_matches(column, list(known or ()), n=1, cutoff=0.6)
        raise SpecError(
            f"{what}: {loc[-1]!r}: {table} has no column {column!r}",
            where=where,
            hint=f"did you mean {close[0]!r}?"
            if close
            else f"its columns: {', '.join(known or ())}",
        )


def _check_pools(
    root: Path, pools: dict[str, int], contracts: dict[str, Contract], models: dict[str, Model]
) -> None:
    """A contract's or model's `pool:` names a pool of headwater.yml's `pools:`."""
    named = [(project_file(root, c), c.pool) for c in contracts.values()]
    named += [(str(m.path), m.config.pool) for m in models.values()]
    for file, pool in named:
        if pool is not None and pool not in pools:
            close = difflib.get_close_matches(pool, list(pools), n=1)
            known = ", ".join(sorted(pools)) or "none"
            raise SpecError(
                f"pool {pool!r} is not one of headwater.yml's pools ({known})",
                where=Location(file, field="pool"),
                hint=f"did you mean {close[0]!r}?"
                if close
                else f"add it to headwater.yml: pools: {{{pool}: 1}}",
            )


def _contracts(root: Path, cache: ModelCache) -> dict[str, Contract]:
    out: dict[str, Contract] = {}
    folder = root / "contracts"
    paths = sorted(p for p in folder.rglob("*") if p.suffix in (".yml", ".yaml") and _shown(p))
    for path in paths:
        where = Location(str(path.relative_to(root)))
        if path.parent != folder:
            raise SpecError(
                "contracts are read from contracts/ itself, not from its sub-folders",
                where=where,
                hint=f"move it to contracts/{path.name}",
            )
        if not path.stem.isidentifier():
            raise SpecError(
                "a contract's file name is its table name and must be an identifier", where=where
            )
        if path.stem in out:
            raise SpecError(
                f"contract {path.stem!r} is defined twice",
                where=where,
                hint=f"see {project_file(root, out[path.stem])}; keep one of the two files",
            )
        if path.suffix == ".yaml" and path.with_suffix(".yml").exists():
            raise SpecError(
                f"contract {path.stem!r} is defined twice",
                where=where,
                hint=f"see contracts/{path.stem}.yml; keep one of the two files",
            )
        contract = cache.contract(path, root=root, name=path.stem)
        _check_rule_targets(contract, path, root)
        out[contract.name] = contract
    return out


def _seeds(root: Path, contracts: dict[str, Contract]) -> dict[str, Contract]:
    """The contracts of the seeds; a seed and a contract never share a name (commands and
    selections name either by it)."""
    seeds = load_seeds(root)
    for name, seed in seeds.items():
        if name in contracts:
            raise SpecError(
                f"seed {name!r} has the name of contract {name!r}",
                where=Location(seed_file(root, seed)),
                hint=f"rename one of the two (see {project_file(root, contracts[name])})",
            )
    return seeds


def project_file(root: Path, contract: Contract) -> str:
    """The contract's file as the user named it (`.yml` or `.yaml`); for a seed, its sidecar
    or its data file."""
    if contract.zone == SEED:
        return seed_file(root, contract)
    yml = root / "contracts" / f"{contract.name}.yml"
    return f"contracts/{contract.name}{'.yml' if yml.exists() else '.yaml'}"


def _shown(path: Path) -> bool:
    """Whether a file is the user's to place: not hidden, not a Python cache."""
    return not any(part.startswith(".") or part == "__pycache__" for part in path.parts[-3:])


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
    for path in _model_files(root):
        shown = str(path.relative_to(root))
        parse = parse_python_model if path.suffix == ".py" else cache.parse
        model = parse(path, root=root)
        if model.name in out:
            raise ModelError(
                f"model {model.name} is defined twice",
                where=Location(shown),
                hint=f"see {out[model.name].path}; a model's name is its zone and file name, "
                "whatever folders are between",
            )
        out[model.name] = model
    return out


def _model_files(root: Path) -> list[Path]:
    """Every model file under `models/<zone>/` (deeper folders organize, the zone is the first);
    a SQL, Python or YAML file headwater cannot place is an error naming it."""
    folder = root / "models"
    files, sidecars = [], []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and _shown(p)):
        parts = path.relative_to(folder).parts
        where = Location(str(path.relative_to(root)))
        if path.suffix in (".yml", ".yaml"):
            sidecars.append(path)
        elif path.suffix not in (".sql", ".py") or path.name == "__init__.py":
            continue  # notes, READMEs and other files that are not models
        elif len(parts) == 1:
            raise ModelError(
                "a model belongs in a zone folder: models/<zone>/<name>" + path.suffix,
                where=where,
                hint=f"move it to models/clean/{path.name} or models/marts/{path.name}",
            )
        elif parts[0] in (RAW, SEED):
            raise ModelError(
                f"the {parts[0]} zone holds landed data only; models go in another folder",
                where=where,
                hint=f"move it to models/clean/{path.name}",
            )
        elif not (parts[0].isidentifier() and path.stem.isidentifier()):
            raise ModelError(
                "a model's zone folder and file name must be identifiers "
                "(letters, digits and _, not starting with a digit)",
                where=where,
            )
        else:
            files.append(path)
    _check_sidecars(root, files, sidecars)
    return files


def _check_sidecars(root: Path, files: list[Path], sidecars: list[Path]) -> None:
    """Every YAML file under models/ is the sidecar of a model beside it."""
    models = {p.with_suffix("") for p in files}
    for sidecar in sidecars:
        where = Location(str(sidecar.relative_to(root)))
        if sidecar.suffix == ".yaml" and sidecar.with_suffix("") in models:
            raise SpecError(
                "a model's sidecar is named <model>.yml",
                where=where,
                hint=f"rename it to {sidecar.with_suffix('.yml').name}",
            )
        if sidecar.with_suffix("") not in models:
            names = sorted(p.name for p in files if p.parent == sidecar.parent)
            close = difflib.get_close_matches(sidecar.stem, [Path(n).stem for n in names], n=1)
            raise SpecError(
                "this sidecar has no model beside it: a sidecar is named like its model's file",
                where=where,
                hint=f"did you mean {close[0]}.yml?"
                if close
                else f"add {sidecar.with_suffix('.sql').name}, or remove the sidecar",
            )


def _check_engine(root: Path, settings: Settings, models: dict[str, Model]) -> None:
    """On `engine: spark`, every function of every SQL model must exist there once sqlglot
    has transpiled it: found now, at load, naming the model's file, line and function —
    not at run time on the cluster."""
    if settings.engine != "spark":
        return
    from headwater.engine.dialect import parse
    from headwater.engine.spark_sql import untranslatable

    for model in models.values():
        if model.function is not None:
            continue  # a Python model: its DataFrames are the engine's own
        text = (root / model.path).read_text(encoding="utf-8")
        problems = [u for statement in parse(text) for u in untranslatable(statement, text)]
        if problems:
            first, more = problems[0], len(problems) - 1
            also = f" (and {more} more: {', '.join(p.name for p in problems[1:])})" if more else ""
            raise ModelError(
                f"{first.name}() cannot run on Spark: {first.reason}{also}",
                where=Location(model.path, first.line),
                hint="rewrite it with a function Spark has (the same query must run on both "
                "engines), or keep `engine: duckdb`",
            )


def _check_refs(models: dict[str, Model], landed: set[str]) -> None:
    known = set(models) | landed
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


def _check_columns(
    root: Path, models: dict[str, Model], dag: Dag, contracts: dict[str, Contract]
) -> dict[str, Columns]:
    """Rules, `grain:` and keys name columns the model outputs, wherever its SQL says them
    (stars resolved through the DAG); a rule's `to:` names a table that exists."""
    raw: dict[str, Columns] = {}
    for contract in contracts.values():
        declared = tuple(c.name for c in contract.columns)
        raw[contract.table] = (*declared, *RAW_METADATA) if declared else None
        raw[contract.quarantine] = tuple(QUARANTINE)
        if contract.history:
            raw[contract.history] = raw[contract.table]
    outputs = resolve_outputs(models, dag.order, raw)
    for contract in contracts.values():
        _check_rule_tables(root, project_file(root, contract), contract.rules, outputs)
    for model in models.values():
        columns = outputs.get(model.name)
        if columns is not None:
            _check_config_columns(root, model, columns)
        for index, rule in enumerate(model.rules):
            file = model.sidecar_path or model.path
            if columns is not None:
                for column in rule.columns:
                    where = (file, ("rules", index, "target"))
                    _known_column(root, where, rule.name, model.name, column, columns)
        _check_rule_tables(root, model.sidecar_path or model.path, model.rules, outputs)
    return outputs


def _check_rule_tables(
    root: Path, file: str, rules: list[Rule], outputs: dict[str, Columns]
) -> None:
    """Each rule's `to:` names a table that exists, and a column of it where that is known."""
    for index, rule in enumerate(rules):
        if rule.to and rule.to.count(".") == 2:
            table, column = rule.to.rsplit(".", 1)
            _known_table(root, file, ("rules", index, "to"), table, outputs)
            found = outputs.get(table)
            if found is not None:
                where = (file, ("rules", index, "to"))
                _known_column(root, where, rule.name, table, column, found)


def _check_config_columns(root: Path, model: Model, columns: tuple[str, ...]) -> None:
    cfg = model.config
    named = {
        "grain": cfg.grain,
        "unique_key": cfg.unique_key,
        "time_column": [cfg.time_column] if cfg.time_column else [],
        "updated_column": [cfg.updated_column] if cfg.updated_column else [],
        "deleted_column": [cfg.deleted_column] if cfg.deleted_column else [],
        "truncated_column": [cfg.truncated_column] if cfg.truncated_column else [],
    }
    for key, names in named.items():
        for name in names:
            if name not in columns:
                line = _header_line(root / model.path, key)
                raise ModelError(
                    f"{key}: {name!r} is not a column of the model",
                    where=Location(model.path, line, key),
                    hint=_column_hint(name, columns),
                )


def _known_column(
    root: Path,
    where: tuple[str, tuple[str | int, ...]],
    rule: str,
    table: str,
    column: str,
    columns: tuple[str, ...],
) -> None:
    if column in columns:
        return
    file, key = where
    raise SpecError(
        f"rule {rule!r}: {key[2]} column {column!r} does not exist in {table}",
        where=Location(file, locate(root / file, key), f"rules[{key[1]}].{key[2]}"),
        hint=_column_hint(column, columns),
    )


def _known_table(
    root: Path, file: str, key: tuple[str | int, ...], table: str, known: dict[str, Columns]
) -> None:
    if table in known:
        return
    close = _similar_table(table, set(known))
    raise SpecError(
        f"table {table!r} does not exist",
        where=Location(file, locate(root / file, key), f"rules[{key[1]}].{key[2]}"),
        hint=f"did you mean {close!r}?"
        if close
        else "`to:` names zone.table.column of a model or raw.<contract>",
    )


def _column_hint(name: str, columns: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, columns, n=1, cutoff=0.6)
    shown = [c for c in columns if not c.startswith("_hw_")]
    return f"did you mean {close[0]!r}?" if close else f"the columns are: {', '.join(shown)}"


def _header_line(path: Path, key: str) -> int | None:
    """The line of `key:` in a model file's header comment."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    return next((n for n, text in enumerate(lines, 1) if text.lstrip().startswith(f"{key}:")), None)


def _similar_table(name: str, known: set[str]) -> str | None:
    """The same table in another zone, else a close spelling of the whole name."""
    short = name.split(".")[-1]
    same = sorted(k for k in known if k.split(".")[-1] == short)
    if same:
        return same[0]
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
    return close[0] if close else None
