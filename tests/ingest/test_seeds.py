"""Seeds: small reference files in seeds/, loaded as `seed.<name>` with no contract to write."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from tests.badinput.harness import (
    SETTINGS,
    assert_clean_error,
    hw,
    probe_project,
    raw_counts,
    write,
)

COUNTRIES = "code,name,population\nFR,France,68\nDE,Germany,84\nIT,Italy,59\n"
BY_COUNTRY = """\
select c.name, c.population * 1000000 as people
from seed.countries c
"""


def _rows(root: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(root / ".headwater" / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def _seed(root: Path, name: str, text: str, *, mtime: int = 1) -> None:
    path = write(root, f"seeds/{name}", text)
    os.utime(path, ns=(mtime, mtime))  # a distinct mtime: an edit within one clock tick counts


def _ok(root: Path, *args: str) -> str:
    outcome = hw(root, *args)
    assert outcome.code == 0, outcome
    return " ".join(outcome.output.split())


@pytest.fixture
def root(tmp_path: Path) -> Path:
    write(tmp_path, "headwater.yml", SETTINGS)
    _seed(tmp_path, "countries.csv", COUNTRIES)
    write(tmp_path, "models/marts/by_country.sql", BY_COUNTRY)
    return tmp_path


def test_a_seed_loads_with_inferred_types_and_models_read_it(root: Path) -> None:
    output = _ok(root, "seed")
    assert "seed.countries" in output
    types = _rows(
        root,
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'seed' and table_name = 'countries' and column_name not like '_hw%'",
    )
    assert dict(types) == {"code": "VARCHAR", "name": "VARCHAR", "population": "BIGINT"}
    _ok(root, "run")
    assert _rows(root, "select * from marts.by_country order by 1") == [
        ("France", 68_000_000),
        ("Germany", 84_000_000),
        ("Italy", 59_000_000),
    ]


def test_editing_a_seed_shows_exactly_the_new_content_and_keeps_the_old(root: Path) -> None:
    _ok(root, "run")
    _seed(root, "countries.csv", "code,name,population\nFR,France,69\nES,Spain,48\n", mtime=2)
    _ok(root, "run")
    assert _rows(root, "select code, population from seed.countries order by 1") == [
        ("ES", 48),
        ("FR", 69),
    ]
    assert _rows(root, "select count(*) from seed.countries__history") == [(5,)]
    assert _rows(root, "select name from marts.by_country order by 1") == [("France",), ("Spain",)]
    assert "snapshot unchanged" in _ok(root, "seed")


def test_a_sidecar_pins_types_documents_and_checks_a_seed(root: Path) -> None:
    _seed(root, "codes.csv", "code,label\n007,bond\n042,answer\n")
    write(
        root,
        "seeds/codes.yml",
        """\
        description: Codes with their leading zeros.
        primary_key: [code]
        columns:
          - {name: code, type: varchar, nullable: false}
        rules:
          - {name: codes_unique, type: uniqueness, target: code, threshold: 0}
        """,
    )
    _ok(root, "seed")
    assert _rows(root, "select code, label from seed.codes order by 1") == [
        ("007", "bond"),
        ("042", "answer"),
    ]
    _seed(root, "codes.csv", "code,label\n007,bond\n007,again\n", mtime=2)
    outcome = hw(root, "seed")
    assert outcome.code == 1, outcome  # the error rule failed: the new copy is held back
    assert "codes_unique" in outcome.output
    assert _rows(root, "select code from seed.codes order by 1") == [("007",), ("042",)]


def test_types_are_pinned_once_landed(root: Path) -> None:
    _ok(root, "seed")
    _seed(root, "countries.csv", "code,name,population\nFR,France,many\n", mtime=2)
    _ok(root, "seed")
    reasons = _rows(root, "select _hw_reason from seed.countries__quarantine")
    assert len(reasons) == 1 and "population" in reasons[0][0]
    assert _rows(root, "select count(*) from seed.countries") == [(0,)]


def test_headwater_seed_loads_only_the_seeds(tmp_path: Path) -> None:
    root = probe_project(tmp_path)
    _seed(root, "countries.csv", COUNTRIES)
    output = _ok(root, "seed", "--format", "json")
    assert '"seed.countries"' in output and '"raw.orders"' not in output
    assert raw_counts(root, "orders") == (0, 0)
    _ok(root, "ingest")  # ingest and run load seeds too
    assert raw_counts(root, "orders")[0] > 0


@pytest.mark.parametrize(
    ("files", "names"),
    [
        ({"seeds/ghost.yml": "description: x\n"}, ("seeds/ghost.yml", "no seed file")),
        ({"seeds/1st.csv": "a\n1\n"}, ("seeds/1st.csv", "identifier")),
        ({"seeds/more/countries.csv": "a\n1\n"}, ("countries", "defined twice")),
        ({"seeds/countries.yml": "colums: []\n"}, ("seeds/countries.yml", "columns")),
        (
            {"seeds/countries.yml": "load: merge\n"},
            ("seeds/countries.yml", "load", "primary_key"),
        ),
        (
            {"seeds/countries.yml": "columns:\n  - {name: code, type: strng}\n"},
            ("seeds/countries.yml:2", "columns[0].type", "strng"),
        ),
        ({"models/seed/x.sql": "select 1 as x\n"}, ("models/seed/x.sql", "landed data only")),
        (
            {"contracts/countries.yml": "x: 1\n"},
            ("seeds/countries.csv", "contract 'countries'", "rename"),
        ),
    ],
)
def test_seed_mistakes_are_located(
    root: Path, files: dict[str, str], names: tuple[str, ...]
) -> None:
    for name, text in files.items():
        write(root, name, text)
    if "contracts/countries.yml" in files:  # a valid contract of the same name
        write(
            root,
            "contracts/countries.yml",
            'source: x\nschema_version: "1"\ndelivery: batch\nprivacy_level: internal\n'
            'connector: {kind: files, path: "data/*.csv"}\n',
        )
    assert_clean_error(hw(root, "seed"), *names)


def test_column_lineage_reaches_a_seeds_inferred_columns(root: Path) -> None:
    _ok(root, "run")
    output = _ok(root, "lineage", "marts.by_country.people")
    assert "seed.countries.population" in output
    assert "warning" not in output and "Unknown" not in output
    output = _ok(root, "lineage", "seed.countries.population", "--downstream")
    assert "marts.by_country.people" in output


def test_a_model_test_reads_a_seeds_columns_from_its_file(root: Path) -> None:
    """Nothing loaded yet and no sidecar: the seed's columns are those its file gives, so a
    test's input rows may name only some of them."""
    write(
        root,
        "tests/by_country.yml",
        """\
        scales_population:
          model: marts.by_country
          inputs:
            seed.countries:
              - {name: France, population: 2}
          expected:
            - {name: France, people: 2000000}
        """,
    )
    assert "1 passed" in _ok(root, "test")
