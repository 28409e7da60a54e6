"""The catalog's tables (SQLAlchemy Core), one `MetaData` behind every part of the catalog.

A table or column added here also needs a migration (`migrations.py`): existing catalogs
get it only from one.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

metadata = sa.MetaData()


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A moment in UTC. SQLite hands back what it stored without its zone: it was written
    in UTC, so it comes back aware, as PostgreSQL gives it, and callers never patch it."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


runs = sa.Table(
    "hw_runs",
    metadata,
    sa.Column("run_id", sa.String(40), primary_key=True),
    sa.Column("command", sa.String(40), nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("ended_at", UtcDateTime()),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("summary", sa.Text),
    sa.Column("env", sa.String(100)),  # migration 4: the environment it built (None: prod)
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
    sa.Column("started_at", UtcDateTime()),
    sa.Column("ended_at", UtcDateTime()),
    sa.Column("attempts", sa.Integer),  # migration 2
    # migration 7: what a task read and wrote, and how long it waited for a worker
    sa.Column("rows_in", sa.BigInteger),
    sa.Column("bytes", sa.BigInteger),
    sa.Column("queued_s", sa.Float),
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
    sa.Column("checked_at", UtcDateTime(), nullable=False),
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
    sa.Column("built_at", UtcDateTime()),
    sa.Column("run_id", sa.String(40)),
    sa.Column("sql", sa.Text),  # migration 3: the normalized query it was built from
    sa.Column("meta", sa.String(64)),  # migration 3: the hash of its docs, owners, tags
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
    sa.Column("held_at", UtcDateTime(), nullable=False),
    sa.Column("released_at", UtcDateTime()),  # NULL while held
    # migration 2: an operator's decision (`headwater batches release|discard`)
    sa.Column("discarded_at", UtcDateTime()),  # held out for good
    sa.Column("decided_by", sa.String(200)),
    sa.Column("decision_note", sa.Text),
)

env_pointers = sa.Table(
    "hw_env_pointers",
    metadata,
    sa.Column("env", sa.String(100), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("physical", sa.String(300), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
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


# migration 2: orchestration

# one row per lease: the run that holds the project (see zones/catalog/lease.py)
leases = sa.Table(
    "hw_leases",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("token", sa.String(40), nullable=False),
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("command", sa.String(200), nullable=False),
    sa.Column("acquired_at", UtcDateTime(), nullable=False),
    sa.Column("heartbeat_at", UtcDateTime(), nullable=False),
)

# one incident per problem: opened once, resolved once (see zones/catalog/alerts.py)
alerts = sa.Table(
    "hw_alerts",
    metadata,
    sa.Column("alert_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(300), nullable=False, index=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("severity", sa.String(10), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("opened_at", UtcDateTime(), nullable=False),
    sa.Column("resolved_at", UtcDateTime()),  # NULL while open
    # migration 7: what routing reads (the subject's owner and tags, JSON)
    sa.Column("owner", sa.String(200)),
    sa.Column("tags", sa.Text),
)

# what each alert channel is sent: an incident's opening and its resolution, kept until sent
alert_events = sa.Table(
    "hw_alert_events",
    metadata,
    sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.Integer, nullable=False, index=True),
    sa.Column("payload", sa.Text, nullable=False),  # JSON, as sent
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("delivered_at", UtcDateTime()),  # NULL until every channel took it
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("not_before", UtcDateTime()),  # migration 7: held back (quiet hours, rate limit)
)

# the scheduler's memory: when each job last fired, what raw data it last saw
schedule_state = sa.Table(
    "hw_schedule",
    metadata,
    sa.Column("job", sa.String(200), primary_key=True),
    sa.Column("fired_at", UtcDateTime()),
    sa.Column("seen", sa.Text),  # JSON: raw table -> its version when last looked at
)

# backfills: what was asked, and which of its intervals are done (resumable)
backfills = sa.Table(
    "hw_backfills",
    metadata,
    sa.Column("backfill_id", sa.String(40), primary_key=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("start", sa.DateTime, nullable=False),
    sa.Column("end", sa.DateTime, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("requested_by", sa.String(200)),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("ended_at", UtcDateTime()),
)
backfill_intervals = sa.Table(
    "hw_backfill_intervals",
    metadata,
    sa.Column("backfill_id", sa.String(40), nullable=False, index=True),
    sa.Column("start", sa.DateTime, nullable=False),
    sa.Column("end", sa.DateTime, nullable=False),
)

ORCHESTRATION_TABLES = [leases, alerts, alert_events, schedule_state, backfills, backfill_intervals]


# change management (migration 4): a release is one immutable set of an environment's
# pointers, written in the transaction that moves them; a frozen copy keeps the data a
# release showed of a version that has since been written in place
releases = sa.Table(
    "hw_releases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("env", sa.String(100), nullable=False, index=True),
    sa.Column("kind", sa.String(20), nullable=False),  # apply | promote | rollback | run
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("run_id", sa.String(40)),
    sa.Column("code_version", sa.String(80)),  # the git commit, "+dirty" if edited since
    sa.Column("note", sa.Text),  # e.g. "rollback to 3"
    sa.Column("changed", sa.Text, nullable=False),  # JSON: added, removed, changed models
    sa.Column("checks", sa.Text, nullable=False),  # JSON: the rule results of the run
    # pending until the warehouse shows it (its views flipped), then done; abandoned when a
    # crash between the two left the warehouse showing what it showed before
    sa.Column("state", sa.String(10), nullable=False, server_default="done"),
    sa.Column("undo", sa.Text),  # JSON: name → [physical, fingerprint] | null, while pending
)

release_pointers = sa.Table(
    "hw_release_pointers",
    metadata,
    sa.Column("release_id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("physical", sa.String(300), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("data_key", sa.String(64)),
    sa.Column("rows", sa.BigInteger),
    sa.Column("raw", sa.Text),  # JSON: raw table → the Iceberg snapshot id it was built from
)

frozen = sa.Table(
    "hw_frozen",
    metadata,
    sa.Column("physical", sa.String(300), primary_key=True),
    sa.Column("data_key", sa.String(64), primary_key=True),
    sa.Column("copy", sa.String(300), nullable=False),
    sa.Column("rows", sa.BigInteger),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

# facts about the catalog itself: which project it belongs to
catalog_facts = sa.Table(
    "hw_facts",
    metadata,
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

CHANGE_TABLES = [releases, release_pointers, frozen, catalog_facts]

# every published data product: one data state of a served model (its name and data key) as
# one snapshot of an Iceberg table in the lake's `products` namespace; serving reads these
products = sa.Table(
    "hw_products",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("data_key", sa.String(64), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("product", sa.String(300), nullable=False),  # the Iceberg table, `products.x`
    sa.Column("snapshot_id", sa.BigInteger, nullable=False),
    sa.Column("rows", sa.BigInteger),
    sa.Column("published_at", UtcDateTime(), nullable=False),
)

# API keys of the data API: only a key's SHA-256 is kept; its role is one of policies.yml's
api_keys = sa.Table(
    "hw_api_keys",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("role", sa.String(100), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("revoked_at", UtcDateTime()),
)

# who read or did what: one row per request of the data API (the governance issue adds more)
audit_log = sa.Table(
    "hw_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UtcDateTime(), nullable=False, index=True),
    sa.Column("actor", sa.String(100)),  # the API key's name (None: anonymous)
    sa.Column("role", sa.String(100)),
    sa.Column("action", sa.String(40), nullable=False),  # e.g. read
    sa.Column("subject", sa.String(300)),  # e.g. the model read
    sa.Column("status", sa.Integer),  # the HTTP status answered
    sa.Column("detail", sa.Text),  # JSON: filters, rows, release, …
)

SERVING_TABLES = [products, api_keys, audit_log]

# the right to erasure (migration 6): one row per `headwater forget` — the subject's key and a
# SHA-256 of its value (never the value), what was removed where, and when the snapshots that
# still hold it expire (the lake's files and commits to expire, as JSON)
erasures = sa.Table(
    "hw_erasures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subject_key", sa.String(200), nullable=False),  # e.g. customer_id
    sa.Column("value_sha256", sa.Text, nullable=False),  # one per subject, comma separated
    sa.Column("reason", sa.Text),
    sa.Column("requested_by", sa.String(200)),
    sa.Column("requested_at", UtcDateTime(), nullable=False, index=True),
    sa.Column("expire_after", UtcDateTime(), nullable=False),
    sa.Column("done_at", UtcDateTime()),  # NULL until its snapshots expired
    sa.Column("tables", sa.Text),  # JSON: table → rows removed (lake and warehouse)
    sa.Column("rows", sa.BigInteger),
    sa.Column("lake", sa.Text),  # JSON: lake table → {files, overwrites} its expiry removes
)

ERASURE_TABLES = [erasures]

# observability (migration 7): a profile of each landed batch and built version — its rows
# and, per column, nulls, distinct, bounds, mean, quantiles, top values, a histogram (JSON,
# compact: see quality/profile.py)
profiles = sa.Table(
    "hw_profiles",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("target", sa.String(200), nullable=False),  # raw.orders, marts.revenue
    sa.Column("kind", sa.String(10), nullable=False),  # batch | version
    sa.Column("ref", sa.String(100), nullable=False),  # the batch id or version fingerprint
    sa.Column("run_id", sa.String(40)),
    sa.Column("profiled_at", UtcDateTime(), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("columns", sa.Text, nullable=False),
    sa.Index("ix_hw_profiles_target_at", "target", "profiled_at"),
)

OBSERVE_TABLES = [profiles]

# which migration made each schema change: one row per migration applied
schema_versions = sa.Table(
    "hw_schema",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("applied_at", UtcDateTime(), nullable=False),
)
# the tables of the first release, made by migration 1
SCHEMA_TABLES = [
    runs,
    tasks,
    check_results,
    model_versions,
    intervals,
    held_batches,
    env_pointers,
    column_lineage,
]
