"""The leak hunt: every way a value can leave headwater — `sql`, its exports, the docs site,
error messages, logs, the quarantine's display, the run summary, the audit log — tried for a
restricted column (`full_name`, PII tag `name`) as a role without the grant. The raw value is
found zero times; the same search finds it as a role that has the grant (the hunt can see)."""

from __future__ import annotations

import csv
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.badinput import harness
from tests.badinput.harness import Outcome, write

POLICIES = """\
masks: {name: restricted}
roles:
  analyst: {grants: ["*"]}
  hr: {grants: ["*"], unmask: [name]}
"""
# names in records that break the contract or a rule: they go to quarantine with a reason
BAD_ROWS = [
    "7001,zed.one@example.org,Zebulon Quarantino,DE,not-a-date",
    "7002,zed.two@example.org,Xanthippe Overlongname-Castellanos,FR,2026-01-02 03:04:05",
]
RULES = """\
  - {name: names_short, type: valid_values, target: full_name, max_length: 25, on_fail: quarantine}
  - {name: names_known, type: valid_values, target: full_name, values: [nobody], severity: warn}
"""


@pytest.fixture(scope="module")
def hunted(shop_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("hunt") / "shop"
    shutil.copytree(shop_template, root)
    write(root, "policies.yml", POLICIES)
    contract = root / "contracts" / "customers.yml"
    text = contract.read_text(encoding="utf-8").replace("rules:\n", "rules:\n" + RULES)
    contract.write_text(text, encoding="utf-8")
    extra = "customer_id,email,full_name,country,signed_up_at\n" + "\n".join(BAD_ROWS) + "\n"
    write(root, "data/customers/late.csv", extra)
    yield root


def hw(root: Path, *args: str) -> Outcome:
    """The CLI, wide enough that a table never wraps a value over two lines."""
    return harness.hw(root, *args, env={"COLUMNS": "2000"})


def names(root: Path) -> set[str]:
    """Every full name the sources hold (good and bad records alike)."""
    found = set()
    for path in (root / "data" / "customers").glob("*.csv"):
        with path.open(encoding="utf-8") as file:
            found |= {row["full_name"] for row in csv.DictReader(file) if row["full_name"]}
    # a name as short as an English word ("too": the example's broken records) would be found
    # in any text; a person's name is longer
    return {name for name in found if len(name) >= 6}


def leaked(text: str | bytes, secrets: set[str]) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    flat = re.sub(rb"\s+", b" ", data)  # a terminal may wrap a value over two lines
    return sorted(s for s in secrets if s.encode() in data or s.encode() in flat)


def tables(root: Path) -> list[str]:
    models = [f"{p.parent.name}.{p.stem}" for p in (root / "models").glob("*/*.sql")]
    raw = [f"raw.{p.stem}" for p in (root / "contracts").glob("*.yml")]
    return raw + [f"{t}__quarantine" for t in raw] + models


def test_no_way_out_shows_a_restricted_value(hunted: Path, tmp_path: Path) -> None:
    secrets = names(hunted)
    assert {"Zebulon Quarantino", "Xanthippe Overlongname-Castellanos"} <= secrets
    said: list[tuple[str, Outcome | bytes]] = []

    def say(what: str, outcome: Outcome) -> None:
        said.append((what, outcome))

    # the run summary (table and JSON), its logs with --debug, the quarantine's reasons
    say("run", hw(hunted, "--debug", "run"))
    say("run json", hw(hunted, "run", "--format", "json"))
    say("runs", hw(hunted, "runs", "latest"))
    say("runs json", hw(hunted, "runs", "latest", "--format", "json"))
    say("status", hw(hunted, "status", "--format", "json"))
    say("check", hw(hunted, "check"))
    say("batches", hw(hunted, "batches", "--all"))
    # sql and exports of every table as the role without the grant
    for table in tables(hunted):
        say(f"sql {table}", hw(hunted, "sql", f"select * from {table}", "--role", "analyst"))
        out = tmp_path / f"{table}.csv"
        say(
            f"export {table}",
            hw(hunted, "sql", f"select * from {table}", "--role", "analyst", "--out", str(out)),
        )
        if out.exists():
            said.append((f"file {out.name}", out.read_bytes()))
    # error messages: naming the column, casting it, filtering on a value of it
    probe = sorted(secrets)[0]
    for query in (
        "select full_name from clean.customers",
        "select cast(full_name as int) from raw.customers",
        f"select * from raw.customers where full_name = '{probe}'",
        "select _hw_record from raw.customers__quarantine",
        "select * from raw.nothing_here",
    ):
        say(f"error {query}", hw(hunted, "sql", query, "--role", "analyst"))
    say("lineage", hw(hunted, "lineage", "clean.customers.full_name", "--tags"))
    say("classify", hw(hunted, "classify", "--format", "json"))
    say("docs", hw(hunted, "docs", "--out", str(tmp_path / "site")))
    for path in (tmp_path / "site").rglob("*"):
        if path.is_file():
            said.append((f"site {path.name}", path.read_bytes()))
    say("audit", hw(hunted, "audit", "--format", "json", "--limit", "1000"))

    found = {}
    for what, outcome in said:
        text = outcome if isinstance(outcome, bytes) else outcome.output
        if hits := leaked(text, secrets):
            found[what] = hits[:3]
    assert found == {}, f"restricted values left through: {found}"
    assert len(said) > 40

    # the hunt can see: the role with the grant reads the same names
    granted = hw(
        hunted, "sql", "select full_name from raw.customers", "--role", "hr", "--limit", "100000"
    )
    assert len(leaked(granted.output, secrets)) > 100
