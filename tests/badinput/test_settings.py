"""Bad input: `headwater.yml` broken in every plausible way, run from the CLI.

Each case replaces the probe project's settings (or one field of them) and runs
`headwater run`: no traceback, a non-zero exit, and one message naming `headwater.yml` and,
where there is one, the line and the field.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.badinput.harness import SETTINGS, assert_clean_error, hw, probe_project, write

FILE = "headwater.yml"


@dataclass(frozen=True)
class Case:
    id: str
    text: str | bytes | None  # None: headwater.yml is a folder
    names: tuple[str, ...]  # what the message must name besides the file
    code: int | None = None
    env: dict[str, str] = field(default_factory=dict)


def _with(key: str, value: str) -> str:
    """The probe settings with `key:` set to `value` (added when absent)."""
    lines = [line for line in SETTINGS.splitlines() if not line.startswith(f"{key}:")]
    return "\n".join([*lines, f"{key}: {value}"]) + "\n"


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: connecting is refused


# 10**5 values expanded: past the bound, yet harmless in process if the bound regressed
# (the gigabyte bomb runs under a memory limit in tests/contracts/test_hostile_yaml.py)
BOMB = "name: probe\ndefaults:\n" + "".join(
    f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}" if i else "x"] * 10) + "]\n" for i in range(6)
)

CASES = [
    # the file itself
    Case("empty_file", "", (f"{FILE}:1", "name", "required field is missing"), code=3),
    Case("only_a_comment", "# nothing yet\n", (f"{FILE}:1", "name"), code=3),
    Case("a_list", "- name\n- probe\n", (f"{FILE}:1", "expected a mapping"), code=3),
    Case("a_scalar", "just some words\n", (f"{FILE}:1", "expected a mapping"), code=3),
    Case("a_folder", None, (FILE, "is a folder"), code=3),
    Case("non_utf8", SETTINGS.encode() + b"# caf\xe9\n", (f"{FILE}:6", "not UTF-8"), code=3),
    Case("latin1_value", b"name: caf\xe9\n", (f"{FILE}:1", "0xe9", "not UTF-8"), code=3),
    Case("binary_junk", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", (f"{FILE}:1", "UTF-8"), code=3),
    Case("nul_bytes", "name: probe\x00\x01\n", (f"{FILE}:1", "invalid YAML"), code=3),
    Case("tab_indent", "name: probe\ndefaults:\n\tretries: 2\n", (f"{FILE}:3",), code=3),
    Case("unclosed_quote", 'name: "probe\nengine: duckdb\n', (FILE, "invalid YAML"), code=3),
    Case("unclosed_flow", "name: probe\ndefaults: {retries: 2\n", (FILE, "invalid YAML"), code=3),
    Case("bad_indent", "name: probe\n  engine: duckdb\n", (f"{FILE}:2", "invalid YAML"), code=3),
    Case("duplicate_key", SETTINGS + "name: again\n", (f"{FILE}:6", "duplicate field 'name'")),
    Case("python_tag", "name: !!python/object/apply:os.system [ls]\n", (f"{FILE}:1",), code=3),
    Case("alias_bomb", BOMB, (FILE, "aliases expand"), code=3),
    Case("alias_loop", "name: probe\ndefaults: &d [*d]\n", (FILE, "aliases expand"), code=3),
    Case("anchor_to_a_map", "name: &n {a: 1}\n", (f"{FILE}:1", "name"), code=3),
    # name
    Case("name_missing", "engine: duckdb\n", (f"{FILE}:1", "name", "add `name:`"), code=3),
    Case("name_null", "name:\n", (f"{FILE}:1", "name"), code=3),
    Case("name_empty", "name: ''\n", (f"{FILE}:1", "name"), code=3),
    Case("name_spaces", "name: my shop!\n", (f"{FILE}:1", "name", "my shop!"), code=3),
    Case("name_number", "name: 42\n", (f"{FILE}:1", "name"), code=3),
    Case("name_list", "name: [a, b]\n", (f"{FILE}:1", "name"), code=3),
    Case("name_map", "name: {a: 1}\n", (f"{FILE}:1", "name"), code=3),
    Case("name_huge", "name: " + "x" * 100_000 + "\n", (f"{FILE}:1", "name"), code=3),
    # unknown keys
    Case("misspelt_key", _with("wharehouse", "w.db"), (f"{FILE}:6", "did you mean 'warehouse'")),
    Case("unknown_key", _with("colour", "blue"), (f"{FILE}:6", "unknown field 'colour'")),
    # engine
    Case("engine_misspelt", _with("engine", "duckbd"), (f"{FILE}:5", "engine", "'duckdb'")),
    Case("engine_number", _with("engine", "3"), (f"{FILE}:5", "engine"), code=3),
    Case("engine_not_available", _with("engine", "postgres"), (f"{FILE}:5", "engine", "postgres")),
    # catalog
    Case("catalog_under_dev_null", _with("catalog", "/dev/null/c.db"), (f"{FILE}:5", "catalog")),
    Case("catalog_is_a_folder", _with("catalog", "data"), (f"{FILE}:5", "catalog", "folder")),
    Case("catalog_in_proc", _with("catalog", "/proc/hw/c.db"), (f"{FILE}:5", "catalog")),
    Case("catalog_scheme", _with("catalog", "mongodb://h/db"), (f"{FILE}:5", "mongodb://")),
    Case("catalog_empty", _with("catalog", "''"), (f"{FILE}:5", "catalog"), code=3),
    Case("catalog_null", _with("catalog", "null"), (f"{FILE}:5", "catalog"), code=3),
    Case("catalog_list", _with("catalog", "[a, b]"), (f"{FILE}:5", "catalog"), code=3),
    Case("catalog_unset_var", _with("catalog", "${HW_NOT_SET_X}/c.db"), ("HW_NOT_SET_X",)),
    Case(
        "catalog_postgres_refused",
        _with("catalog", f"postgresql://hw:pw@127.0.0.1:{_refused_port()}/hw"),
        (f"{FILE}:5", "catalog", "refused"),
    ),
    Case(
        "catalog_postgres_bad_port",
        _with("catalog", "postgresql://u@h:port/db"),
        (f"{FILE}:5", "port is not a number"),
    ),
    # lake
    Case("lake_under_dev_null", _with("lake", "/dev/null/lake"), (f"{FILE}:5", "lake")),
    Case("lake_is_a_file", _with("lake", "headwater.yml"), (f"{FILE}:5", "lake", "is a file")),
    Case("lake_in_proc", _with("lake", "/proc/hw-lake"), (f"{FILE}:5", "lake")),
    Case("lake_scheme", _with("lake", "ftp://host/lake"), (f"{FILE}:5", "lake", "ftp://")),
    Case("lake_empty", _with("lake", "''"), (f"{FILE}:5", "lake"), code=3),
    Case("lake_map", _with("lake", "{path: x}"), (f"{FILE}:5", "lake"), code=3),
    Case("lake_unset_var", _with("lake", "${HW_NOT_SET_Y}/lake"), ("HW_NOT_SET_Y", "lake")),
    # warehouse
    Case("warehouse_is_a_folder", _with("warehouse", "data"), (f"{FILE}:5", "warehouse")),
    Case("warehouse_under_dev_null", _with("warehouse", "/dev/null/w.db"), (f"{FILE}:5",)),
    Case("warehouse_dev_null", _with("warehouse", "/dev/null"), (f"{FILE}:5", "warehouse")),
    Case("warehouse_in_proc", _with("warehouse", "/proc/w.duckdb"), (f"{FILE}:5", "warehouse")),
    Case("warehouse_not_duckdb", _with("warehouse", "headwater.yml"), (f"{FILE}:5", "warehouse")),
    Case("warehouse_url", _with("warehouse", "s3://b/w.duckdb"), (f"{FILE}:5", "s3://")),
    Case("warehouse_number", _with("warehouse", "5"), (f"{FILE}:5", "warehouse"), code=3),
    # defaults
    Case("defaults_list", _with("defaults", "[1, 2]"), (f"{FILE}:6", "defaults"), code=3),
    Case("defaults_scalar", _with("defaults", "fast"), (f"{FILE}:6", "defaults"), code=3),
    Case(
        "defaults_misspelt",
        _with("defaults", "{retires: 2}"),
        (f"{FILE}:6", "defaults", "did you mean 'retries'"),
        code=3,
    ),
    Case("retries_negative", _with("defaults", "{retries: -1}"), (f"{FILE}:6", "retries"), code=3),
    Case("retries_word", _with("defaults", "{retries: many}"), (f"{FILE}:6", "retries"), code=3),
    Case("retries_huge", _with("defaults", "{retries: 1e300}"), (f"{FILE}:6", "retries"), code=3),
    Case("retries_float", _with("defaults", "{retries: 1.5}"), (f"{FILE}:6", "retries"), code=3),
    Case("timeout_word", _with("defaults", "{timeout: soon}"), (f"{FILE}:6", "timeout"), code=3),
    Case("timeout_number", _with("defaults", "{timeout: 30}"), (f"{FILE}:6", "timeout"), code=3),
    Case("threads_zero", _with("defaults", "{threads: 0}"), (f"{FILE}:6", "threads"), code=3),
    Case("threads_huge", _with("defaults", "{threads: 99999}"), (f"{FILE}:6", "threads"), code=3),
    # private
    Case("private_word", _with("private", "maybe"), (f"{FILE}:6", "private"), code=3),
    Case("private_list", _with("private", "[yes]"), (f"{FILE}:6", "private"), code=3),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_settings_give_one_located_line(tmp_path: Path, case: Case) -> None:
    root = probe_project(tmp_path / "probe")
    if case.text is None:
        (root / FILE).unlink()
        (root / FILE).mkdir()
    else:
        write(root, FILE, case.text)

    outcome = hw(root, "run", env=case.env)

    assert_clean_error(outcome, FILE, *case.names, code=case.code)
    assert outcome.output.startswith("error: ") and len(outcome.output) < 600, outcome


def test_there_are_enough_settings_cases() -> None:
    assert len(CASES) >= 35
    assert len({c.id for c in CASES}) == len(CASES)
