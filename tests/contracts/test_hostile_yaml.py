"""Hostile YAML in every kind of spec file: an alias bomb that would expand to gigabytes is
refused in milliseconds, with the file and line.

Each case runs in a subprocess under a memory limit and a timeout, so a regression fails the
test instead of eating the machine or hanging CI.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.badinput.harness import CLEAN_ORDERS, ORDERS, SETTINGS, probe_project, write

MEMORY = 3 << 30  # address space of the child: far below what the bomb expands to
TIMEOUT = 60


def bomb(key: str, *, indent: str = "") -> str:
    """`key:` holding 10 levels of ten aliases each: 10**10 strings once expanded (>80 GB)."""
    lines = [f"{indent}{key}:"]
    for i in range(10):
        items = ", ".join([f"*a{i - 1}" if i else '"xxxxxxxx"'] * 10)
        lines.append(f"{indent}  a{i}: &a{i} [{items}]")
    return "\n".join(lines) + "\n"


CASES = {
    "settings": ("headwater.yml", SETTINGS + bomb("defaults"), "headwater.yml:"),
    "contract": ("contracts/orders.yml", ORDERS + bomb("description"), "contracts/orders.yml:"),
    "contract_column": (
        "contracts/orders.yml",
        ORDERS.replace("columns:\n", "columns:\n  - name: extra\n" + bomb("pii", indent="    "), 1),
        "contracts/orders.yml:",
    ),
    "sidecar": ("models/clean/orders.yml", bomb("description"), "models/clean/orders.yml:"),
    "model_header": (
        "models/clean/orders.sql",
        CLEAN_ORDERS.replace("kind: table\n", "kind: table\n" + bomb("tags")),
        "models/clean/orders.sql:",
    ),
    "model_test": ("tests/orders.yml", bomb("orders_test"), "tests/orders.yml:"),
}

CHILD = textwrap.dedent(
    """
    import resource, sys
    from pathlib import Path
    resource.setrlimit(resource.RLIMIT_AS, ({memory}, {memory}))
    from headwater.contracts.tests_spec import discover_tests, load_tests
    from headwater.errors import SpecError
    from headwater.project import load_project
    root = Path(sys.argv[1])
    try:
        load_project(root)
        for path in discover_tests(root):
            load_tests(path, root=root)
    except SpecError as err:
        print(err.render())
    """
)


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_alias_bomb_is_refused_quickly_in_every_spec_file(tmp_path: Path, case: str) -> None:
    name, text, where = CASES[case]
    root = probe_project(tmp_path / "probe")
    write(root, name, text)

    done = subprocess.run(
        [sys.executable, "-c", CHILD.format(memory=MEMORY), str(root)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={"PYTHONPATH": ":".join(sys.path)},
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(where), done.stdout
    assert "aliases expand to more than" in done.stdout
