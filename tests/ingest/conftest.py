"""Fixtures of the ingest tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from headwater.zones.lake import Lake
from tests import kafka, postgres


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    """An empty lake with its SQLite catalog in the test's folder."""
    return Lake(f"sqlite:///{tmp_path / 'catalog.db'}", "lake", tmp_path)


@pytest.fixture(scope="session")
def broker() -> Iterator[str]:
    """A Kafka broker for the test process (each test makes its own topics)."""
    kafka.require()
    pytest.importorskip("confluent_kafka", reason="the kafka extra is not installed")
    with kafka.broker() as address:
        yield address


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A PostgreSQL cluster (wal_level=logical) for the test module, reached by psycopg2 for
    CDC; yields a SQLAlchemy URL."""
    postgres.require()
    pytest.importorskip("psycopg2", reason="the postgres extra is not installed")
    with postgres.cluster() as url:
        yield url
