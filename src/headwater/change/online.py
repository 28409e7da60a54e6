"""The online feature store: per environment and feature view, the latest row of each entity
in the product snapshot the environment serves, swapped in whole after each release; and the
rules training sets share with it (which views a project has, how a key is written, the TTL).

Two stores behind one interface: a SQLite file (the default, `settings.online`) and Redis (a
`redis://` URL). Either holds, per (env, view), one *state*: the rows of one snapshot and a
description of it (`Held`). A refresh writes a new state beside the current one and then
switches one pointer, so a reader sees the old state or the new one, never a mix. The TTL is
not applied when writing: whether a value is still valid depends on when it is read.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import secrets
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlglot import exp

from headwater.contracts.secrets import Secrets
from headwater.contracts.specs import FeatureView
from headwater.engine.base import Engine
from headwater.errors import Location, SpecError, StoreBusy, StoreError, UsageError
from headwater.project import Project
from headwater.zones.catalog import Catalog
from headwater.zones.lake import Lake

KEY_SEPARATOR = "|"  # between the parts of a key of several columns (escaped inside a part)
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
OWN_PREFIX = "_hw_"  # headwater's own columns (raw's metadata): never a feature by default
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KEY, _RECORD = "_hw_key", "_hw_record"


class Status(StrEnum):
    """What a lookup found for a feature, online; offline the same cases give the value,
    NULL and NULL."""

    PRESENT = "PRESENT"  # a value with time - ttl <= event_time <= time
    EXPIRED = "EXPIRED"  # the latest value is older than the TTL
    NOT_FOUND = "NOT_FOUND"  # no row of the entity at or before the time


# ---- the views of a project -------------------------------------------------------------


@dataclass(frozen=True)
class Declared:
    """A feature view as a model's sidecar declares it."""

    name: str
    model: str
    spec: FeatureView
    file: str  # the sidecar, relative to the project

    def where(self, *field: str) -> Location:
        return Location(self.file, field=".".join(("features", self.name, *field)))


def feature_views(project: Project) -> dict[str, Declared]:
    """Every feature view of the project by name.

    Raises:
        SpecError: two models declare views of the same name.
    """
    found: dict[str, Declared] = {}
    for name, model in sorted(project.models.items()):
        for view, spec in model.sidecar.features.items():
            file = model.sidecar_path or model.path
            if view in found:
                raise SpecError(
                    f"feature view {view!r} is declared twice: by {found[view].model} "
                    f"({found[view].file}) and by {name}",
                    where=Location(file, field=f"features.{view}"),
                    hint="feature views are looked up by name: rename one of them",
                )
            found[view] = Declared(view, name, spec, file)
    return found


def feature_view(project: Project, name: str) -> Declared:
    """The view called `name`.

    Raises:
        UsageError: there is none (with the closest name, or the names there are).
    """
    views = feature_views(project)
    if name in views:
        return views[name]
    close = difflib.get_close_matches(name, list(views), n=1, cutoff=0.6)
    known = ", ".join(sorted(views)) or "none: a model's sidecar declares them under features:"
    hint = f"did you mean {close[0]!r}?" if close else f"views are: {known}"
    raise UsageError(f"no feature view {name!r}", hint=hint)


def feature_columns(view: Declared, columns: Sequence[str]) -> list[str]:
    """The feature columns of `view` in a product with `columns` (declared, or every column
    but the entity, the event time and headwater's own `_hw_…` columns, such as raw's).

    Raises:
        SpecError: the view names a column the product does not have (named, with its field).
    """
    named = [("entity", c) for c in view.spec.entity] + [("event_time", view.spec.event_time)]
    named += [("features", c) for c in view.spec.features]
    for field, column in named:
        if column not in columns:
            close = difflib.get_close_matches(column, list(columns), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"columns: {', '.join(columns)}"
            raise SpecError(
                f"{column!r} is not a column of {view.model}", where=view.where(field), hint=hint
            )
    if view.spec.features:
        return list(view.spec.features)
    taken = {*view.spec.entity, view.spec.event_time}
    return [c for c in columns if c not in taken and not c.startswith(OWN_PREFIX)]


def definition(view: Declared) -> str:
    """What a state was computed from besides the data: a changed sidecar refreshes it."""
    return json.dumps([view.model, view.spec.model_dump(mode="json")], sort_keys=True)


# ---- keys and the TTL rule --------------------------------------------------------------


def _escaped(part: str) -> str:
    return part.replace("\\", "\\\\").replace(KEY_SEPARATOR, "\\" + KEY_SEPARATOR)


def entity_key(parts: Sequence[Any]) -> str:
    """The text a key is stored under: each entity column's value as text (as the engine casts
    it to VARCHAR: `42`, `2026-01-31`, `true`), joined by `|` for a key of several columns (a
    `|` or `\\` inside a part escaped by a `\\`).

    >>> entity_key([42])
    '42'
    >>> entity_key(["a|b", 7])
    'a\\\\|b|7'
    """
    texts = [str(p).lower() if isinstance(p, bool) else str(p) for p in parts]
    return texts[0] if len(texts) == 1 else KEY_SEPARATOR.join(_escaped(t) for t in texts)


def key_sql(columns: Sequence[str]) -> exp.Expr:
    """`entity_key` in SQL, over the entity `columns`."""
    texts: list[exp.Expr] = [exp.cast(exp.column(c, quoted=True), "varchar") for c in columns]
    if len(texts) == 1:
        return texts[0]
    parts: list[exp.Expr] = []
    for text in texts:
        for old, new in (("\\", "\\\\"), (KEY_SEPARATOR, "\\" + KEY_SEPARATOR)):
            text = exp.func("replace", text, exp.Literal.string(old), exp.Literal.string(new))
        parts += [text, exp.Literal.string(KEY_SEPARATOR)]
    joined: exp.Expr = parts[0]
    for part in parts[1:-1]:
        joined = exp.DPipe(this=joined, expression=part, safe=True)
    return joined


def ttl_micros(spec: FeatureView) -> int | None:
    """The view's TTL in whole microseconds (None: values never expire): the one figure both
    online lookups and training sets compare with, so their boundary is the same."""
    seconds = spec.ttl_seconds
    return None if seconds is None else round(seconds * 1_000_000)


def micros(moment: datetime) -> int:
    """Microseconds since the epoch (a naive time is UTC, as the engine takes it)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(microseconds=1)


def status(event_us: int | None, at_us: int, ttl_us: int | None) -> Status:
    """The TTL rule: a value is valid at `at` iff at - ttl <= event_time <= at (both bounds
    inclusive); training sets apply the same rule in SQL (serve/features.py)."""
    if event_us is None or event_us > at_us:
        return Status.NOT_FOUND
    if ttl_us is not None and event_us < at_us - ttl_us:
        return Status.EXPIRED
    return Status.PRESENT


# ---- the stores -------------------------------------------------------------------------


@dataclass(frozen=True)
class Held:
    """What the online store holds for one (env, view): which snapshot, its columns."""

    env: str
    view: str
    model: str
    product: str
    snapshot_id: int
    entity: tuple[str, ...]
    features: tuple[str, ...]
    definition: str
    rows: int
    refreshed_at: str  # ISO 8601, UTC
    state: str = ""  # the store's name for the rows (set when written)

    def text(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def parse(cls, text: str | bytes) -> Held:
        data = json.loads(text)
        data["entity"], data["features"] = tuple(data["entity"]), tuple(data["features"])
        return cls(**data)


Found = tuple[datetime, dict[str, Any]] | None


def _decoded(held: Held, record: str | bytes | None) -> Found:
    """A stored record (`[event_us, [values…]]`) as (event time, values by feature)."""
    if record is None:
        return None
    event_us, values = json.loads(record)
    moment = _EPOCH + timedelta(microseconds=int(event_us))
    return moment, dict(zip(held.features, values, strict=True))


class OnlineStore(ABC):
    """Per (env, view), the latest row of each entity: written whole, read by key."""

    @classmethod
    def open(cls, project: Project) -> OnlineStore:
        """The store `settings.online` names: a SQLite file (relative to the project; its
        folder is made) or a `redis://` URL.

        Raises:
            StoreError: it cannot be opened (naming `headwater.yml: online`).
        """
        where = "headwater.yml: online"
        target = Secrets(os.environ).expand(project.settings.online, where=where)
        if target.startswith(REDIS_SCHEMES):
            return RedisOnline(target, namespace=project.settings.name)
        return SqliteOnline(project.root / target)

    @abstractmethod
    def held(self, env: str | None = None) -> list[Held]:
        """Every state held (of `env`), by env and view."""

    @abstractmethod
    def lookup(self, env: str, view: str, keys: Sequence[str]) -> tuple[Held, dict[str, Found]]:
        """The state of (env, view) and the record of each key, read together.

        Raises:
            StoreError: the store holds no state of the view in `env`.
        """

    @abstractmethod
    def replace(self, held: Held, batches: Iterable[pa.RecordBatch]) -> int:
        """Write `batches` (`_hw_key`, `_hw_record`) as the new state of (env, view), then
        switch to it in one step; the rows written."""

    @abstractmethod
    def remove(self, env: str, view: str) -> None:
        """Forget (env, view) (its view was removed from the project)."""

    @abstractmethod
    def close(self) -> None: ...

    def compact(self) -> None:
        """Rewrite the store's storage so no row it deleted stays in free space (the right to
        erasure); nothing to do for a store that keeps none (Redis frees what it deletes;
        the state a refresh replaced expires there after `RedisOnline.REPLACED_TTL`)."""
        return None

    def get(self, env: str, view: str, keys: Sequence[str]) -> dict[str, Found]:
        """Each key (`entity_key`) → (event time, {feature: value}), None when not held."""
        return self.lookup(env, view, keys)[1]

    def current(self, env: str, view: str) -> Held | None:
        return next((h for h in self.held(env) if h.view == view), None)

    def _missing(self, env: str, view: str) -> StoreError:
        return StoreError(
            f"the online store holds no feature view {view!r} of {env} yet",
            hint=f"`headwater run` (or apply --env {env}) refreshes it after the release",
        )


class SqliteOnline(OnlineStore):
    """The online store in one SQLite file (WAL: readers never wait for a refresh)."""

    def __init__(self, path: Path):
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 60000")  # another refresh writing: wait
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            for statement in _SQLITE_TABLES:
                conn.execute(statement)
        except (OSError, sqlite3.Error) as err:
            raise StoreError(
                f"cannot open the online store {path}: {err}",
                where=Location("headwater.yml", field="online"),
                hint="point `online:` at a file headwater can write, or a redis:// URL",
            ) from err
        self._conn = conn
        self._lock = threading.Lock()  # one connection, shared by a server's threads

    def held(self, env: str | None = None) -> list[Held]:
        with self._using():
            rows = self._conn.execute("SELECT meta FROM hw_online_views").fetchall()
        found = [Held.parse(meta) for (meta,) in rows]
        return sorted((h for h in found if env in (None, h.env)), key=lambda h: (h.env, h.view))

    def lookup(self, env: str, view: str, keys: Sequence[str]) -> tuple[Held, dict[str, Found]]:
        with self._using(), self._transaction("BEGIN"):
            row = self._conn.execute(_SQLITE_POINTER, (env, view)).fetchone()
            if row is None:
                raise self._missing(env, view)
            state, meta = row
            records = dict(
                self._conn.execute(_SQLITE_RECORDS, (state, json.dumps(list(keys)))).fetchall()
            )
        held = Held.parse(meta)
        return held, {k: _decoded(held, records.get(k)) for k in keys}

    def replace(self, held: Held, batches: Iterable[pa.RecordBatch]) -> int:
        state = secrets.randbits(62)
        with self._using():
            self._forget_builds(held.env, held.view)
            self._conn.execute(_SQLITE_BUILD, (state, held.env, held.view))
            rows = 0
            with self._transaction("BEGIN IMMEDIATE"):
                for batch in batches:
                    pairs = _pairs(batch)
                    self._conn.executemany(_SQLITE_INSERT, ((state, k, r) for k, r in pairs))
                    rows += batch.num_rows
            done = dataclasses.replace(held, rows=rows, state=str(state))
            with self._transaction("BEGIN IMMEDIATE"):  # the swap: one row
                self._conn.execute(_SQLITE_SWAP, (held.env, held.view, state, done.text()))
            self._forget_builds(held.env, held.view)  # the state just replaced
        return rows

    def remove(self, env: str, view: str) -> None:
        with self._using():
            with self._transaction("BEGIN IMMEDIATE"):
                self._conn.execute(_SQLITE_DROP, (env, view))
            self._forget_builds(env, view)

    def close(self) -> None:
        self._conn.close()

    def compact(self) -> None:
        """VACUUM, with the write-ahead log checkpointed and truncated before and after."""
        with self._using():
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.execute("VACUUM")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _forget_builds(self, env: str, view: str) -> None:
        """Delete the rows of every state of (env, view) but the current one: the one a swap
        replaced, and those a crash left half written."""
        with self._transaction("BEGIN IMMEDIATE"):
            stale = self._conn.execute(_SQLITE_STALE, (env, view, env, view)).fetchall()
            for (state,) in stale:
                self._conn.execute("DELETE FROM hw_online_rows WHERE state = ?", (state,))
                self._conn.execute("DELETE FROM hw_online_builds WHERE state = ?", (state,))

    @contextmanager
    def _using(self) -> Iterator[None]:
        """The connection, for this thread alone; SQLite's errors as the store's."""
        with self._lock:
            try:
                yield
            except sqlite3.Error as err:
                kind = StoreBusy if "locked" in str(err) else StoreError
                raise kind(
                    f"the online store {self.path} failed: {err}",
                    hint="another refresh may hold it: try again once it is done",
                ) from err

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[None]:
        """`BEGIN …` / `COMMIT`, or `ROLLBACK` on an exception (sqlite3 in autocommit mode)."""
        self._conn.execute(begin)
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")


_SQLITE_TABLES = (
    "CREATE TABLE IF NOT EXISTS hw_online_views (env TEXT NOT NULL, view TEXT NOT NULL, "
    "state INTEGER NOT NULL, meta TEXT NOT NULL, PRIMARY KEY (env, view)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS hw_online_builds (state INTEGER PRIMARY KEY, env TEXT NOT NULL,"
    " view TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS hw_online_rows (state INTEGER NOT NULL, key TEXT NOT NULL, "
    "record TEXT NOT NULL, PRIMARY KEY (state, key)) WITHOUT ROWID",
)
_SQLITE_POINTER = "SELECT state, meta FROM hw_online_views WHERE env = ? AND view = ?"
_SQLITE_RECORDS = (
    "SELECT key, record FROM hw_online_rows WHERE state = ? "
    "AND key IN (SELECT value FROM json_each(?))"
)
_SQLITE_BUILD = "INSERT INTO hw_online_builds (state, env, view) VALUES (?, ?, ?)"
_SQLITE_INSERT = "INSERT OR REPLACE INTO hw_online_rows (state, key, record) VALUES (?, ?, ?)"
_SQLITE_SWAP = "INSERT OR REPLACE INTO hw_online_views (env, view, state, meta) VALUES (?,?,?,?)"
_SQLITE_DROP = "DELETE FROM hw_online_views WHERE env = ? AND view = ?"
_SQLITE_STALE = (
    "SELECT state FROM hw_online_builds WHERE env = ? AND view = ? AND state NOT IN "
    "(SELECT state FROM hw_online_views WHERE env = ? AND view = ?)"
)


class RedisOnline(OnlineStore):
    """The online store in Redis: one hash per state (`…:online:<env>/<view>:<state>`, key →
    record) and one index hash (`headwater:<project>:online`, `<env>/<view>` → `Held`), whose
    field is the pointer a refresh switches. A state being written expires by itself unless
    it is switched to (a crashed refresh leaves nothing behind); a replaced one expires a
    minute later (a lookup that read the old pointer still finds its rows)."""

    BUILDING_TTL = 24 * 3600  # seconds a state being written lives unless switched to
    REPLACED_TTL = 60  # seconds a replaced state stays readable
    BATCH = 10_000  # records sent per round trip

    def __init__(self, url: str, *, namespace: str):
        import redis

        self._index = f"headwater:{namespace}:online"
        self.url = _redacted(url)
        try:
            self._client = redis.Redis.from_url(url)
            self._client.ping()
        except (redis.RedisError, ValueError) as err:
            raise StoreError(
                f"cannot reach the online store {self.url}: {err}",
                where=Location("headwater.yml", field="online"),
                hint="start Redis there, or point `online:` at a SQLite file",
            ) from err

    def held(self, env: str | None = None) -> list[Held]:
        found = [Held.parse(m) for m in self._call(self._client.hgetall, self._index).values()]
        return sorted((h for h in found if env in (None, h.env)), key=lambda h: (h.env, h.view))

    def lookup(self, env: str, view: str, keys: Sequence[str]) -> tuple[Held, dict[str, Found]]:
        meta = self._call(self._client.hget, self._index, f"{env}/{view}")
        if meta is None:
            raise self._missing(env, view)
        held = Held.parse(meta)
        records = self._call(self._client.hmget, self._data(held), list(keys)) if keys else []
        return held, {k: _decoded(held, r) for k, r in zip(keys, records, strict=True)}

    def replace(self, held: Held, batches: Iterable[pa.RecordBatch]) -> int:
        done = dataclasses.replace(held, state=secrets.token_hex(8))
        data = self._data(done)
        rows = 0
        for batch in batches:
            for chunk in _chunks(batch, self.BATCH):
                mapping: dict[Any, Any] = dict(_pairs(chunk))
                pipe = self._client.pipeline(transaction=False)
                pipe.hset(data, mapping=mapping)
                pipe.expire(data, self.BUILDING_TTL)
                self._call(pipe.execute)
                rows += chunk.num_rows
        done = dataclasses.replace(done, rows=rows)
        was = self.current(held.env, held.view)
        swap = self._client.pipeline(transaction=True)  # MULTI … EXEC
        swap.hset(self._index, f"{held.env}/{held.view}", done.text())
        swap.persist(data)
        if was is not None:
            swap.expire(self._data(was), self.REPLACED_TTL)
        self._call(swap.execute)
        return rows

    def remove(self, env: str, view: str) -> None:
        was = self.current(env, view)
        if was is not None:
            drop = self._client.pipeline(transaction=True)
            drop.hdel(self._index, f"{env}/{view}")
            drop.expire(self._data(was), self.REPLACED_TTL)
            self._call(drop.execute)

    def close(self) -> None:
        self._client.close()

    def _data(self, held: Held) -> str:
        return f"{self._index}:{held.env}/{held.view}:{held.state}"

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        import redis

        try:
            return method(*args, **kwargs)
        except redis.RedisError as err:
            raise StoreError(
                f"the online store {self.url} failed: {err}",
                hint="is Redis still running there?",
            ) from err


def _redacted(url: str) -> str:
    """The URL without its password."""
    scheme, _, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    return f"{scheme}://{userinfo.split(':')[0]}:***@{host}" if at else url


def _pairs(batch: pa.RecordBatch) -> Iterator[tuple[str, str]]:
    """(key, record) of each row of a batch `latest` returned."""
    keys, found = batch.column(_KEY).to_pylist(), batch.column(_RECORD).to_pylist()
    return zip(keys, found, strict=True)


def _chunks(batch: pa.RecordBatch, size: int) -> Iterator[pa.RecordBatch]:
    for start in range(0, batch.num_rows, size):
        yield batch.slice(start, size)


# ---- refreshing -------------------------------------------------------------------------


def refresh(
    project: Project,
    engine: Engine,
    lake: Lake,
    catalog: Catalog,
    env: str,
    *,
    now: datetime,
    store: OnlineStore | None = None,
) -> list[str]:
    """Bring the online store up to `env`'s served products: every feature view whose model's
    product snapshot (or whose declaration) differs from the one held is recomputed — the
    latest row of each entity, by `engine` over the snapshot's files, streamed into a new
    state; views no longer declared are forgotten. The views refreshed, by name.

    Raises:
        SpecError: a view names a column its model does not have.
        StoreError: the online store cannot be opened or written.
    """
    views = feature_views(project)
    opened = store or OnlineStore.open(project)
    try:
        held = {h.view: h for h in opened.held(env)}
        for gone in sorted(set(held) - set(views)):
            opened.remove(env, gone)
        products = catalog.served(env, sorted({v.model for v in views.values()}))
        refreshed = []
        for name, view in sorted(views.items()):
            product = products.get(view.model)
            if product is None:
                continue  # not published in env (yet): nothing to serve
            was, wanted = held.get(name), (product.product, product.snapshot_id, definition(view))
            if was is not None and (was.product, was.snapshot_id, was.definition) == wanted:
                continue
            entity, stamp = tuple(view.spec.entity), now.astimezone(UTC).isoformat()
            new = Held(env, name, view.model, *wanted[:2], entity, (), wanted[2], 0, stamp)
            _write(opened, engine, lake, view, new)
            refreshed.append(name)
        return refreshed
    finally:
        if store is None:
            opened.close()


def _write(store: OnlineStore, engine: Engine, lake: Lake, view: Declared, held: Held) -> None:
    """Compute the latest row of each entity of the product snapshot `held` names and store it
    as (env, view)'s new state."""
    files = lake.snapshot_files(held.product, held.snapshot_id)
    if not files:  # an empty data state: no data file, no row
        schema = lake.schema(held.product) or pa.schema([])
        features = feature_columns(view, schema.names)
        store.replace(dataclasses.replace(held, features=tuple(features)), [])
        return
    scan = engine.scan(files)
    columns = list(engine.columns(exp.select(exp.Star()).from_(scan.copy())))
    features = feature_columns(view, columns)
    query = latest(scan, view.spec, features)
    batches = engine.stream(query, batch_rows=50_000)
    store.replace(dataclasses.replace(held, features=tuple(features)), batches)


def latest(source: exp.Expr, spec: FeatureView, features: Sequence[str]) -> exp.Select:
    """The latest row of each entity of `source` (a FROM-able), as `_hw_key` (`key_sql`) and
    `_hw_record` (`[event_us, [values…]]` as JSON text); rows without a key or a time are
    left out, as a training set never matches them either."""
    time = exp.cast(exp.column(spec.event_time, quoted=True), "timestamptz")
    values = exp.JSONArray(expressions=[exp.column(f, quoted=True) for f in features])
    record = exp.JSONArray(expressions=[exp.UnixMicros(this=time), values])
    present = [exp.column(c, quoted=True).is_(exp.null()).not_() for c in spec.entity]
    present.append(exp.column(spec.event_time, quoted=True).is_(exp.null()).not_())
    newest = exp.Window(
        this=exp.RowNumber(),
        partition_by=[exp.column(c, quoted=True) for c in spec.entity],
        order=exp.Order(expressions=[exp.Ordered(this=time.copy(), desc=True)]),
    )
    return (
        exp.select(key_sql(spec.entity).as_(_KEY), exp.cast(record, "varchar").as_(_RECORD))
        .from_(source)
        .where(exp.and_(*present))
        .qualify(exp.EQ(this=newest, expression=exp.Literal.number(1)))
    )
