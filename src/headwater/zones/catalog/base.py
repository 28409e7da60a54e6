"""The database behind the catalog: opened once, migrated to the newest schema on open."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from headwater.errors import StoreError
from headwater.zones.catalog.migrations import migrate


def catalog_url(location: str, root: Path) -> str:
    """A SQLAlchemy URL for the `catalog:` setting: a URL as is, a path relative to the project."""
    if "://" in location:
        return location
    path = (root / location).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    # encoded: `?`, `#` or `%` in a folder name (a `${VAR}` in the path) would cut the URL
    return sa.engine.URL.create("sqlite", database=str(path)).render_as_string()


class CatalogBase:
    """One database and its connections: what every part of the catalog shares."""

    def __init__(self, url: str, *, scrub: Callable[[str], str] | None = None):
        self.url = url
        self._watch: sqlite3.Connection | None = None
        self._watching = threading.Lock()
        # applied to every free text stored (errors, summaries, reasons, samples), so a secret
        # that reached a message never reaches the database
        self._scrub = scrub or (lambda text: text)
        try:
            self.engine = sa.create_engine(url, connect_args=_connect_args(url))
            if url.startswith("sqlite"):
                sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            self.schema_version = migrate(self.engine)
        except (sa.exc.SQLAlchemyError, ValueError) as err:  # a bad URL parses to ValueError
            raise StoreError(
                self._scrub(f"cannot open the catalog: {_reason(err)}"),
                hint="check the URL and that the database accepts connections, or use a "
                "path such as .headwater/catalog.db",
            ) from None

    def close(self) -> None:
        self.engine.dispose()
        if self._watch is not None:
            self._watch.close()

    def changed(self) -> int | None:
        """A number that moves whenever another connection commits to a SQLite catalog
        (its `PRAGMA data_version`, read on a connection of its own: well under a
        millisecond); None for another database, where a reader must ask every time."""
        if not self.url.startswith("sqlite"):
            return None
        with self._watching:
            if self._watch is None:
                path = sa.engine.make_url(self.url).database
                if not path or path == ":memory:":
                    return None
                self._watch = sqlite3.connect(path, check_same_thread=False)
            return int(self._watch.execute("PRAGMA data_version").fetchone()[0])

    def _text(self, text: str | None) -> str | None:
        return None if text is None else self._scrub(text)

    @contextmanager
    def _tx(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as conn:
            yield conn


def _reason(err: Exception) -> str:
    """A driver error's own first line, without SQLAlchemy's wrapping and links."""
    if isinstance(err, sa.exc.NoSuchModuleError):
        return "no database driver for this URL scheme"
    if isinstance(err, ValueError) and "int()" in str(err):  # the URL parser on its port
        return "the URL's port is not a number (a password with / or @ belongs in ${VAR})"
    inner = getattr(err, "orig", None) or err
    lines = str(inner).strip().splitlines()
    return " ".join(lines[0].split()) if lines else type(inner).__name__


def _connect_args(url: str) -> dict[str, Any]:
    return {"check_same_thread": False, "timeout": 30} if url.startswith("sqlite") else {}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        _write_ahead_log(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _write_ahead_log(cursor: Any, *, patience: float = 30.0) -> None:
    """Put the database in WAL mode (it stays so: the mode is stored in the file).

    Switching modes needs the database to itself, and SQLite answers "database is locked" at
    once, without its busy timeout, while another connection has it open: so several
    processes opening an old catalog together retry here until the one switching is done.
    """
    deadline = time.monotonic() + patience
    pause = 0.01
    while True:
        try:
            (mode,) = cursor.execute("PRAGMA journal_mode").fetchone()
            if str(mode).lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


def utcnow() -> datetime:
    return datetime.now(UTC)
