"""The import bands of DESIGN.md §5: lower bands never import higher ones, siblings never
import each other, and drivers are imported only by the module that adapts them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "headwater"
BANDS = {
    "errors": 0,
    "contracts": 1,
    "zones": 1,
    "engine": 1,
    "observe": 1,
    "ingest": 2,
    "models": 2,
    "quality": 2,
    "project": 3,
    "change": 4,
    "govern": 4,
    "orchestrate": 5,
    "cli": 6,
    "serve": 6,
    "__main__": 7,
    "__init__": 7,  # entry points above everything
}
# the edges between siblings of one band: `headwater serve` is a command, so the CLI starts the
# data API (a departure from DESIGN.md §5, which puts both in band 6 and forbids the edge)
SIBLINGS = {("cli", "serve")}
# a driver may be imported by these units (a folder), sub-folders (folder/sub) or modules
DRIVERS = {
    "duckdb": {"engine"},
    "pyiceberg": {"zones"},
    "sqlalchemy": {"zones", "ingest/databases"},
    "adbc_driver_postgresql": {"ingest/databases"},
    "httpx": {"ingest/http", "observe/alerts", "engine/maven"},  # sources; alerts; jars
    "pyspark": {"engine/spark"},  # the Spark adapter
    "openlineage": {"orchestrate/openlineage"},
    "tenacity": {"ingest/http"},
    "fsspec": {"ingest/files", "engine/duckdb"},  # sources; the lake on object storage
    "confluent_kafka": {"ingest/kafka"},
    "fastavro": {"ingest/kafka"},
    "psycopg2": {"ingest/cdc"},
    "typer": {"cli"},
    "rich": {"cli"},
    "jinja2": {"change/dbt"},
    "fastapi": {"serve"},
    "starlette": {"serve"},
    "uvicorn": {"serve", "cli/serve"},
    "schemathesis": set(),
    "usearch": {"change/vectors"},
    "redis": {"change/online"},
    "ruamel": {"govern/tagging"},
    "phonenumbers": {"govern/classify"},
    "prometheus_client": {"observe/metrics"},
    "opentelemetry": {"observe/tracing"},
}
# modules with a band of their own, below their folder's: the dialect people write SQL in
# is read by every band (pure sqlglot, nothing of headwater)
LEAVES = {"engine.dialect": 0}
# engine adapters: only engine/ itself (whose __init__ is the composition root that opens
# them) imports one; everything else holds an `Engine`
ADAPTERS = ("headwater.engine.duckdb",)


def _unit(path: Path) -> str:
    return path.relative_to(SRC).parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


MODULES = sorted(SRC.rglob("*.py"))


def test_every_unit_has_a_band() -> None:
    assert {_unit(p) for p in MODULES} <= set(BANDS)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_respect_bands(path: Path) -> None:
    unit = _unit(path)
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] == "headwater" and len(parts) > 1:
            target = parts[1]
            if target == unit or (unit, target) in SIBLINGS:
                continue
            if name.removeprefix("headwater.") in LEAVES:
                assert LEAVES[name.removeprefix("headwater.")] < BANDS[unit]
                continue
            assert not name.startswith(ADAPTERS), (
                f"{path.relative_to(SRC)} imports the engine adapter {name}: take an `Engine` "
                "(headwater.engine.base) and open one with headwater.engine.open_*"
            )
            assert BANDS[target] < BANDS[unit], (
                f"{path.relative_to(SRC)} (band {BANDS[unit]}) imports headwater.{target} "
                f"(band {BANDS[target]}): only lower bands may be imported"
            )
        elif parts[0] in DRIVERS:
            module = path.relative_to(SRC).with_suffix("").as_posix()
            allowed = DRIVERS[parts[0]]
            inside = any(module.startswith(f"{place}/") for place in allowed)
            assert unit in allowed or module in allowed or inside, (
                f"{path.relative_to(SRC)} imports driver {name}"
            )


def test_import_has_no_side_effects() -> None:
    import subprocess
    import sys

    code = (
        "import headwater, sys; "
        "print(sorted(m for m in ('duckdb', 'pyiceberg', 'httpx', 'fsspec') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# what only an engine adapter may say: DuckDB's catalog functions and file readers, its
# DESCRIBE, and its name as a dialect (engine/dialect.py names the dialect people write in)
ENGINE_ONLY = re.compile(r"duckdb_|\bread_parquet\b|\bDESCRIBE\b|[\"']duckdb[\"']")
# the start of a statement an engine runs, inside an f-string
SQL_FSTRING = re.compile(
    r"^\s*(SELECT|WITH|INSERT|DELETE|UPDATE|CREATE|DROP|ALTER|MERGE|COPY|DESCRIBE)\b", re.I
)
# issue #13, still to move behind the engine: the direct lane (DuckDB reading source files
# itself) and landing's conformance SQL. Remove a module from here when it moves.
PENDING: set[str] = set()
OUTSIDE_ENGINE = [
    p for p in MODULES if _unit(p) != "engine" and p.relative_to(SRC).as_posix() not in PENDING
]


@pytest.mark.parametrize("path", OUTSIDE_ENGINE, ids=lambda p: str(p.relative_to(SRC)))
def test_engine_specific_sql_stays_in_engine(path: Path) -> None:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        found = ENGINE_ONLY.search(line)
        assert found is None, (
            f"{path.relative_to(SRC)}:{number} says {found.group()!r}: ask the `Engine` "
            "(headwater.engine.base) instead, or use headwater.engine.dialect for user SQL"
        )


@pytest.mark.parametrize("path", OUTSIDE_ENGINE, ids=lambda p: str(p.relative_to(SRC)))
def test_generated_sql_is_never_an_f_string(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and node.values:
            first = node.values[0]
            text = first.value if isinstance(first, ast.Constant) else ""
            assert not SQL_FSTRING.match(str(text)), (
                f"{path.relative_to(SRC)}:{node.lineno} formats SQL into an f-string: "
                "build a sqlglot AST and let the engine render it"
            )
