"""PostgreSQL change data capture on a real cluster (wal_level=logical): the snapshot at the
slot's starting point, then committed changes in commit order, the slot confirmed only after
the landing, and every missing prerequisite named with its fix."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from headwater.contracts import Contract
from headwater.errors import SourceError, TransientSourceError
from headwater.ingest import ingest
from headwater.zones.lake import Lake
from tests import postgres
from tests.ingest.raw import orders_contract, rows

pytestmark = pytest.mark.postgres
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
COLUMNS = [
    {"name": "id", "type": "bigint", "nullable": False},
    {"name": "amount", "type": "decimal(10,2)"},
    {"name": "status", "type": "varchar"},
    {"name": "paid", "type": "boolean"},
]


@pytest.fixture
def source(pg_url: str, request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for slot in conn.execute(sa.text("SELECT slot_name FROM pg_replication_slots")):
            conn.execute(sa.text("SELECT pg_drop_replication_slot(:s)"), {"s": slot[0]})
        conn.execute(sa.text("DROP PUBLICATION IF EXISTS headwater_public__orders"))
        conn.execute(sa.text("DROP TABLE IF EXISTS orders"))
        conn.execute(
            sa.text(
                "CREATE TABLE orders (id bigint PRIMARY KEY, amount numeric(10,2), "
                "status text, paid boolean)"
            )
        )
    yield engine
    engine.dispose()


def sql(engine: sa.Engine, *statements: str) -> None:
    with engine.connect() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))


def contract(url: str, **connector: Any) -> Contract:
    return orders_contract(
        {"kind": "postgres_cdc", "url": url, "table": "public.orders", **connector},
        columns=COLUMNS,
        delivery="stream",
        primary_key=["id"],
    )


def confirmed(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT confirmed_flush_lsn::text FROM pg_replication_slots")
        ).first()
    return row[0] if row else None


def test_a_snapshot_then_committed_changes_in_commit_order(
    pg_url: str, source: sa.Engine, lake: Lake, tmp_path: Path
) -> None:
    sql(source, "INSERT INTO orders SELECT g, g * 1.5, 'new', false FROM generate_series(1, 5) g")
    spec = contract(pg_url)
    first = ingest(spec, root=tmp_path, lake=lake, now=NOW)
    assert first.rows == 5 and "snapshot" in first.read
    got = rows(lake, "raw.orders", "id, amount, status, paid, _hw_op, _hw_lsn")
    assert [r[4] for r in got] == ["r"] * 5
    assert {r[5] for r in got} == {0}  # older than any change streamed after the snapshot
    assert got[0][:4] == (1, 1.5, "new", False)
    lsn = lake.snapshots("raw.orders")[-1].properties["checkpoint"]["lsn"]

    sql(
        source,
        "INSERT INTO orders VALUES (6, 9.99, 'new', false)",
        "UPDATE orders SET status = 'paid', paid = true WHERE id = 1",
        "DELETE FROM orders WHERE id = 2",
        # one transaction of two statements, and one rolled back
        "BEGIN; UPDATE orders SET amount = 0 WHERE id = 3; "
        "UPDATE orders SET amount = 1 WHERE id = 3; COMMIT",
        "BEGIN; INSERT INTO orders VALUES (99, 1, 'never', false); ROLLBACK",
        "ALTER TABLE orders ADD COLUMN note text",
        "UPDATE orders SET note = 'hello' WHERE id = 4",
        "TRUNCATE orders",
    )
    second = ingest(spec, root=tmp_path, lake=lake, now=NOW)
    assert (second.rows, second.quarantined) == (7, 0), second
    changes = rows(
        lake,
        "raw.orders",
        "_hw_commit_lsn, _hw_lsn, _hw_op, id, amount, note, _hw_before",
    )
    changes = sorted([c for c in changes if c[2] != "r"], key=lambda c: (c[0], c[1]))
    assert [(c[2], c[3]) for c in changes] == [
        ("c", 6),
        ("u", 1),
        ("d", 2),
        ("u", 3),  # the two updates of one transaction keep their order
        ("u", 3),
        ("u", 4),
        ("t", None),
    ]
    assert [c[4] for c in changes if c[3] == 3] == [0, 1]
    assert [c[5] for c in changes if c[3] == 4] == ["hello"]  # the added column arrived
    assert 99 not in [c[3] for c in changes]
    # the slot was told only what landed: its confirmed LSN is the lake's
    new_lsn = lake.snapshots("raw.orders")[-1].properties["checkpoint"]["lsn"]
    assert new_lsn != lsn and confirmed(source) == new_lsn
    # nothing new: no commit
    before = len(lake.snapshots("raw.orders"))
    assert ingest(spec, root=tmp_path, lake=lake, now=NOW).batch_id is None
    assert len(lake.snapshots("raw.orders")) == before


def test_a_run_that_never_landed_its_snapshot_begins_again(
    pg_url: str, source: sa.Engine, lake: Lake, tmp_path: Path
) -> None:
    """A slot without a landed snapshot (the first run was killed) is made again: the rows
    land once, as of the new slot."""
    sql(source, "INSERT INTO orders VALUES (1, 1, 'a', false)")
    with source.connect() as conn:
        conn.execute(sa.text("CREATE PUBLICATION headwater_public__orders FOR TABLE orders"))
        conn.execute(
            sa.text(
                "SELECT pg_create_logical_replication_slot('headwater_public__orders', 'pgoutput')"
            )
        )
    sql(source, "INSERT INTO orders VALUES (2, 2, 'b', false)")
    assert ingest(contract(pg_url), root=tmp_path, lake=lake, now=NOW).rows == 2
    sql(source, "UPDATE orders SET status = 'c' WHERE id = 2")
    assert ingest(contract(pg_url), root=tmp_path, lake=lake, now=NOW).rows == 1
    assert [r[0] for r in rows(lake, "raw.orders", "_hw_op")] == ["r", "r", "u"]


def test_missing_prerequisites_are_named_with_their_fix(
    pg_url: str, source: sa.Engine, lake: Lake, tmp_path: Path
) -> None:
    sql(
        source,
        "CREATE TABLE IF NOT EXISTS keyless (id bigint, note text)",
        "DROP ROLE IF EXISTS reader",
        "CREATE ROLE reader LOGIN",
        "GRANT SELECT ON orders TO reader",
    )
    keyless = orders_contract(
        {"kind": "postgres_cdc", "url": pg_url, "table": "public.keyless"}, delivery="stream"
    )
    with pytest.raises(SourceError) as err:
        ingest(keyless, root=tmp_path, lake=lake, now=NOW)
    assert "no primary key" in err.value.message and "REPLICA IDENTITY FULL" in str(err.value.hint)
    as_reader = pg_url.replace("postgres@", "reader@")
    with pytest.raises(SourceError) as err:
        ingest(contract(as_reader), root=tmp_path, lake=lake, now=NOW)
    assert "may not replicate" in err.value.message
    assert "ALTER ROLE reader WITH REPLICATION" in str(err.value.hint)
    missing = orders_contract(
        {"kind": "postgres_cdc", "url": pg_url, "table": "public.nope"}, delivery="stream"
    )
    with pytest.raises(SourceError, match=r"public\.nope does not exist"):
        ingest(missing, root=tmp_path, lake=lake, now=NOW)


def test_wal_level_not_logical_is_named_with_its_fix(lake: Lake, tmp_path: Path) -> None:
    postgres.require()
    pytest.importorskip("psycopg2", reason="the postgres extra is not installed")
    with postgres.cluster(wal_level="replica") as url:
        sql(sa.create_engine(url, isolation_level="AUTOCOMMIT"), "CREATE TABLE orders (id int)")
        with pytest.raises(SourceError) as err:
            ingest(contract(url), root=tmp_path, lake=lake, now=NOW)
    assert "wal_level = replica" in err.value.message
    assert "ALTER SYSTEM SET wal_level = logical" in str(err.value.hint)


def test_an_unreachable_server_is_retryable_and_named(lake: Lake, tmp_path: Path) -> None:
    pytest.importorskip("psycopg2", reason="the postgres extra is not installed")
    url = f"postgresql://postgres@127.0.0.1:{postgres._free_port()}/postgres"
    with pytest.raises(TransientSourceError) as err:
        ingest(contract(url, connect_timeout="2s"), root=tmp_path, lake=lake, now=NOW)
    assert "cannot reach PostgreSQL at postgresql://postgres@127.0.0.1:" in err.value.message


def test_status_shows_the_bytes_of_wal_the_slot_holds(
    pg_url: str, source: sa.Engine, tmp_path: Path
) -> None:
    import json
    import subprocess
    import sys

    root = tmp_path / "p"
    (root / "contracts").mkdir(parents=True)
    (root / "headwater.yml").write_text("name: cdc\n", encoding="utf-8")
    spec = contract(pg_url).model_dump(mode="json", exclude={"name", "zone"})
    (root / "contracts" / "orders.yml").write_text(json.dumps(spec), encoding="utf-8")

    def status() -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "headwater", "status", "-p", str(root), "--format", "json"],
            capture_output=True,
            text=True,
            check=True,
        )
        streams = json.loads(done.stdout)["streams"]
        assert [s["table"] for s in streams] == ["raw.orders"]
        return dict(streams[0])

    assert status()["position"] == {}  # nothing landed, no slot yet
    ingest_cli = [sys.executable, "-m", "headwater", "ingest", "-p", str(root)]
    subprocess.run(ingest_cli, capture_output=True, check=True)
    sql(source, *[f"INSERT INTO orders VALUES ({i}, 1, 'x', false)" for i in range(1, 200)])
    held = status()
    assert held["position"]["lsn"] and held["lag"]["wal_bytes"] > 0
    subprocess.run(ingest_cli, capture_output=True, check=True)
    assert status()["lag"]["wal_bytes"] < held["lag"]["wal_bytes"]


def test_a_contract_without_columns_takes_the_tables_types(
    pg_url: str, source: sa.Engine, lake: Lake, tmp_path: Path
) -> None:
    sql(
        source,
        "ALTER TABLE orders ADD COLUMN placed timestamptz, ADD COLUMN tags text[], "
        "ADD COLUMN ratio double precision",
        "INSERT INTO orders VALUES (1, 2.50, 'new', true, '2026-01-02 03:04:05+00', '{a,b}', 0.5)",
    )
    bare = orders_contract(
        {"kind": "postgres_cdc", "url": pg_url, "table": "public.orders"}, delivery="stream"
    )
    assert ingest(bare, root=tmp_path, lake=lake, now=NOW).rows == 1
    pinned = json.loads(lake.properties("raw.orders")["schema.1"])
    assert {c["name"]: c["type"] for c in pinned} == {
        "id": "BIGINT",
        "amount": "DECIMAL(10, 2)",
        "status": "TEXT",
        "paid": "BOOLEAN",
        "placed": "TIMESTAMPTZ",
        "tags": "TEXT",
        "ratio": "DOUBLE",
    }
    got = rows(lake, "raw.orders", "id, amount, paid, placed, tags, ratio")
    assert got[0][2] is True and got[0][4] == "{a,b}" and got[0][5] == 0.5
    assert got[0][3] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_a_large_value_an_update_left_alone_is_named_and_full_identity_sends_it(
    pg_url: str, source: sa.Engine, lake: Lake, tmp_path: Path
) -> None:
    """PostgreSQL does not send a TOASTed value an update did not change: under the default
    replica identity it lands as NULL and the run says so, with the fix; under REPLICA
    IDENTITY FULL the old row carries it and it lands whole."""
    big = "x" * 50_000  # stored out of line (TOAST), not compressible below the threshold
    sql(
        source,
        "ALTER TABLE orders ADD COLUMN doc text",
        "ALTER TABLE orders ALTER COLUMN doc SET STORAGE EXTERNAL",
        f"INSERT INTO orders VALUES (1, 1, 'new', false, '{big}')",
    )
    spec = contract(pg_url)
    ingest(spec, root=tmp_path, lake=lake, now=NOW)
    sql(source, "UPDATE orders SET status = 'paid' WHERE id = 1")
    default = ingest(spec, root=tmp_path, lake=lake, now=NOW)
    assert any(
        "left its large value of 'doc'" in w and "REPLICA IDENTITY FULL" in w
        for w in default.warnings
    ), default.warnings
    sql(
        source,
        "ALTER TABLE orders REPLICA IDENTITY FULL",
        "UPDATE orders SET status = 'shipped' WHERE id = 1",
    )
    full = ingest(spec, root=tmp_path, lake=lake, now=NOW)
    assert full.warnings == []
    docs = rows(lake, "raw.orders", "_hw_lsn, status, length(doc)")
    assert [d[1:] for d in sorted(docs)] == [("new", 50_000), ("paid", None), ("shipped", 50_000)]
