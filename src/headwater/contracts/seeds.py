"""Seeds: small reference files in `seeds/`, loaded without a contract to write.

`seeds/countries.csv` becomes the table `seed.countries`: a contract made here with its types
inferred when it first lands and pinned after (as for a contract without `columns:`), landed
with `load: snapshot` — editing the file replaces what `seed.countries` shows, and every earlier
copy stays in `seed.countries__history`. An optional `seeds/countries.yml` (`Seed`) adds a
description, owner, keys, rules, column types and a different `load:`.

Example:
    >>> contracts = load_seeds(Path("shop"))                   # doctest: +SKIP
    >>> contracts["countries"].table
    'seed.countries'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from headwater.contracts.load import load_spec
from headwater.contracts.specs import Contract, Seed
from headwater.errors import Location, SpecError

SEEDS = "seeds"
ZONE = "seed"
FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}
FORMATS[".json"] = "jsonl"  # one record per line, as the files connector reads .json
_SIDECARS = (".yml", ".yaml")
_CONNECTOR_FIELDS = ("delimiter", "header", "encoding")  # a seed's, for its files connector


def load_seeds(root: Path) -> dict[str, Contract]:
    """The contract of every seed file under `root/seeds/` (sub-folders organize; a seed's
    name is its file's stem), by name.

    Raises:
        SpecError: a file headwater cannot place, a name used twice, or an invalid sidecar.
    """
    folder = root / SEEDS
    if not folder.is_dir():
        return {}
    found: dict[str, Path] = {}
    sidecars: list[Path] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and _shown(p, folder)):
        shown = path.relative_to(root).as_posix()
        if path.suffix.lower() in _SIDECARS:
            sidecars.append(path)
            continue
        if path.suffix.lower() not in FORMATS:
            continue  # a README or notes beside the seeds
        if not path.stem.isidentifier():
            raise SpecError(
                "a seed's file name is its table name and must be an identifier "
                "(letters, digits and _, not starting with a digit)",
                where=Location(shown),
            )
        if path.stem in found:
            raise SpecError(
                f"seed {path.stem!r} is defined twice",
                where=Location(shown),
                hint=f"see {found[path.stem].relative_to(root).as_posix()}; keep one of the two",
            )
        found[path.stem] = path
    by_data = {p.with_suffix(""): p for p in found.values()}
    for sidecar in sidecars:
        if sidecar.with_suffix("") not in by_data:
            raise SpecError(
                "this seed sidecar has no seed file beside it",
                where=Location(sidecar.relative_to(root).as_posix()),
                hint=f"add {sidecar.stem}.csv (or .parquet / .jsonl) beside it, or remove it",
            )
        if sidecar.suffix == ".yaml" and sidecar.with_suffix(".yml").exists():
            raise SpecError(
                f"seed {sidecar.stem!r} has two sidecars",
                where=Location(sidecar.relative_to(root).as_posix()),
                hint=f"keep {sidecar.stem}.yml",
            )
    return {name: _contract(root, path) for name, path in found.items()}


def _contract(root: Path, data: Path) -> Contract:
    shown = data.relative_to(root).as_posix()
    sidecar = next((s for s in map(data.with_suffix, _SIDECARS) if s.exists()), None)
    seed = load_spec(Seed, sidecar, root=root) if sidecar else Seed()
    fixed: dict[str, Any] = {
        "name": data.stem,
        "zone": ZONE,
        "source": shown,
        "schema_version": "1",
        "delivery": "batch",
        "connector": {
            "kind": "files",
            "path": shown,
            "format": FORMATS[data.suffix.lower()],
            **{name: getattr(seed, name) for name in _CONNECTOR_FIELDS},
        },
    }
    given = {k: v for k, v in seed.model_dump(mode="json").items() if k in Contract.model_fields}
    if sidecar is None:
        return Contract.model_validate({**given, **fixed})
    # the sidecar is read again as a contract, so what its fields break is located in it
    return load_spec(
        Contract, sidecar, root=root, defaults=given, extra=fixed, without=_CONNECTOR_FIELDS
    )


def seed_file(root: Path, contract: Contract) -> str:
    """The file to name in an error about a seed: its sidecar when it has one, else its data."""
    data = root / contract.source
    sidecar = next((s for s in map(data.with_suffix, _SIDECARS) if s.exists()), None)
    return (sidecar or data).relative_to(root).as_posix()


def _shown(path: Path, folder: Path) -> bool:
    """Whether a file is the user's: not hidden, not a Python cache."""
    parts = path.relative_to(folder).parts
    return not any(part.startswith(".") or part == "__pycache__" for part in parts)
