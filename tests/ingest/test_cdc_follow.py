"""CDC end to end, as a user runs it: a random workload on a real PostgreSQL while
`headwater ingest --follow` is killed with SIGKILL and restarted, then a model that applies the
change log; the clean table equals the source table row by row."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from headwater.zones.lake import Lake
from tests import postgres
from tests.ingest.raw import rows

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
HEADWATER = [sys.executable, "-m", "headwater"]
NO_KEY = -(10**18)  # a truncate's key, to sort with the others
MODEL = """/* headwater
kind: incremental_by_key
unique_key: [id]
updated_column: _hw_lsn
deleted_column: deleted
truncated_column: truncated
*/
select id, amount, status, note, _hw_op = 'd' as deleted, _hw_op = 't' as truncated, _hw_lsn
from raw.orders
"""


def project(folder: Path, url: str) -> Path:
    (folder / "contracts").mkdir(parents=True)
    (folder / "models" / "clean").mkdir(parents=True)
    (folder / "headwater.yml").write_text("name: cdc\n", encoding="utf-8")
    spec = {
        "source": "shop.orders",
        "schema_version": 1,
        "delivery": "stream",
        "privacy_level": "internal",
        "primary_key": ["id"],
        "connector": {
            "kind": "postgres_cdc",
            "url": url,
            "table": "public.orders",
            "max_rows": 400,
            "max_wait": "200ms",
        },
        "columns": [
            {"name": "id", "type": "bigint", "nullable": False},
            {"name": "amount", "type": "decimal(10,2)"},
            {"name": "status", "type": "varchar"},
        ],
    }
    (folder / "contracts" / "orders.yml").write_text(json.dumps(spec), encoding="utf-8")
    (folder / "models" / "clean" / "orders.sql").write_text(MODEL, encoding="utf-8")
    return folder


class Workload:
    """Random single-row inserts, updates and deletes, alone or several to a transaction, some
    transactions rolled back; midway a column is added. Counts the changes it committed."""

    def __init__(self, engine: sa.Engine, seed: int):
        self.engine = engine
        self.chance = random.Random(seed)
        self.ids: list[int] = []
        self.next_id = 1
        self.changes = 0
        self.noted = False
        self.truncated = False
        self.stop = threading.Event()

    def seed_rows(self, count: int) -> None:
        with self.engine.begin() as conn:
            for _ in range(count):
                self._insert(conn)
        self.changes = 0  # these are the snapshot's

    def run(self, seconds: float) -> None:
        ended = time.monotonic() + seconds
        while time.monotonic() < ended and not self.stop.is_set():
            if not self.noted and time.monotonic() > ended - seconds / 2:
                with self.engine.begin() as conn:
                    conn.execute(sa.text("ALTER TABLE orders ADD COLUMN note text"))
                self.noted = True
            if not self.truncated and time.monotonic() > ended - seconds / 3:
                with self.engine.begin() as conn:
                    conn.execute(sa.text("TRUNCATE orders"))
                self.truncated, self.ids = True, []
                self.changes += 1
            statements = self.chance.randint(1, 5)
            rollback = self.chance.random() < 0.15
            conn = self.engine.connect()
            tx = conn.begin()
            ids, next_id, done = list(self.ids), self.next_id, 0
            for _ in range(statements):
                done += self._one(conn)
            if rollback:
                tx.rollback()
                self.ids, self.next_id = ids, next_id
            else:
                tx.commit()
                self.changes += done
            conn.close()
            time.sleep(self.chance.uniform(0, 0.01))

    def _one(self, conn: sa.Connection) -> int:
        roll = self.chance.random()
        if roll < 0.4 or len(self.ids) < 5:
            return self._insert(conn)
        key = self.chance.choice(self.ids)
        if roll < 0.85:
            note = ", note = :note" if self.noted else ""
            conn.execute(
                sa.text(f"UPDATE orders SET amount = :a, status = :s{note} WHERE id = :id"),
                {
                    "a": self.chance.randint(0, 99999) / 100,
                    "s": f"s{roll:.2f}",
                    "id": key,
                    "note": f"n{key}",
                },
            )
            return 1
        conn.execute(sa.text("DELETE FROM orders WHERE id = :id"), {"id": key})
        self.ids.remove(key)
        return 1

    def _insert(self, conn: sa.Connection) -> int:
        conn.execute(
            sa.text("INSERT INTO orders (id, amount, status) VALUES (:id, :a, 'new')"),
            {"id": self.next_id, "a": self.next_id / 100},
        )
        self.ids.append(self.next_id)
        self.next_id += 1
        return 1


def worker(root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*HEADWATER, "ingest", "--follow", "-p", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def lake_of(root: Path) -> Lake:
    return Lake(f"sqlite:///{root / '.headwater' / 'catalog.db'}", ".headwater/lake", root)


def raw_count(root: Path) -> int:
    lake = lake_of(root)
    return lake.row_count("raw.orders") if lake.table("raw.orders") is not None else 0


def confirmed(engine: sa.Engine) -> int | None:
    with engine.connect() as conn:
        found = conn.execute(
            sa.text(
                "SELECT pg_wal_lsn_diff(confirmed_flush_lsn, '0/0')::bigint "
                "FROM pg_replication_slots WHERE slot_name = 'headwater_public__orders'"
            )
        ).first()
    return None if found is None or found[0] is None else int(found[0])


def changes_after(engine: sa.Engine, point: int) -> list[tuple[int, str, int]]:
    """(lsn, op, id) of every change committed after `point`, as PostgreSQL's own
    test_decoding slot (made before the workload) saw them: what raw must hold, once each."""
    ops = {"INSERT": "c", "UPDATE": "u", "DELETE": "d"}
    out: list[tuple[int, str, int]] = []
    pending: list[tuple[int, str, int]] = []
    with engine.connect() as conn:
        found = conn.execute(
            sa.text(
                "SELECT pg_wal_lsn_diff(lsn, '0/0')::bigint, data "
                "FROM pg_logical_slot_peek_changes('verify', NULL, NULL)"
            )
        )
        for lsn, data in found:
            if data.startswith("BEGIN"):
                pending = []
            elif data.startswith("COMMIT"):
                if lsn > point:
                    out.extend(pending)
            elif data.startswith("table public.orders: TRUNCATE"):
                pending.append((int(lsn), "t", NO_KEY))
            elif data.startswith("table public.orders: "):
                op = data.split(": ")[1]
                key = re.search(r"id\[bigint\]:(-?\d+)", data)
                assert key is not None, data
                pending.append((int(lsn), ops[op], int(key.group(1))))
    return out


def test_a_random_workload_replicates_exactly_while_the_worker_is_killed(
    pg_url: str, tmp_path: Path
) -> None:
    engine = sa.create_engine(pg_url, pool_size=2)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE orders (id bigint PRIMARY KEY, amount numeric(10,2), status text)"
            )
        )
    with engine.begin() as conn:
        conn.execute(
            sa.text("SELECT pg_create_logical_replication_slot('verify', 'test_decoding')")
        )
    root = project(tmp_path / "p", pg_url)
    load = Workload(engine, seed=int(os.environ.get("CDC_SEED", "7")))
    load.seed_rows(200)
    feeding = threading.Thread(target=load.run, args=(10.0,), daemon=True)
    feeding.start()  # the snapshot is taken while transactions commit
    seen_confirmed: list[int] = []
    chance = random.Random(11)
    for _ in range(3):
        process = worker(root)
        until = time.monotonic() + chance.uniform(2.0, 3.5)
        while time.monotonic() < until:
            value = confirmed(engine)
            if value is not None and (not seen_confirmed or value != seen_confirmed[-1]):
                seen_confirmed.append(value)
            time.sleep(0.1)
        process.kill()
        process.wait()
    feeding.join()
    with engine.begin() as conn:  # the last change: once it is in raw, so is every other
        conn.execute(sa.text("INSERT INTO orders (id, status) VALUES (-1, 'last')"))
    process = worker(root)
    deadline = time.monotonic() + 60
    lake = lake_of(root)
    while time.monotonic() < deadline:
        if lake.table("raw.orders") is not None and rows(lake, "raw.orders", "id").count((-1,)):
            break
        time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err

    landed = rows(lake, "raw.orders", "_hw_commit_lsn, _hw_lsn, _hw_op, id")
    snapshot = [r for r in landed if r[2] == "r"]
    point = snapshot[0][0]
    assert len({r[3] for r in snapshot}) == len(snapshot)  # each row of the snapshot once
    changes = sorted((r[1], r[2], NO_KEY if r[3] is None else r[3]) for r in landed if r[2] != "r")
    assert changes == sorted(changes_after(engine, point))  # each change once, none missing
    # the slot was confirmed batch by batch, and never past what the lake holds
    lake_lsn = lake.snapshots("raw.orders")[-1].properties["checkpoint"]["lsn"]
    high, _, low = lake_lsn.partition("/")
    assert len(seen_confirmed) >= 3 and seen_confirmed == sorted(seen_confirmed)
    assert seen_confirmed[-1] <= (int(high, 16) << 32 | int(low, 16))

    built = subprocess.run(
        [*HEADWATER, "build", "-p", str(root)], capture_output=True, text=True, check=False
    )
    assert built.returncode == 0, built.stdout + built.stderr
    with duckdb.connect(str(root / ".headwater" / "warehouse.duckdb"), read_only=True) as db:
        clean = db.sql("select id, amount, status, note from clean.orders order by id").fetchall()
    with engine.connect() as conn:
        source = [
            tuple(r)
            for r in conn.execute(
                sa.text("SELECT id, amount, status, note FROM orders ORDER BY id")
            )
        ]
    assert clean == source  # row by row, the added column included
    assert any(r[3] is not None for r in source)
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_drop_replication_slot('verify')"))
        conn.commit()
    engine.dispose()


def test_an_unreachable_database_is_named_and_retried_with_backoff(tmp_path: Path) -> None:
    pytest.importorskip("psycopg2", reason="the postgres extra is not installed")
    dead = f"postgresql://postgres@127.0.0.1:{postgres._free_port()}/postgres"
    root = project(tmp_path / "p", dead)
    process = worker(root)
    time.sleep(6)  # tries at once, then after ~1 s and ~2 s
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert err.count("cannot reach PostgreSQL at postgresql://postgres@127.0.0.1:") >= 2, err
    assert "restarting with backoff" in err
