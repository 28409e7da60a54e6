"""PostgreSQL changes into raw, exactly once: logical replication with pgoutput (the one module
that imports psycopg2, whose replication protocol psycopg 3 does not speak).

headwater creates the publication and the replication slot. The slot's exported snapshot gives
the table's rows as of the slot's starting point (op `r`), with no gap and no overlap with the
changes that follow. Changes arrive a whole committed transaction at a time (a rolled-back one
never arrives) and land in commit order with their envelope: `_hw_op` (c/u/d/t), `_hw_lsn` (the
change's own LSN: for one row, the order of its changes), `_hw_commit_lsn`, `_hw_commit_time`,
`_hw_xid` and `_hw_before` (the old row or key, as JSON, where the replica identity sends it).

The lake's LSN is the truth: each raw commit records the end LSN of the last transaction it
holds, a batch lands only if that is still the lake's LSN (another worker may have landed
meanwhile), and only then is the slot told (`confirmed_flush_lsn`), so it never holds WAL for
more than a batch. Values arrive as text and are cast by the contract like a CSV's; a column
added by `ALTER TABLE … ADD COLUMN` arrives as a new key, under the contract's `evolution`.
"""

from __future__ import annotations

import contextlib
import json
import re
import select
import struct
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.extras
import pyarrow as pa
from psycopg2 import sql

from headwater.contracts import Column, PostgresCdcConnector
from headwater.contracts.secrets import Secrets
from headwater.contracts.thresholds import parse_duration
from headwater.errors import SourceError, TransientSourceError
from headwater.ingest.source import RECORD, Checkpoint, Part, Rejected
from headwater.zones.lake import Conflict

PART_ROWS = 50_000
UNIT = "commit lsn"  # `_hw_source` reads "postgres public.orders commit lsn 22190272"
FORMAT = "text"  # parts of text values, cast by the contract (conform's non-JSON path)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # PostgreSQL's timestamps count from here
_ENVELOPE = pa.schema(
    [
        ("_hw_op", pa.string()),
        ("_hw_lsn", pa.int64()),
        ("_hw_commit_lsn", pa.int64()),
        ("_hw_commit_time", pa.timestamp("us", tz="UTC")),
        ("_hw_xid", pa.int64()),
        ("_hw_before", pa.string()),
    ]
)


def lsn_text(lsn: int) -> str:
    """22190272 → '0/1529FC0' (how PostgreSQL writes an LSN)."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def lsn_int(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


# ---- pgoutput --------------------------------------------------------------------------------


@dataclass
class Relation:
    """A table as pgoutput describes it (again after every change of its columns)."""

    schema: str
    name: str
    columns: list[str]
    types: list[int]


@dataclass
class Change:
    op: str  # c u d t
    lsn: int
    relation: Relation
    values: dict[str, str | None]  # the new row (c, u), the key or old row (d), {} (t)
    before: dict[str, str | None] | None = None
    # large (TOASTed) values the update left as they were, which the server did not send and
    # no old row holds: they land as NULL (REPLICA IDENTITY FULL sends them)
    unchanged: tuple[str, ...] = ()


@dataclass
class Transaction:
    xid: int
    commit_time: datetime
    commit_lsn: int = 0
    end_lsn: int = 0
    changes: list[Change] = field(default_factory=list)


class Decoder:
    """pgoutput messages (protocol 1) to whole transactions."""

    def __init__(self, table: str):
        self.table = table  # schema.table: changes of other relations are not ours
        self.relations: dict[int, Relation] = {}
        self.open: Transaction | None = None

    def feed(self, payload: bytes, lsn: int) -> Transaction | None:
        """The transaction `payload` (one message) completes, if it is a commit."""
        kind = payload[:1]
        if kind == b"B":
            _final, stamp, xid = struct.unpack_from(">qqI", payload, 1)
            self.open = Transaction(xid, _EPOCH + timedelta(microseconds=stamp))
        elif kind == b"C":
            _flags, commit, end, _stamp = struct.unpack_from(">bqqq", payload, 1)
            done, self.open = self.open, None
            if done is not None:
                done.commit_lsn, done.end_lsn = commit, end
            return done
        elif kind == b"R":
            self._relation(payload)
        elif kind in (b"I", b"U", b"D"):
            self._row(kind, payload, lsn)
        elif kind == b"T":
            count, _options = struct.unpack_from(">Ib", payload, 1)
            oids = struct.unpack_from(f">{count}I", payload, 6)
            for oid in oids:
                relation = self.relations.get(oid)
                if relation is not None and self._ours(relation) and self.open is not None:
                    self.open.changes.append(Change("t", lsn, relation, {}))
        return None  # Y (type), O (origin), M (message): nothing to land

    def _ours(self, relation: Relation) -> bool:
        return f"{relation.schema}.{relation.name}" == self.table

    def _relation(self, payload: bytes) -> None:
        (oid,) = struct.unpack_from(">I", payload, 1)
        pos = 5
        schema, pos = _string(payload, pos)
        name, pos = _string(payload, pos)
        pos += 1  # replica identity setting
        (count,) = struct.unpack_from(">H", payload, pos)
        pos += 2
        columns, types = [], []
        for _ in range(count):
            pos += 1  # flags (part of the key)
            column, pos = _string(payload, pos)
            type_oid, _typmod = struct.unpack_from(">Ii", payload, pos)
            pos += 8
            columns.append(column)
            types.append(type_oid)
        self.relations[oid] = Relation(schema or "pg_catalog", name, columns, types)

    def _row(self, kind: bytes, payload: bytes, lsn: int) -> None:
        (oid,) = struct.unpack_from(">I", payload, 1)
        relation = self.relations[oid]
        pos = 5
        before: dict[str, str | None] | None = None
        marker = payload[pos : pos + 1]
        whole_before = marker == b"O"  # the old row ('O'), not only its key ('K')
        if kind in (b"U", b"D") and marker in (b"K", b"O"):
            before, pos, _ = _tuple(payload, pos + 1, relation, None)
            marker = payload[pos : pos + 1]
        if kind == b"D":
            if self.open is not None and self._ours(relation):
                self.open.changes.append(Change("d", lsn, relation, before or {}, before))
            return
        values, pos, unchanged = _tuple(
            payload, pos + 1, relation, before if whole_before else None
        )
        if self.open is not None and self._ours(relation):
            op = "c" if kind == b"I" else "u"
            self.open.changes.append(Change(op, lsn, relation, values, before, unchanged))


def _string(payload: bytes, pos: int) -> tuple[str, int]:
    end = payload.index(b"\0", pos)
    return payload[pos:end].decode("utf-8"), end + 1


def _tuple(
    payload: bytes, pos: int, relation: Relation, before: dict[str, str | None] | None
) -> tuple[dict[str, str | None], int, tuple[str, ...]]:
    """A TupleData: each column's text, None for NULL; a TOASTed value the change left
    unchanged ('u') is taken from the old row when the replica identity sent it whole, else
    named in the columns returned last."""
    (count,) = struct.unpack_from(">H", payload, pos)
    pos += 2
    out: dict[str, str | None] = {}
    missing: list[str] = []
    for i in range(count):
        kind = payload[pos : pos + 1]
        pos += 1
        name = relation.columns[i] if i < len(relation.columns) else f"column{i}"
        if kind == b"t" or kind == b"b":
            (length,) = struct.unpack_from(">I", payload, pos)
            pos += 4
            out[name] = payload[pos : pos + length].decode("utf-8", "backslashreplace")
            pos += length
        elif kind == b"u":
            if before is not None and name in before:
                out[name] = before[name]
            else:
                missing.append(name)
        else:  # 'n': NULL
            out[name] = None
    return out, pos, tuple(missing)


# ---- the server ------------------------------------------------------------------------------


def dsn(url: str) -> str:
    """A libpq URL from a SQLAlchemy-style one (`postgresql+psycopg://…`)."""
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", url)


class _Server:
    """A connection to the source database, checked for what CDC needs before anything."""

    def __init__(self, connector: PostgresCdcConnector, secrets: Secrets):
        self.connector = connector
        self.secrets = secrets
        self.url = secrets.expand(connector.url, where="connector.url")
        self.shown = secrets.scrub(self.url)
        self.schema, self.table = connector.table.split(".")
        self.slot = connector.slot or _default_name(connector.table)
        self.publication = connector.publication or self.slot
        self.timeout = parse_duration(connector.connect_timeout)
        self.conn = self.connect()
        self.conn.autocommit = True

    def connect(self, **options: Any) -> Any:
        try:
            return psycopg2.connect(
                dsn(self.url), connect_timeout=max(1, int(self.timeout)), **options
            )
        except psycopg2.OperationalError as err:
            raise TransientSourceError(
                f"cannot reach PostgreSQL at {self.shown}: {_first_line(err, self.secrets)}",
                hint="is the server up and connector.url right? nothing was landed; it is "
                "tried again (with backoff under --follow)",
            ) from None

    def query(self, statement: str | sql.Composed, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of `statement`; the driver's errors as headwater's (a lost connection may be
        retried, anything else is the source refusing)."""
        try:
            with self.conn.cursor() as cur:
                cur.execute(statement, params or None)
                return list(cur.fetchall()) if cur.description else []
        except psycopg2.OperationalError as err:
            raise TransientSourceError(
                f"PostgreSQL at {self.shown}: {_first_line(err, self.secrets)}",
                hint="nothing was landed; it is tried again",
            ) from None
        except psycopg2.Error as err:
            raise SourceError(
                f"PostgreSQL at {self.shown} refused: {_first_line(err, self.secrets)}",
                hint="nothing was landed",
            ) from None

    def check(self) -> None:
        """What logical replication of the table needs, each missing piece with its fix.

        Raises:
            SourceError: wal_level is not logical, the user may not replicate, the table is
                missing or has no replica identity.
        """
        (level,) = self.query("SHOW wal_level")[0]
        if level != "logical":
            raise SourceError(
                f"PostgreSQL at {self.shown} has wal_level = {level}; change data capture "
                "needs logical",
                hint="run `ALTER SYSTEM SET wal_level = logical;` as a superuser and restart "
                "the server (managed services: enable logical replication in its settings)",
            )
        user, may = self.query(
            "SELECT current_user, rolreplication OR rolsuper FROM pg_roles "
            "WHERE rolname = current_user"
        )[0]
        if not may:
            raise SourceError(
                f"user {user} may not replicate from {self.shown}",
                hint=f"run `ALTER ROLE {user} WITH REPLICATION;` as a superuser",
            )
        found = self.query(
            "SELECT c.relreplident, EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid "
            "AND i.indisprimary) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')",
            self.schema,
            self.table,
        )
        if not found:
            raise SourceError(
                f"table {self.connector.table} does not exist in {self.shown}",
                hint="fix connector.table (schema.table)",
            )
        identity, has_key = found[0]
        if identity == "n" or (identity == "d" and not has_key):
            raise SourceError(
                f"table {self.connector.table} has no primary key and no replica identity: its "
                "updates and deletes cannot be replicated",
                hint=f"add a primary key, or run `ALTER TABLE {self.connector.table} REPLICA "
                "IDENTITY FULL;`",
            )

    def ensure_publication(self) -> None:
        if not self.query("SELECT 1 FROM pg_publication WHERE pubname = %s", self.publication):
            try:
                self.query(
                    sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(
                        sql.Identifier(self.publication), sql.Identifier(self.schema, self.table)
                    )
                )
            except psycopg2.Error as err:
                raise SourceError(
                    f"cannot create publication {self.publication} on {self.shown}: "
                    f"{_first_line(err, self.secrets)}",
                    hint=f"as the table's owner, run `CREATE PUBLICATION {self.publication} "
                    f"FOR TABLE {self.connector.table};`",
                ) from None

    def slot_active(self) -> bool:
        """Whether a connection is streaming from the slot (another worker)."""
        found = self.query(
            "SELECT active FROM pg_replication_slots WHERE slot_name = %s", self.slot
        )
        return bool(found and found[0][0])

    def slot_exists(self) -> bool:
        return bool(
            self.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", self.slot)
        )

    def drop_slot(self) -> None:
        self.query("SELECT pg_drop_replication_slot(%s)", self.slot)

    def current_lsn(self) -> int:
        return lsn_int(self.query("SELECT pg_current_wal_lsn()::text")[0][0])

    def close(self) -> None:
        with contextlib.suppress(psycopg2.Error):
            self.conn.close()


_TYPES = {
    "smallint": "smallint",
    "integer": "integer",
    "bigint": "bigint",
    "real": "float",
    "double precision": "double",
    "boolean": "boolean",
    "text": "varchar",
    "date": "date",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "time without time zone": "time",
    "uuid": "uuid",
    "json": "json",
    "jsonb": "json",
    "interval": "interval",
    "numeric": "double",  # no precision given: any number
}


def source_columns(server: _Server) -> list[Column]:
    """The table's columns, typed as PostgreSQL declares them (varchar where DuckDB has no
    cast from PostgreSQL's text form: arrays, bytea, geometric types …)."""
    found = server.query(
        "SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        f'"{server.schema}"."{server.table}"',
    )
    return [
        Column(name=name, type=_column_type(kind), nullable=not required)
        for name, kind, required in found
    ]


def _column_type(kind: str) -> str:
    if kind in _TYPES:
        return _TYPES[kind]
    decimal = re.fullmatch(r"numeric\((\d+),(\d+)\)", kind)
    if decimal and int(decimal[1]) <= 38:
        return f"decimal({decimal[1]},{decimal[2]})"
    if re.fullmatch(r"(character varying|character|varchar|char)(\(\d+\))?", kind):
        return "varchar"
    if kind.startswith(("timestamp(", "timestamp with")) and "with time zone" in kind:
        return "timestamptz"
    if kind.startswith("timestamp("):
        return "timestamp"
    return "varchar"


def _default_name(table: str) -> str:
    """`public.orders` → `headwater_public__orders` (the double underscore keeps `public.a_b`
    and `public_a.b` apart)."""
    return re.sub(r"[^a-z0-9_]", "_", f"headwater_{table.replace('.', '__')}".lower())[:63]


def _first_line(err: Exception, secrets: Secrets) -> str:
    text = str(err).strip().splitlines()
    return secrets.scrub(text[0] if text else type(err).__name__)


def slot_lag(connector: PostgresCdcConnector, secrets: Secrets) -> int | None:
    """Bytes of WAL the slot holds that the lake has not confirmed (None: no slot yet)."""
    server = _Server(connector, secrets)
    try:
        rows = server.query(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint "
            "FROM pg_replication_slots WHERE slot_name = %s",
            server.slot,
        )
        return int(rows[0][0]) if rows and rows[0][0] is not None else None
    finally:
        server.close()


# ---- batches as parts ------------------------------------------------------------------------


def unchanged_warnings(table: str, transactions: list[Transaction]) -> list[str]:
    """What a user must know of large values the source did not send (they land as NULL)."""
    counts: dict[str, int] = {}
    for txn in transactions:
        for change in txn.changes:
            for name in change.unchanged:
                counts[name] = counts.get(name, 0) + 1
    return [
        f"{n:,} update(s) of {table} left its large value of {name!r} as it was: PostgreSQL "
        "did not send it, so it landed as NULL (run `ALTER TABLE "
        f"{table} REPLICA IDENTITY FULL;` and the old value is sent with each update)"
        for name, n in sorted(counts.items())
    ]


def _change_parts(
    table: str, transactions: list[Transaction], rejected: Rejected
) -> Iterator[Part]:
    """Changes in commit order as parts: one per run of changes with the same columns."""
    rows: list[tuple[Transaction, Change]] = []
    columns: list[str] | None = None
    for txn in transactions:
        for change in txn.changes:
            shape = change.relation.columns
            if columns is not None and (shape != columns or len(rows) >= PART_ROWS):
                yield _part(table, columns, rows)
                rows = []
            columns = shape
            rows.append((txn, change))
    if rows and columns is not None:
        yield _part(table, columns, rows)


def _part(table: str, columns: list[str], rows: list[tuple[Transaction, Change]]) -> Part:
    data: dict[str, pa.Array] = {
        name: pa.array([c.values.get(name) for _, c in rows], pa.string()) for name in columns
    }
    data[RECORD] = pa.array([t.commit_lsn for t, _ in rows], pa.int64())
    envelope = [
        [c.op for _, c in rows],
        [c.lsn for _, c in rows],
        [t.commit_lsn for t, _ in rows],
        [t.commit_time for t, _ in rows],
        [t.xid for t, _ in rows],
        [None if c.before is None else json.dumps(c.before) for _, c in rows],
    ]
    for f, values in zip(_ENVELOPE, envelope, strict=True):
        data[f.name] = pa.array(values, f.type)
    return Part(pa.table(data), FORMAT, f"postgres {table}", unit=UNIT)


# ---- readers ---------------------------------------------------------------------------------


class _Stream:
    """The slot's changes on a replication connection, whole transactions at a time."""

    def __init__(self, server: _Server, start: int):
        self.server = server
        self.decoder = Decoder(server.connector.table)
        self.conn = server.connect(connection_factory=psycopg2.extras.LogicalReplicationConnection)
        self.cursor = self.conn.cursor()
        try:
            self.cursor.start_replication(
                slot_name=server.slot,
                decode=False,
                start_lsn=start,
                options={"proto_version": "1", "publication_names": server.publication},
            )
        except psycopg2.Error as err:
            raise SourceError(
                f"cannot stream slot {server.slot} from {server.shown}: "
                f"{_first_line(err, server.secrets)}",
                hint="nothing was landed",
            ) from None
        self.start = start

    def transactions(self, until: Callable[[], bool], wait: float) -> Iterator[Transaction]:
        """Committed transactions as they arrive, until `until()` is true between messages
        (checked at least every `wait` seconds)."""
        while not until():
            try:
                message = self.cursor.read_message()
            except psycopg2.Error as err:
                raise TransientSourceError(
                    f"the replication stream from {self.server.shown} broke: "
                    f"{_first_line(err, self.server.secrets)}",
                    hint="nothing of this batch was landed; it is read again from the lake's LSN",
                ) from None
            if message is None:
                select.select([self.conn], [], [], wait)
                continue
            done = self.decoder.feed(bytes(message.payload), message.data_start)
            if done is not None and done.end_lsn > self.start:
                yield done

    @property
    def wal_end(self) -> int:
        return int(self.cursor.wal_end or 0)

    def ask_position(self) -> None:
        """Ask the server for a keepalive (it tells how far the WAL goes)."""
        with contextlib.suppress(psycopg2.Error):
            self.cursor.send_feedback(reply=True)

    def confirm(self, lsn: int) -> None:
        """The slot may let go of WAL up to `lsn`: its transactions are in the lake."""
        with contextlib.suppress(psycopg2.Error):
            self.cursor.send_feedback(write_lsn=lsn, flush_lsn=lsn, apply_lsn=lsn, force=True)

    def close(self) -> None:
        with contextlib.suppress(psycopg2.Error):
            self.conn.close()


class CdcReader:
    """`headwater ingest` of a CDC contract: the first run lands the table as of the new slot's
    starting point (op r); each later run lands the transactions committed since the lake's
    LSN, up to the server's WAL position when it started."""

    direct = None

    def __init__(
        self,
        connector: PostgresCdcConnector,
        *,
        root: Path,
        state: Checkpoint,
        secrets: Secrets,
        lake: Callable[[], Mapping[str, Any]] | None = None,
    ):
        self.connector = connector
        self._lake = lake
        self.rejected = Rejected()
        self.warnings: list[str] = []
        self.already_landed = 0
        self.changes = 0
        self.lake_lsn = lsn_int(state.lsn) if state.lsn else None
        self.server = _Server(connector, secrets)
        self._stream: _Stream | None = None
        self._snapshot: _Snapshot | None = None
        self._end: int | None = None
        self.target = 0
        try:
            self.server.check()
            self.server.ensure_publication()
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        server = self.server
        if self.lake_lsn is None and server.slot_exists():
            if server.slot_active():
                raise TransientSourceError(
                    f"replication slot {server.slot} on {server.shown} is in use: another "
                    "worker is taking the table's snapshot",
                    hint="it is tried again; run one worker per CDC contract",
                )
            # the lake again: another worker may have landed the snapshot meanwhile
            self.lake_lsn = _lake_lsn(self._lake()) if self._lake is not None else None
            if self.lake_lsn is None:
                server.drop_slot()  # a first run that never landed its snapshot: begin again
        if self.lake_lsn is None:
            self._snapshot = _Snapshot(server, export=self.connector.snapshot)
            self.key = f"cdc {self.connector.table} snapshot at {lsn_text(self._snapshot.point)}"
            return
        if not server.slot_exists():
            raise SourceError(
                f"replication slot {server.slot} is gone from {server.shown}: the changes after "
                f"LSN {lsn_text(self.lake_lsn)} (the lake's) cannot be read any more",
                hint="to start over from a new snapshot, land into a new schema_version of the "
                "contract (raw keeps what it holds)",
            )
        self._snapshot = None
        self.target = server.current_lsn()
        self.key = (
            f"cdc {self.connector.table} from {lsn_text(self.lake_lsn)} to {lsn_text(self.target)}"
            if self.target > self.lake_lsn
            else ""
        )
        if self.key == "":
            self.close()

    @property
    def source_columns(self) -> list[Column]:
        """The table's columns with their types as PostgreSQL has them (what a contract that
        declares none takes on its first load)."""
        return source_columns(self.server)

    def parts(self) -> Iterator[Part]:
        table = self.connector.table
        if self._snapshot is not None:
            yield from self._snapshot.parts(table, self)
            self._end = self._snapshot.point
            return
        assert self.lake_lsn is not None
        stream = self._stream = _Stream(self.server, self.lake_lsn)
        last_ask = 0.0

        def caught_up() -> bool:
            nonlocal last_ask
            if stream.wal_end >= self.target and stream.decoder.open is None:
                return True
            if time.monotonic() - last_ask > 0.2:
                stream.ask_position()
                last_ask = time.monotonic()
            return False

        pending: list[Transaction] = []
        flagged: list[Transaction] = []  # with large values the server did not send
        count = 0
        for txn in stream.transactions(caught_up, wait=0.2):
            pending.append(txn)
            if any(c.unchanged for c in txn.changes):
                flagged.append(txn)
            count += len(txn.changes)
            self._end = txn.end_lsn
            if count >= PART_ROWS:
                self.changes += count
                yield from _change_parts(table, pending, self.rejected)
                pending, count = [], 0
        self.changes += count
        yield from _change_parts(table, pending, self.rejected)
        self.warnings += unchanged_warnings(table, flagged)
        if self._end is None and stream.wal_end > self.lake_lsn:
            # nothing of this table committed: the slot may still let go of the WAL it holds
            stream.confirm(stream.wal_end)

    def checkpoint(self) -> Checkpoint:
        end = self._end if self._end is not None else self.lake_lsn
        return Checkpoint(lsn=lsn_text(end) if end is not None else None)

    def describe(self) -> str:
        if self._snapshot is not None:
            return f"{self.changes:,} rows of {self.connector.table} (snapshot)"
        return f"{self.changes:,} changes of {self.connector.table}"

    def base(self, properties: Mapping[str, Any]) -> None:
        _followed(self.lake_lsn, properties)

    def committed(self) -> None:
        if self._stream is not None and self._end is not None:
            self._stream.confirm(self._end)
        self.close()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
        snapshot = getattr(self, "_snapshot", None)
        if snapshot is not None:
            snapshot.close()
        self.server.close()


class _Snapshot:
    """A new slot and the table's rows as of its starting point (the exported snapshot)."""

    def __init__(self, server: _Server, *, export: bool):
        self.server = server
        self.replication = server.connect(
            connection_factory=psycopg2.extras.LogicalReplicationConnection
        )
        cursor = self.replication.cursor()
        mode = "EXPORT_SNAPSHOT" if export else "NOEXPORT_SNAPSHOT"
        try:
            cursor.execute(
                sql.SQL("CREATE_REPLICATION_SLOT {} LOGICAL pgoutput {}").format(
                    sql.Identifier(server.slot), sql.SQL(mode)
                )
            )
            _slot, point, name, _plugin = cursor.fetchone()
        except psycopg2.Error as err:
            raise SourceError(
                f"cannot create replication slot {server.slot} on {server.shown}: "
                f"{_first_line(err, server.secrets)}",
                hint="is max_replication_slots reached? drop unused slots "
                "(SELECT pg_drop_replication_slot(name)) or raise it",
            ) from None
        self.point = lsn_int(point)
        self.reading = None
        if export:
            # import the snapshot before the replication connection does anything else
            try:
                self.reading = server.connect()
                with self.reading.cursor() as cur:
                    cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    cur.execute("SET TRANSACTION SNAPSHOT %s", (name,))
            except (psycopg2.Error, TransientSourceError) as err:
                self.close()
                raise TransientSourceError(
                    f"cannot read the snapshot of slot {server.slot} on {server.shown}: {err}",
                    hint="nothing was landed; the slot is made again next time",
                ) from None

    def parts(self, table: str, reader: CdcReader) -> Iterator[Part]:
        if self.reading is None:
            return
        server = self.server
        columns = [
            r[0]
            for r in server.query(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
                "AND NOT attisdropped ORDER BY attnum",
                f'"{server.schema}"."{server.table}"',
            )
        ]
        relation = Relation(server.schema, server.table, columns, [])
        txn = Transaction(0, datetime.now(UTC), self.point, self.point)
        select_list = sql.SQL(", ").join(
            sql.SQL("{}::text").format(sql.Identifier(c)) for c in columns
        )
        with self.reading.cursor(name="headwater_snapshot") as cur:
            cur.itersize = PART_ROWS
            cur.execute(
                sql.SQL("SELECT {} FROM {}").format(
                    select_list, sql.Identifier(server.schema, server.table)
                )
            )
            while True:
                rows = cur.fetchmany(PART_ROWS)
                if not rows:
                    break
                # LSN 0: every change streamed after the snapshot is newer, even one of a
                # transaction that began before the slot (its changes' LSNs are below the
                # slot's starting point)
                txn.changes = [
                    Change("r", 0, relation, dict(zip(columns, row, strict=True))) for row in rows
                ]
                reader.changes += len(rows)
                yield from _change_parts(table, [txn], reader.rejected)

    def close(self) -> None:
        for conn in (self.reading, self.replication):
            if conn is not None:
                with contextlib.suppress(psycopg2.Error):
                    conn.close()


def _lake_lsn(properties: Mapping[str, Any]) -> int | None:
    """The LSN a raw snapshot's checkpoint records (its summary properties)."""
    stored = properties.get("checkpoint")
    lsn = stored.get("lsn") if isinstance(stored, Mapping) else None
    return lsn_int(lsn) if lsn else None


def _followed(lake_lsn: int | None, properties: Mapping[str, Any]) -> None:
    """Raises Conflict unless the raw snapshot a commit will follow is at `lake_lsn`."""
    if _lake_lsn(properties) != lake_lsn:
        raise Conflict(
            "another worker landed changes of this table while this batch was read",
            hint="nothing of this batch was committed; it is read again from the lake's LSN",
        )


# ---- follow ----------------------------------------------------------------------------------


class _ChangeBatch:
    """Transactions a follower read, as landing reads them (a `StreamBatch`)."""

    direct = None
    redelivered = 0

    def __init__(self, follower: CdcFollower, transactions: list[Transaction], start: int):
        self.follower = follower
        self.transactions = transactions
        self.start = start
        self.end = transactions[-1].end_lsn
        table = follower.connector.table
        self.key = f"cdc {table} from {lsn_text(start)} to {lsn_text(self.end)}"
        self.rejected = Rejected()
        self.warnings: list[str] = unchanged_warnings(table, transactions)
        self.already_landed = 0

    def parts(self) -> Iterator[Part]:
        yield from _change_parts(self.follower.connector.table, self.transactions, self.rejected)

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(lsn=lsn_text(self.end))

    def describe(self) -> str:
        changes = sum(len(t.changes) for t in self.transactions)
        return f"{changes:,} changes in {len(self.transactions):,} transaction(s)"

    def base(self, properties: Mapping[str, Any]) -> None:
        _followed(self.start, properties)

    def committed(self) -> None:
        self.follower.landed(self.end)

    def produced(self) -> list[float]:
        return [t.commit_time.timestamp() for t in self.transactions for _ in t.changes]


class _SnapshotBatch(CdcReader):
    """The first batch of a follower: the table as of the new slot's starting point."""

    redelivered = 0

    def __init__(self, follower: CdcFollower, **options: Any):
        self.follower = follower
        super().__init__(**options)

    def committed(self) -> None:
        super().committed()
        if self._end is not None:
            self.follower.landed(self._end)

    def produced(self) -> list[float]:
        return []  # rows as they were, not changes: no latency to measure


class CdcFollower:
    """A replication stream for `headwater ingest --follow`: batches of whole committed
    transactions, closed at `max_rows` changes or `max_wait` after the first."""

    IDLE_CONFIRM_S = 5.0  # while nothing of the table changes, the slot still lets go of WAL

    def __init__(
        self,
        connector: PostgresCdcConnector,
        *,
        root: Path,
        secrets: Secrets,
        lake: Callable[[], Mapping[str, Any]],
    ):
        self.connector = connector
        self.root = root
        self.secrets = secrets
        self.lake = lake
        self.server = _Server(connector, secrets)
        self.stream: _Stream | None = None
        try:
            self.server.check()
            self.server.ensure_publication()
            self.position = self._lake_lsn()
        except BaseException:
            self.server.close()
            raise
        self._idle_since = time.monotonic()

    def _lake_lsn(self) -> int | None:
        return _lake_lsn(self.lake())

    def next_batch(self, stop: Callable[[], bool]) -> Any:
        if self.position is None:
            self.position = self._lake_lsn()  # another worker may have landed the snapshot
        if self.position is None:
            return _SnapshotBatch(
                self,
                connector=self.connector,
                root=self.root,
                state=Checkpoint(),
                secrets=self.secrets,
                lake=self.lake,
            )
        if self.stream is None:
            if not self.server.slot_exists():
                raise SourceError(
                    f"replication slot {self.server.slot} is gone from {self.server.shown}: the "
                    f"changes after LSN {lsn_text(self.position)} cannot be read any more",
                    hint="to start over from a new snapshot, land into a new schema_version of "
                    "the contract (raw keeps what it holds)",
                )
            self.stream = _Stream(self.server, self.position)
        stream = self.stream
        max_wait = parse_duration(self.connector.max_wait)
        transactions: list[Transaction] = []
        changes = 0
        first: float | None = None

        def full() -> bool:
            if stop() or changes >= self.connector.max_rows:
                return True
            if first is None:
                return time.monotonic() - started > 0.2  # nothing yet: let the caller look
            return time.monotonic() - first >= max_wait

        started = time.monotonic()
        for txn in stream.transactions(full, wait=0.05):
            if not txn.changes:
                continue
            transactions.append(txn)
            changes += len(txn.changes)
            first = first if first is not None else time.monotonic()
        if transactions:
            self._idle_since = time.monotonic()
            return _ChangeBatch(self, transactions, self.position)
        if time.monotonic() - self._idle_since > self.IDLE_CONFIRM_S:
            # every transaction the server sent is read; none was this table's
            if stream.decoder.open is None and stream.wal_end > self.position:
                stream.confirm(stream.wal_end)
            stream.ask_position()
            self._idle_since = time.monotonic()
        return None

    def landed(self, end: int) -> None:
        self.position = end
        if self.stream is not None:
            self.stream.confirm(end)

    def rewind(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None
        self.position = self._lake_lsn()

    def lag(self) -> dict[str, int]:
        """Bytes of WAL written since the lake's LSN."""
        if self.position is None:
            return {}
        try:
            return {"wal_bytes": max(0, self.server.current_lsn() - self.position)}
        except psycopg2.Error:
            return {}

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
        self.server.close()
