"""A throwaway PostgreSQL 15 cluster for tests (DESIGN.md §8): initdb as `postgres`, then stop."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

BIN = Path("/usr/lib/postgresql/15/bin")


def available() -> bool:
    return (BIN / "initdb").exists() and shutil.which("su") is not None


def require() -> None:
    """Skip a test without PostgreSQL 15 binaries; under CI=true, where `.ci/run` installs
    them, their absence fails the test instead."""
    if available():
        return
    if os.environ.get("CI") == "true":
        pytest.fail("PostgreSQL 15 binaries are missing under CI=true (.ci/run installs them)")
    pytest.skip("PostgreSQL 15 not installed")


@contextmanager
def cluster(wal_level: str = "logical") -> Iterator[str]:
    """Start a cluster on a free 127.0.0.1 port; yields a SQLAlchemy URL (psycopg 3)."""
    folder = Path(tempfile.mkdtemp(prefix="hw-pg-", dir="/tmp"))
    data = folder / "data"
    port = _free_port()
    _as_postgres_owner(folder)
    _postgres(f"{BIN}/initdb -D {data} -A trust -U postgres --no-sync -E UTF8 >/dev/null")
    _postgres(
        f"{BIN}/pg_ctl -D {data} -w -l {folder}/log -o "
        f"'-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
        f"-c wal_level={wal_level} -c max_replication_slots=20 -c max_wal_senders=20' start "
        ">/dev/null"
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        _postgres(f"{BIN}/pg_ctl -D {data} -w -m immediate stop >/dev/null")
        shutil.rmtree(folder, ignore_errors=True)


def _postgres(command: str) -> None:
    if os.geteuid() == 0:
        subprocess.run(["su", "postgres", "-s", "/bin/bash", "-c", command], check=True)
    else:
        subprocess.run(["bash", "-c", command], check=True)


def _as_postgres_owner(folder: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(folder, user="postgres", group="postgres")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
