"""The bad-input suite's harness: a small project, one thing broken per case, the CLI in process.

Every case asserts what a user sees: no traceback, a message naming the file (and the line,
field or record where there is one), and, for data cases, that every record read is either
landed in raw or quarantined with its reason.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
from typer.testing import CliRunner

from headwater.cli.main import app

SETTINGS = """\
name: probe
engine: duckdb
catalog: .headwater/catalog.db
lake: .headwater/lake
warehouse: .headwater/warehouse.duckdb
"""

ORDERS = """\
source: shop.orders
schema_version: "1"
delivery: batch
privacy_level: internal
owner: data@example.com
connector: {kind: files, path: "data/orders/*.csv", format: csv}
primary_key: [order_id]
evolution: evolve
columns:
  - {name: order_id, type: bigint, nullable: false}
  - {name: customer_id, type: bigint}
  - {name: status, type: varchar}
  - {name: amount, type: "decimal(12,2)"}
  - {name: ordered_at, type: timestamp}
rules:
  - {name: orders_id_not_null, type: not_null, target: order_id}
"""

EVENTS = """\
source: shop.events
schema_version: "1"
delivery: batch
privacy_level: internal
owner: data@example.com
connector: {kind: files, path: "data/events/*.jsonl", format: jsonl}
evolution: evolve
columns:
  - {name: event_id, type: bigint, nullable: false}
  - {name: kind, type: varchar}
  - {name: occurred_at, type: timestamp}
"""

CLEAN_ORDERS = """\
/* headwater
kind: table
grain: [order_id]
*/
select order_id, customer_id, status, amount, ordered_at
from raw.orders
"""

CLEAN_ORDERS_SIDECAR = """\
description: Orders.
rules:
  - {name: clean_orders_unique, type: uniqueness, target: order_id, threshold: 0}
"""

MARTS_DAILY = """\
select cast(ordered_at as date) as day, count(*) as orders, sum(amount) as revenue
from clean.orders
group by 1
"""

ORDERS_HEADER = "order_id,customer_id,status,amount,ordered_at"
# two files of five good orders each: a case breaks one of them, the other must still land
ORDERS_FILES = {
    "orders_1.csv": [
        "1,10,paid,12.50,2026-10-01 10:00:00",
        "2,11,paid,7.00,2026-10-01 11:00:00",
        "3,12,shipped,3.25,2026-10-02 09:30:00",
        "4,10,placed,99.99,2026-10-02 12:00:00",
        "5,13,paid,1.00,2026-10-03 08:15:00",
    ],
    "orders_2.csv": [
        "6,14,paid,5.00,2026-10-04 10:00:00",
        "7,15,paid,6.00,2026-10-04 11:00:00",
        "8,16,cancelled,7.00,2026-10-05 09:30:00",
        "9,17,paid,8.00,2026-10-05 12:00:00",
        "10,18,paid,9.00,2026-10-06 08:15:00",
    ],
}
EVENTS_LINES = [
    '{"event_id": 1, "kind": "view", "occurred_at": "2026-10-01 10:00:00"}',
    '{"event_id": 2, "kind": "click", "occurred_at": "2026-10-01 10:01:00"}',
    '{"event_id": 3, "kind": "view", "occurred_at": "2026-10-02 10:00:00"}',
]

runner = CliRunner()


def probe_project(root: Path) -> Path:
    """Write the small, valid project every case starts from; returns its folder."""
    files = {
        "headwater.yml": SETTINGS,
        "contracts/orders.yml": ORDERS,
        "contracts/events.yml": EVENTS,
        "models/clean/orders.sql": CLEAN_ORDERS,
        "models/clean/orders.yml": CLEAN_ORDERS_SIDECAR,
        "models/marts/orders_daily.sql": MARTS_DAILY,
        "data/events/events_1.jsonl": "\n".join(EVENTS_LINES) + "\n",
    }
    for name, lines in ORDERS_FILES.items():
        files[f"data/orders/{name}"] = "\n".join([ORDERS_HEADER, *lines]) + "\n"
    for name, text in files.items():
        write(root, name, text)
    return root


def write(root: Path, name: str, text: str | bytes) -> Path:
    """Write a project file (text is dedented; bytes are written as they are)."""
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@dataclass(frozen=True)
class Outcome:
    """What a command did, as its user sees it."""

    code: int
    output: str  # stdout and stderr together, as a terminal shows them
    crashed: BaseException | None  # an exception that escaped the command (never expected)

    def __str__(self) -> str:
        return f"exit {self.code}\n{self.output}\n{self.crashed!r}"


def csv_contract(source: str, **columns: str) -> str:
    """A batch contract landing `data/*.csv` with these columns (name=type), the first one
    required."""
    lines = [
        f"  - {{name: {name}, type: {kind}{', nullable: false' if i == 0 else ''}}}"
        for i, (name, kind) in enumerate(columns.items())
    ]
    head = (
        f'source: {source}\nschema_version: "1"\ndelivery: batch\nprivacy_level: internal\n'
        'connector: {kind: files, path: "data/*.csv", format: csv}\ncolumns:\n'
    )
    return head + "\n".join(lines) + "\n"


def hw(root: Path, *args: str, env: dict[str, str] | None = None) -> Outcome:
    """Run `headwater ARGS -p ROOT` in process, 80 columns wide as a CI log is."""
    result = runner.invoke(
        app, [*args, "-p", str(root)], env={"COLUMNS": "80", **(env or {})}, catch_exceptions=True
    )
    crashed = result.exception
    if isinstance(crashed, SystemExit):
        crashed = None
    return Outcome(result.exit_code, result.output, crashed)


def assert_clean_error(outcome: Outcome, *names: str, code: int | None = None) -> None:
    """The command failed with one clear message naming each of `names` (file, line, field)
    and no traceback."""
    assert_no_traceback(outcome)
    assert outcome.code != 0, f"expected a failure:\n{outcome}"
    if code is not None:
        assert outcome.code == code, outcome
    for name in names:
        assert mentions(outcome, name), f"{name!r} not in the message:\n{outcome}"


def mentions(outcome: Outcome, text: str) -> bool:
    """Whether the output says `text`, however the terminal wrapped it."""
    return "".join(text.split()) in "".join(outcome.output.split())


def assert_no_traceback(outcome: Outcome) -> None:
    """No exception escaped, and no Python traceback or exception text of headwater's own is
    shown (a user's Python model's traceback is theirs, and shown on purpose)."""
    assert outcome.crashed is None, f"an exception escaped:\n{outcome}"
    assert "Traceback" not in outcome.output, outcome
    assert not re.search(r"\b\w+(Error|Exception): ", _ours(outcome.output)), outcome


def _ours(text: str) -> str:
    """The output less headwater's `error:` and `failed <model>:` lines (which may quote an
    engine's or the user's words) and the tracebacks of user code it reports
    (`traceback (most recent call last):` … `KeyError: x`)."""
    kept, in_user_traceback = [], False
    for line in text.splitlines():
        if "traceback (most recent call last):" in line:
            in_user_traceback = True
        elif in_user_traceback and re.match(r"\w+(Error|Exception|Exit)\b", line):
            in_user_traceback = False
        elif not in_user_traceback and not line.startswith(("error:", "failed ")):
            kept.append(line)
    return "\n".join(kept)


def raw_counts(root: Path, table: str) -> tuple[int, int]:
    """Rows now in raw.<table> and in its quarantine, read from the warehouse's raw views."""
    path = root / ".headwater" / "warehouse.duckdb"
    with duckdb.connect(str(path), read_only=True) as conn:
        counts = []
        for name in (table, f"{table}__quarantine"):
            exists = conn.execute(
                "select count(*) from duckdb_views() where schema_name = 'raw' and view_name = ?"
                " union all "
                "select count(*) from duckdb_tables() where schema_name = 'raw' and table_name = ?",
                [name, name],
            ).fetchall()
            present = sum(int(r[0]) for r in exists) > 0
            counts.append(
                int(conn.execute(f'select count(*) from raw."{name}"').fetchone()[0])
                if present
                else 0
            )
    return counts[0], counts[1]


def assert_reconciled(root: Path, table: str, *, landed: int, quarantined: int) -> None:
    """Every record read is accounted for: `landed` rows in raw, `quarantined` set aside."""
    got = raw_counts(root, table)
    assert got == (landed, quarantined), f"raw.{table}: (landed, quarantined) = {got}"


Mutation = Callable[[Path], object]
