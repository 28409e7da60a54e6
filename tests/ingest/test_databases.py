"""SQL database sources: PostgreSQL (a real throwaway cluster) and the SQLAlchemy fallback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from headwater.contracts import Contract
from headwater.errors import SourceError
from headwater.ingest import ingest
from headwater.zones.lake import Lake
from tests import postgres
from tests.ingest.raw import orders_contract, rows

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 10, 1, tzinfo=UTC)
COLUMNS = [
    {"name": "order_id", "type": "bigint", "nullable": False},
    {"name": "amount", "type": "decimal(10,2)"},
    {"name": "status", "type": "varchar"},
    {"name": "updated_at", "type": "timestamptz"},
]


def contract(connector: dict[str, Any], **overrides: Any) -> Contract:
    return orders_contract(
        connector, **{"primary_key": ["order_id"], "columns": COLUMNS, **overrides}
    )


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    postgres.require()
    pytest.importorskip("adbc_driver_postgresql", reason="the postgres extra is not installed")
    with postgres.cluster() as url:
        yield url


@pytest.fixture
def source(pg_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS orders"))
        conn.execute(
            sa.text(
                "CREATE TABLE orders (order_id bigint PRIMARY KEY, amount numeric(10,2), "
                "status text, updated_at timestamptz)"
            )
        )
    yield engine
    engine.dispose()


def put(engine: sa.Engine, *records: tuple[int, str, str, datetime]) -> None:
    with engine.begin() as conn:
        for order_id, amount, status, updated_at in records:
            conn.execute(
                sa.text(
                    "INSERT INTO orders VALUES (:i, :a, :s, :u) ON CONFLICT (order_id) DO UPDATE "
                    "SET amount = excluded.amount, status = excluded.status, "
                    "updated_at = excluded.updated_at"
                ),
                {"i": order_id, "a": amount, "s": status, "u": updated_at},
            )


@pytest.mark.postgres
def test_full_extraction_lands_every_row_typed(source: sa.Engine, pg_url: str, lake: Lake) -> None:
    put(source, *[(i, f"{i}.50", "new", T0 + timedelta(hours=i)) for i in range(1, 6)])
    spec = contract({"kind": "postgres", "url": pg_url, "table": "public.orders"})
    landed = ingest(spec, root=Path("."), lake=lake, now=NOW)
    assert (landed.rows, landed.quarantined) == (5, 0)
    assert landed.read == "5 rows of public.orders"
    got = rows(lake, "raw.orders", "order_id, amount, status, updated_at, _hw_source")
    assert got[0][:4] == (1, Decimal("1.50"), "new", T0 + timedelta(hours=1))
    assert got[0][4] == "public.orders record 1"
    # a full extraction reads everything again: same rows, a new batch
    again = ingest(spec, root=Path("."), lake=lake, now=NOW)
    assert again.rows == 5


@pytest.mark.postgres
def test_incremental_extraction_takes_new_and_updated_rows_once(
    source: sa.Engine, pg_url: str, lake: Lake
) -> None:
    put(source, *[(i, "1.00", "new", T0 + timedelta(hours=i)) for i in range(1, 6)])
    spec = contract(
        {
            "kind": "postgres",
            "url": pg_url,
            "table": "public.orders",
            "incremental": {"column": "updated_at", "lag": "2h"},
        }
    )
    assert ingest(spec, root=Path("."), lake=lake, now=NOW).rows == 5
    # order 2 is updated after the first run, order 6 is new
    put(
        source,
        (2, "9.99", "paid", T0 + timedelta(hours=7)),
        (6, "2.00", "new", T0 + timedelta(hours=6)),
    )
    second = ingest(spec, root=Path("."), lake=lake, now=NOW)
    # the 2h lag reads orders 3, 4 and 5 again (from 5h - 2h on): recognised, not landed twice
    assert (second.rows, second.skipped) == (2, 3)
    assert second.read == (
        "5 rows of public.orders since 2026-10-01T03:00:00+00:00, 3 re-read rows already landed"
    )
    got = rows(lake, "raw.orders", "order_id, amount, status")
    assert len(got) == 7
    assert (2, Decimal("9.99"), "paid") in got and (2, Decimal("1.00"), "new") in got
    assert (6, Decimal("2.00"), "new") in got
    third = ingest(spec, root=Path("."), lake=lake, now=NOW)
    assert third.rows == 0 and third.batch_id is not None
    assert len(rows(lake, "raw.orders")) == 7


@pytest.mark.postgres
def test_a_value_that_breaks_its_type_is_quarantined(
    source: sa.Engine, pg_url: str, lake: Lake
) -> None:
    put(source, (1, "1.00", "new", T0), (2, "2.00", "new", T0))
    columns = [*COLUMNS[:2], {"name": "status", "type": "integer"}, COLUMNS[3]]
    spec = contract({"kind": "postgres", "url": pg_url, "table": "orders"}, columns=columns)
    landed = ingest(spec, root=Path("."), lake=lake, now=NOW)
    assert (landed.rows, landed.quarantined) == (0, 2)
    reason, where = rows(lake, "raw.orders__quarantine", "_hw_reason, _hw_source")[0]
    assert reason == "status: cannot cast 'new' to INT" and where == "orders record 1"


@pytest.mark.postgres
def test_a_dead_server_fails_clearly_without_the_password(lake: Lake) -> None:
    spec = contract(
        {"kind": "postgres", "url": "postgresql://app:${PG_PASSWORD}@127.0.0.1:9/db", "table": "t"}
    )
    with pytest.raises(SourceError) as caught:
        ingest(spec, root=Path("."), lake=lake, now=NOW, environ={"PG_PASSWORD": "hunter2-pw"})
    text = caught.value.render()
    assert "cannot read t from postgresql://app:***@127.0.0.1:9/db" in text
    assert "hunter2-pw" not in text
    assert caught.value.retryable


def test_sqlalchemy_fallback_reads_any_database(tmp_path: Path, lake: Lake) -> None:
    db = sa.create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    with db.begin() as conn:
        conn.execute(
            sa.text("CREATE TABLE orders (order_id int, amount text, status text, updated_at text)")
        )
        conn.execute(
            sa.text(
                "INSERT INTO orders VALUES (1, '1.5', 'new', '2026-10-01 10:00:00+00'), "
                "(2, 'x', 'new', '2026-10-01 11:00:00+00')"
            )
        )
    spec = contract(
        {
            "kind": "sql",
            "url": f"sqlite:///{tmp_path / 'shop.db'}",
            "query": "select * from orders",
            "incremental": {"column": "updated_at"},
        }
    )
    landed = ingest(spec, root=tmp_path, lake=lake, now=NOW)
    assert (landed.rows, landed.quarantined) == (1, 1)
    assert rows(lake, "raw.orders", "order_id, amount") == [(1, Decimal("1.50"))]
    with db.begin() as conn:
        conn.execute(sa.text("INSERT INTO orders VALUES (3, '3', 'new', '2026-10-02 10:00:00+00')"))
    assert ingest(spec, root=tmp_path, lake=lake, now=NOW).rows == 1
    db.dispose()
