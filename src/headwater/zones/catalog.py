"""The catalog database: runs, tasks, check results, model versions and environment pointers.

SQLAlchemy Core on SQLite (WAL) by default; any SQLAlchemy URL (PostgreSQL) works the same.
The Iceberg catalog tables of the lake live in the same database (see `zones.lake`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from headwater.errors import StoreError

metadata = sa.MetaData()

runs = sa.Table(
    "hw_runs",
    metadata,
    sa.Column("run_id", sa.String(40), primary_key=True),
    sa.Column("command", sa.String(40), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("summary", sa.Text),
)

tasks = sa.Table(
    "hw_tasks",
    metadata,
    sa.Column("run_id", sa.String(40), nullable=False, index=True),
    sa.Column("task", sa.String(200), nullable=False),
    sa.Column("stage", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("rows", sa.BigInteger),
    sa.Column("quarantined", sa.BigInteger),
    sa.Column("error", sa.Text),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
)

check_results = sa.Table(
    "hw_check_results",
    metadata,
    sa.Column("run_id", sa.String(40), nullable=False, index=True),
    sa.Column("target", sa.String(200), nullable=False),
    sa.Column("rule", sa.String(200), nullable=False),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("severity", sa.String(10), nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("metric", sa.Float),
    sa.Column("threshold", sa.String(100)),
    sa.Column("sql", sa.Text),
    sa.Column("samples", sa.Text),
    sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_hw_check_results_target_rule", "target", "rule", "checked_at"),
)

model_versions = sa.Table(
    "hw_model_versions",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("fingerprint", sa.String(64), primary_key=True),
    sa.Column("physical", sa.String(300), nullable=False),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("data_key", sa.String(64)),
    sa.Column("inputs", sa.Text),  # JSON: raw table -> last snapshot id this version has seen
    sa.Column("rows", sa.BigInteger),
    sa.Column("built_at", sa.DateTime(timezone=True)),
    sa.Column("run_id", sa.String(40)),
)

intervals = sa.Table(
    "hw_intervals",
    metadata,
    sa.Column("name", sa.String(200), nullable=False, index=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("start", sa.DateTime, nullable=False),
    sa.Column("end", sa.DateTime, nullable=False),
)

held_batches = sa.Table(
    "hw_held_batches",
    metadata,
    sa.Column("table_name", sa.String(200), primary_key=True),
    sa.Column("batch_id", sa.String(40), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("released_at", sa.DateTime(timezone=True)),  # NULL while held
)

env_pointers = sa.Table(
    "hw_env_pointers",
    metadata,
    sa.Column("env", sa.String(100), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("physical", sa.String(300), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# one hop of column lineage per row: a model's output column and one column it derives from
# ("*" is a table's rows; no upstream at all is a NULL upstream_table)
column_lineage = sa.Table(
    "hw_column_lineage",
    metadata,
    sa.Column("model", sa.String(200), nullable=False, index=True),
    sa.Column("output_column", sa.String(200), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("upstream_table", sa.String(200)),
    sa.Column("upstream_column", sa.String(200)),
    sa.Column("lineage_key", sa.String(64), nullable=False),
    sa.Index("ix_hw_column_lineage_upstream", "upstream_table", "upstream_column"),
)


@dataclass(frozen=True)
class ModelVersion:
    name: str
    fingerprint: str
    physical: str
    kind: str
    data_key: str | None = None
    rows: int | None = None
    inputs: dict[str, Any] = field(default_factory=dict)  # raw snapshots seen, and #keys


@dataclass(frozen=True)
class TaskRecord:
    task: str
    stage: str
    status: str
    rows: int | None = None
    quarantined: int | None = None
    error: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None


@dataclass(frozen=True)
class CheckRecord:
    target: str
    rule: str
    type: str
    severity: str
    passed: bool
    metric: float | None
    threshold: str | None
    sql: str
    samples: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class LineageRecord:
    """One stored hop: `model.output_column` derives from `upstream_table.upstream_column`."""

    model: str
    output_column: str
    position: int
    upstream_table: str | None
    upstream_column: str | None
    lineage_key: str


_LINEAGE_FIELDS = list(LineageRecord.__dataclass_fields__)


def catalog_url(location: str, root: Path) -> str:
    """A SQLAlchemy URL for the `catalog:` setting: a URL as is, a path relative to the project."""
    if "://" in location:
        return location
    path = (root / location).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    # encoded: `?`, `#` or `%` in a folder name (a `${VAR}` in the path) would cut the URL
    return sa.engine.URL.create("sqlite", database=str(path)).render_as_string()


class Catalog:
    """State headwater keeps between runs. Every write is its own short transaction."""

    def __init__(self, url: str, *, scrub: Callable[[str], str] | None = None):
        self.url = url
        # applied to every free text stored (errors, summaries, reasons, samples), so a secret
        # that reached a message never reaches the database
        self._scrub = scrub or (lambda text: text)
        try:
            self.engine = sa.create_engine(url, connect_args=_connect_args(url))
            if url.startswith("sqlite"):
                sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            # one query for the tables present, not one probe per table
            with self.engine.connect() as conn:
                present = set(sa.inspect(conn).get_table_names())
            missing = [t for t in metadata.sorted_tables if t.name not in present]
            if missing:
                metadata.create_all(self.engine, tables=missing)
        except (sa.exc.SQLAlchemyError, ValueError) as err:  # a bad URL parses to ValueError
            raise StoreError(
                self._scrub(f"cannot open the catalog: {_reason(err)}"),
                hint="check the URL and that the database accepts connections, or use a "
                "path such as .headwater/catalog.db",
            ) from None

    def close(self) -> None:
        self.engine.dispose()

    def _text(self, text: str | None) -> str | None:
        return None if text is None else self._scrub(text)

    @contextmanager
    def _tx(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as conn:
            yield conn

    # runs and tasks
    def start_run(self, command: str, *, now: datetime) -> str:
        run_id = f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        with self._tx() as conn:
            conn.execute(
                runs.insert().values(
                    run_id=run_id, command=command, started_at=now, status="running"
                )
            )
        return run_id

    def end_run(self, run_id: str, *, status: str, summary: dict[str, Any], now: datetime) -> None:
        with self._tx() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.run_id == run_id)
                .values(
                    ended_at=now,
                    status=status,
                    summary=self._scrub(json.dumps(summary, default=str)),
                )
            )

    def record_task(self, run_id: str, record: TaskRecord) -> None:
        self.record_tasks(run_id, [record])

    def record_tasks(self, run_id: str, records: Sequence[TaskRecord]) -> None:
        if records:
            with self._tx() as conn:
                conn.execute(
                    tasks.insert(),
                    [
                        {"run_id": run_id, **r.__dict__, "error": self._text(r.error)}
                        for r in records
                    ],
                )

    def recent_runs(self, limit: int = 10) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(runs.select().order_by(runs.c.started_at.desc()).limit(limit))
            return [dict(r._mapping) for r in rows]

    def run_tasks(self, run_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(tasks.select().where(tasks.c.run_id == run_id))
            return [dict(r._mapping) for r in rows]

    def last_outcomes(self, stage: str) -> dict[str, tuple[str, str | None]]:
        """Task → (status, error) of its newest finished run of `stage`: one query."""
        newest = (
            sa.func.row_number()
            .over(partition_by=tasks.c.task, order_by=runs.c.ended_at.desc())
            .label("n")
        )
        ranked = (
            sa.select(tasks.c.task, tasks.c.status, tasks.c.error, newest)
            .select_from(tasks.join(runs, tasks.c.run_id == runs.c.run_id))
            .where(tasks.c.stage == stage, runs.c.ended_at.is_not(None))
            .subquery()
        )
        query = sa.select(ranked.c.task, ranked.c.status, ranked.c.error).where(ranked.c.n == 1)
        with self.engine.connect() as conn:
            return {task: (status, error) for task, status, error in conn.execute(query)}

    # quality
    def metric_history(
        self, target: str, rules: Sequence[str], *, limit: int
    ) -> dict[str, list[float]]:
        """The earlier metrics of `rules` on `target`, newest first, at most `limit` each."""
        if not rules:
            return {}
        query = (
            sa.select(check_results.c.rule, check_results.c.metric)
            .where(
                check_results.c.target == target,
                check_results.c.rule.in_(list(rules)),
                check_results.c.metric.is_not(None),
            )
            .order_by(check_results.c.checked_at.desc())
        )
        out: dict[str, list[float]] = {rule: [] for rule in rules}
        with self.engine.connect() as conn:
            for rule, metric in conn.execute(query):
                if len(out[rule]) < limit:
                    out[rule].append(float(metric))
        return out

    def record_checks(self, run_id: str, results: Sequence[CheckRecord], *, now: datetime) -> None:
        if not results:
            return
        values = [
            {
                **r.__dict__,
                "sql": self._scrub(r.sql),
                "samples": self._scrub(json.dumps(r.samples, default=str)),
                "run_id": run_id,
                "checked_at": now,
            }
            for r in results
        ]
        with self._tx() as conn:
            conn.execute(check_results.insert(), values)

    def check_history(self, target: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        query = check_results.select().order_by(check_results.c.checked_at.desc()).limit(limit)
        if target:
            query = query.where(check_results.c.target == target)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # versions and environments
    def model_versions(self) -> dict[tuple[str, str], ModelVersion]:
        """Every recorded version by (name, fingerprint): one query per run, not per model."""
        with self.engine.connect() as conn:
            rows = conn.execute(model_versions.select())
            return {(v.name, v.fingerprint): v for v in (_version(r._mapping) for r in rows)}

    def all_intervals(self) -> dict[tuple[str, str], list[tuple[datetime, datetime]]]:
        """The done ranges of every incremental version, by (name, fingerprint): one query
        per build, not one per model."""
        query = sa.select(
            intervals.c.name, intervals.c.fingerprint, intervals.c.start, intervals.c.end
        ).order_by(intervals.c.name, intervals.c.fingerprint, intervals.c.start)
        out: dict[tuple[str, str], list[tuple[datetime, datetime]]] = {}
        with self.engine.connect() as conn:
            for name, fp, lo, hi in conn.execute(query):
                out.setdefault((name, fp), []).append((lo, hi))
        return out

    def published_rows(self, env: str) -> dict[str, int | None]:
        """Rows of the version each model of `env` points at, as recorded when it was built."""
        join = env_pointers.join(
            model_versions,
            sa.and_(
                env_pointers.c.name == model_versions.c.name,
                env_pointers.c.fingerprint == model_versions.c.fingerprint,
            ),
        )
        query = (
            sa.select(env_pointers.c.name, model_versions.c.rows)
            .select_from(join)
            .where(env_pointers.c.env == env)
        )
        with self.engine.connect() as conn:
            return {name: rows for name, rows in conn.execute(query)}

    def publish_all(
        self,
        built: Sequence[tuple[ModelVersion, Sequence[tuple[datetime, datetime]] | None]],
        *,
        env: str,
        run_id: str,
        now: datetime,
    ) -> None:
        """Record built versions with their done intervals and point `env` at them, in ONE
        catalog transaction (per-model transactions would queue on SQLite's write lock)."""
        if not built:
            return
        names = [v.name for v, _ in built]
        keys = [(v.name, v.fingerprint) for v, _ in built]
        incremental = [(v.name, v.fingerprint) for v, done in built if done is not None]
        # deletes by key run as one executemany each, not one statement per model
        with self._tx() as conn:
            if incremental:
                conn.execute(
                    intervals.delete().where(
                        intervals.c.name == sa.bindparam("n"),
                        intervals.c.fingerprint == sa.bindparam("f"),
                    ),
                    [{"n": name, "f": fp} for name, fp in incremental],
                )
            done_rows = [
                {"name": v.name, "fingerprint": v.fingerprint, "start": lo, "end": hi}
                for v, done in built
                for lo, hi in done or []
            ]
            if done_rows:
                conn.execute(intervals.insert(), done_rows)
            conn.execute(
                model_versions.delete().where(
                    model_versions.c.name == sa.bindparam("n"),
                    model_versions.c.fingerprint == sa.bindparam("f"),
                ),
                [{"n": name, "f": fp} for name, fp in keys],
            )
            conn.execute(
                model_versions.insert(),
                [
                    {
                        **v.__dict__,
                        "inputs": json.dumps(v.inputs),
                        "built_at": now,
                        "run_id": run_id,
                    }
                    for v, _ in built
                ],
            )
            conn.execute(
                env_pointers.delete().where(
                    env_pointers.c.env == env, env_pointers.c.name.in_(names)
                )
            )
            conn.execute(
                env_pointers.insert(),
                [
                    {
                        "env": env,
                        "name": v.name,
                        "physical": v.physical,
                        "fingerprint": v.fingerprint,
                        "updated_at": now,
                    }
                    for v, _ in built
                ],
            )

    # raw batches held back from readers: a blocking contract rule failed on them
    def hold(self, table: str, batch_id: str, *, reason: str, now: datetime) -> None:
        with self._tx() as conn:
            conn.execute(
                held_batches.delete().where(
                    held_batches.c.table_name == table, held_batches.c.batch_id == batch_id
                )
            )
            conn.execute(
                held_batches.insert().values(
                    table_name=table, batch_id=batch_id, reason=self._scrub(reason), held_at=now
                )
            )

    def release(self, table: str, batch_id: str, *, now: datetime) -> None:
        with self._tx() as conn:
            conn.execute(
                held_batches.update()
                .where(held_batches.c.table_name == table, held_batches.c.batch_id == batch_id)
                .values(released_at=now)
            )

    def held(self, table: str) -> dict[str, str]:
        """Batch id → why it is held, for the batches of `table` readers must not see."""
        return self.held_all().get(table, {})

    def held_all(self) -> dict[str, dict[str, str]]:
        """Table → its held batches (batch id → why): one query for every raw table."""
        query = sa.select(
            held_batches.c.table_name, held_batches.c.batch_id, held_batches.c.reason
        ).where(held_batches.c.released_at.is_(None))
        out: dict[str, dict[str, str]] = {}
        with self.engine.connect() as conn:
            for table, batch, reason in conn.execute(query):
                out.setdefault(table, {})[batch] = reason
        return out

    def releases(self) -> dict[str, int]:
        """Table → how many of its batches were ever released (models that read a table
        built while a batch was held must take the released batch in)."""
        query = (
            sa.select(held_batches.c.table_name, sa.func.count())
            .where(held_batches.c.released_at.is_not(None))
            .group_by(held_batches.c.table_name)
        )
        with self.engine.connect() as conn:
            return {table: int(n) for table, n in conn.execute(query)}

    def pointers(self, env: str) -> dict[str, str]:
        """Logical name → physical table for every model of `env`."""
        query = sa.select(env_pointers.c.name, env_pointers.c.physical).where(
            env_pointers.c.env == env
        )
        with self.engine.connect() as conn:
            return {name: physical for name, physical in conn.execute(query)}

    def unpublish(self, names: Sequence[str], *, env: str) -> None:
        """Remove the pointers of `names` from `env` (models removed from the project)."""
        if names:
            with self._tx() as conn:
                conn.execute(
                    env_pointers.delete().where(
                        env_pointers.c.env == env, env_pointers.c.name.in_(list(names))
                    )
                )

    # column lineage
    def replace_column_lineage(
        self, models: Sequence[str], records: Sequence[LineageRecord]
    ) -> None:
        """Replace what is stored for `models` by `records` (their rows), in one transaction."""
        with self._tx() as conn:
            if models:
                conn.execute(column_lineage.delete().where(column_lineage.c.model.in_(models)))
            if records:
                conn.execute(column_lineage.insert(), [r.__dict__ for r in records])

    def column_lineage(self) -> list[LineageRecord]:
        """Every stored hop, by model and output position."""
        query = column_lineage.select().order_by(
            column_lineage.c.model,
            column_lineage.c.position,
            column_lineage.c.upstream_table,
            column_lineage.c.upstream_column,
        )
        return self._lineage(query)

    def upstream_columns(self, table: str, column: str) -> list[LineageRecord]:
        """What `table.column` derives from, one hop up (nothing for a raw table)."""
        query = column_lineage.select().where(
            column_lineage.c.model == table, column_lineage.c.output_column == column
        )
        return self._lineage(
            query.order_by(column_lineage.c.upstream_table, column_lineage.c.upstream_column)
        )

    def downstream_columns(self, table: str, column: str) -> list[LineageRecord]:
        """The model columns that derive from `table.column`, one hop down."""
        query = column_lineage.select().where(
            column_lineage.c.upstream_table == table, column_lineage.c.upstream_column == column
        )
        return self._lineage(query.order_by(column_lineage.c.model, column_lineage.c.position))

    def _lineage(self, query: sa.Select[Any]) -> list[LineageRecord]:
        # positional rows: building records from row mappings costs twice as much at 5k rows
        query = query.with_only_columns(*(column_lineage.c[f] for f in _LINEAGE_FIELDS))
        with self.engine.connect() as conn:
            return [LineageRecord(*r) for r in conn.execute(query)]


def _version(m: Any) -> ModelVersion:
    return ModelVersion(
        m["name"],
        m["fingerprint"],
        m["physical"],
        m["kind"],
        m["data_key"],
        m["rows"],
        json.loads(m["inputs"]) if m["inputs"] else {},
    )


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
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def utcnow() -> datetime:
    return datetime.now(UTC)
