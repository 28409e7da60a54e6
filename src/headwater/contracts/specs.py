"""The frozen spec objects a project is made of: settings, contracts, columns, rules, model config.

Field names follow the seed verbatim (`IngestionContract`, `DataQualityRule`); what we add is
documented on the field. Validation here is structural; cross-file checks live in `project.py`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import sqlglot
from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from sqlglot import exp

import headwater.engine.dialect as authored
from headwater.contracts.base import IDENTIFIER as _IDENTIFIER
from headwater.contracts.base import FieldError, Identifier, Spec
from headwater.contracts.connectors import Connector
from headwater.contracts.orchestration import AlertChannel, Lineage, RunSla, Schedule, Sla
from headwater.contracts.thresholds import parse_duration, parse_threshold


class Delivery(StrEnum):
    STREAM = "stream"
    BATCH = "batch"


class Load(StrEnum):
    """What one landed batch means (raw itself is append-only in every mode)."""

    APPEND = "append"  # new records: raw.<name> shows every batch
    SNAPSHOT = "snapshot"  # a full copy: raw.<name> shows the latest, earlier ones are history
    MERGE = "merge"  # new versions by primary_key: raw.<name> shows each key's newest


class PrivacyLevel(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"
    RESTRICTED = "restricted"


class Evolution(StrEnum):
    """What landing does with a column the contract does not declare."""

    EVOLVE = "evolve"  # add it to the raw table
    FREEZE = "freeze"  # quarantine the record
    DISCARD_ROW = "discard_row"  # quarantine the record (reason: discarded by policy)
    DISCARD_COLUMN = "discard_column"  # drop the column, keep the record


class Severity(StrEnum):
    WARN = "warn"
    ERROR = "error"


class OnFail(StrEnum):
    """What a failing rule does: report, stop the publish, or route the failing rows aside."""

    WARN = "warn"  # report only (the default of severity warn)
    BLOCK = "block"  # publish nothing (the default of severity error)
    QUARANTINE = "quarantine"  # failing rows go to <table>__quarantine; the rest proceed


class RuleType(StrEnum):
    """The seed's four rule types, plus the constraints and tests it names besides."""

    FRESHNESS = "freshness"
    UNIQUENESS = "uniqueness"
    COMPLETENESS = "completeness"
    VALID_VALUES = "valid_values"
    NOT_NULL = "not_null"
    ROW_COUNT = "row_count"
    VOLUME = "volume"  # row count against the average of the last runs
    SCHEMA = "schema"  # columns and types against the declaration
    REFERENTIAL_INTEGRITY = "referential_integrity"  # values exist in another table
    CUSTOM_SQL = "custom_sql"  # a query returning the failing rows
    DRIFT = "drift"  # a column's distribution against the previous batch/version or a window
    ANOMALY = "anomaly"  # a metric (rows, freshness, nulls, …) against its own history


class ModelKind(StrEnum):
    VIEW = "view"
    TABLE = "table"
    INCREMENTAL_BY_TIME = "incremental_by_time"
    EPHEMERAL = "ephemeral"  # never materialized: inlined into the models that read it
    APPEND = "append"  # each run appends what the query makes of the new raw batches
    INCREMENTAL_BY_KEY = "incremental_by_key"  # new raw batches merged by a unique key
    SCD2 = "scd2"  # every version of each key, with valid_from / valid_to
    # a kept result, refreshed when its inputs change (only the touched time buckets of an
    # aggregate over an incremental_by_time model)
    MATERIALIZED_VIEW = "materialized_view"


class IntervalUnit(StrEnum):
    """The size of one interval of an `incremental_by_time` model."""

    HOUR = "hour"
    DAY = "day"
    WEEK = "week"


class Rule(Spec):
    """The seed's DataQualityRule (`name`, `type`, `target`, `threshold`) plus what we add.

    `threshold` means, per type: freshness, the maximum age as a duration ("2h");
    uniqueness, the allowed duplicate rows (count, or a fraction like "0.5%");
    completeness, the allowed null rate; valid_values, not_null, referential_integrity and
    custom_sql, the allowed bad rows; row_count, the minimum row count; volume, the allowed
    change against the average of the last `runs` results ("20%"); schema, the allowed
    differences (default 0).
    """

    name: Identifier
    type: RuleType
    target: str = Field(
        description="A column, or for uniqueness a comma-separated key; "
        "for row_count the table itself ('*')."
    )
    threshold: int | float | str | None = None
    severity: Severity = Field(default=Severity.ERROR, description="ours: warn | error")
    on_fail: OnFail | None = Field(
        default=None,
        description="ours: warn | block | quarantine; default block for severity error, "
        "warn for warn. quarantine (not_null, valid_values) routes the failing rows to "
        "<table>__quarantine and lets the others through",
    )
    values: list[str | int | float | bool] | None = Field(
        default=None, description="ours: allowed values, for valid_values"
    )
    min: int | float | str | None = Field(default=None, description="ours: lower bound")
    max: int | float | str | None = Field(default=None, description="ours: upper bound")
    pattern: str | None = Field(default=None, description="ours: regex, for valid_values")
    min_length: int | None = Field(
        default=None, ge=0, description="ours: shortest allowed text, for valid_values"
    )
    max_length: int | None = Field(
        default=None, ge=0, description="ours: longest allowed text, for valid_values"
    )
    where: str | None = Field(default=None, description="ours: SQL filter scoping the rule")
    to: str | None = Field(
        default=None,
        description="ours: for referential_integrity, the column values must exist in, "
        "as zone.table.column (e.g. clean.customers.customer_id)",
    )
    sql: str | None = Field(
        default=None,
        description="ours: for custom_sql, a SELECT returning the failing rows; the table "
        "under test is `this` (e.g. select * from this where amount < 0)",
    )
    runs: int = Field(
        default=7, ge=1, description="ours: for volume, how many earlier results to average"
    )
    allow_extra: bool = Field(
        default=False, description="ours: for schema, columns beyond the declared ones pass"
    )
    method: Literal["psi", "ks", "js", "chi2"] | None = Field(
        default=None,
        description="ours: for drift, the statistic: psi or ks (numeric columns), js or chi2 "
        "(categorical); default psi for a numeric column, js otherwise",
    )
    reference: str = Field(
        default="previous",
        description="ours: for drift, what the rows are compared with: the previous batch or "
        "version (previous), or everything of a window before them, as a duration (7d)",
    )
    bins: int = Field(
        default=10, ge=2, le=100, description="ours: for drift (psi), how many quantile bins"
    )
    metric: Literal["rows", "freshness", "nulls", "distinct", "mean"] | None = Field(
        default=None,
        description="ours: for anomaly, the metric judged against its history: rows or "
        "freshness (target '*'), nulls, distinct or mean (target a column)",
    )
    season: Literal["weekly", "none"] = Field(
        default="weekly",
        description="ours: for anomaly, compare with the same weekday (weekly) or all days",
    )
    warmup: int = Field(
        default=14,
        ge=3,
        description="ours: for anomaly, how many earlier values it needs before it judges",
    )

    @field_validator("threshold", "min", "max", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f'{str(value).lower()} is not a number; write e.g. 0, 10 or "1%"')
        return value

    @field_validator("threshold")
    @classmethod
    def _threshold_parses(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return value
        kind = info.data.get("type")
        if kind is RuleType.FRESHNESS:
            parse_duration(value)
            return value
        limit = parse_threshold(value)
        if limit < 0:
            raise ValueError(f"{value!r} is negative; a threshold is 0 or more")
        if kind is RuleType.COMPLETENESS and limit > 1:
            raise ValueError(
                f"{value!r} is more than 100%: completeness allows a null rate, "
                'from 0 to 1 (or "0%" to "100%")'
            )
        counted = kind not in (
            RuleType.COMPLETENESS,
            RuleType.VOLUME,
            RuleType.DRIFT,  # the largest value of its statistic allowed (psi 0.2)
            RuleType.ANOMALY,  # how many robust deviations from the baseline are allowed
        )
        if counted and limit > 1 and not limit.is_integer():
            raise ValueError(
                f"{value!r} is neither a count of rows (whole) nor a fraction (below 1)"
            )
        percent = isinstance(value, str) and value.strip().endswith("%")
        # volume's threshold is a change, which may exceed 100%
        if percent and limit > 1 and counted:
            raise ValueError(f"{value!r} is more than 100% of the rows")
        return value

    @field_validator("min", "max")
    @classmethod
    def _count_bound(cls, value: Any, info: ValidationInfo) -> Any:
        counted = value is not None and info.data.get("type") is RuleType.ROW_COUNT
        if counted and parse_threshold(value) < 0:
            raise ValueError(f"{value!r} is negative; a row count is 0 or more")
        return value

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as err:
                raise ValueError(f"'{value}' is not a valid regex: {err}") from err
        return value

    @field_validator("where")
    @classmethod
    def _where_parses(cls, value: str | None) -> str | None:
        if value is not None:
            _parse_sql(value)
        return value

    @field_validator("sql")
    @classmethod
    def _sql_is_a_query(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                query = authored.parse_one(value)
            except sqlglot.errors.ParseError as err:
                why = err.errors[0]["description"] if err.errors else "no statement in it"
                raise ValueError(f"is not SQL: {why}") from None
            if not isinstance(query, exp.Query):
                raise ValueError("must be a SELECT returning the failing rows")
        return value

    @field_validator("to")
    @classmethod
    def _to_names_a_column(cls, value: str | None) -> str | None:
        parts = value.split(".") if value is not None else []
        if value is not None and (len(parts) != 3 or not all(map(_IDENTIFIER.match, parts))):
            raise ValueError(
                f"{value!r} is not zone.table.column; write e.g. clean.customers.customer_id"
            )
        return value

    @model_validator(mode="after")
    def _target_fits_type(self) -> Rule:
        names = self.columns
        table = self.target.strip() == "*"
        if self.type is RuleType.ANOMALY and self.metric is not None:
            whole = self.metric in ("rows", "freshness")
            if whole != table:
                want = "'*' (the table)" if whole else "a column, e.g. target: amount"
                raise FieldError(
                    f"an anomaly rule on {self.metric} needs target: {want}", loc=("target",)
                )
            return self._own_fields()
        if self.type in TABLE_RULES:
            if not table:
                raise FieldError(
                    f"a {self.type.value} rule checks the whole table; write target: '*'",
                    loc=("target",),
                )
        elif table or not names:
            raise FieldError(
                f"{self.target!r} names no column; a {self.type.value} rule checks a column, "
                "e.g. target: order_id",
                loc=("target",),
            )
        elif len(names) > 1 and self.type is not RuleType.UNIQUENESS:
            raise FieldError(
                f"{self.target!r} names {len(names)} columns; a {self.type.value} rule checks "
                "one (only uniqueness takes a key of several)",
                loc=("target",),
            )
        return self._own_fields()

    def _own_fields(self) -> Rule:
        for name, owners in OWN_FIELDS.items():
            if name in self.model_fields_set and self.type not in owners:
                kinds = " and ".join(t.value for t in owners)
                raise FieldError(f"`{name}` applies to {kinds} rules only", loc=(name,))
        return self

    @model_validator(mode="after")
    def _check_shape(self) -> Rule:
        if self.type is RuleType.FRESHNESS and self.threshold is None:
            raise ValueError("freshness needs a threshold duration, e.g. threshold: 2h")
        bounds = (self.min, self.max, self.min_length, self.max_length)
        if self.type is RuleType.VALID_VALUES and not (
            self.values or self.pattern or any(b is not None for b in bounds)
        ):
            raise ValueError(
                "valid_values needs `values`, `pattern`, `min`, `max`, `min_length` or `max_length`"
            )
        if self.type is RuleType.REFERENTIAL_INTEGRITY and self.to is None:
            raise ValueError(
                "referential_integrity needs `to`, the column whose values must exist, "
                "e.g. to: clean.customers.customer_id"
            )
        if self.type is RuleType.CUSTOM_SQL and self.sql is None:
            raise ValueError(
                "custom_sql needs `sql`, a SELECT returning the failing rows, "
                "e.g. sql: select * from this where amount < 0"
            )
        if self.type is RuleType.ANOMALY and self.metric is None:
            raise ValueError(
                "anomaly needs `metric`: rows, freshness, nulls, distinct or mean, e.g. "
                "metric: rows"
            )
        if self.type is RuleType.DRIFT and self.reference != "previous":
            try:
                parse_duration(self.reference)
            except ValueError:
                raise FieldError(
                    f"reference {self.reference!r} is neither `previous` nor a duration; "
                    "write e.g. reference: 7d",
                    loc=("reference",),
                ) from None
        if self.type is RuleType.VOLUME and self.threshold is None:
            raise ValueError('volume needs a threshold, the allowed change, e.g. threshold: "30%"')
        if self.on_fail is OnFail.QUARANTINE and self.type not in QUARANTINABLE:
            raise ValueError(
                f"on_fail: quarantine routes failing rows, which a {self.type.value} rule does "
                f"not have; use it with {' or '.join(t.value for t in QUARANTINABLE)}"
            )
        bounded = self.type is RuleType.ROW_COUNT and None not in (self.min, self.max)
        if bounded and parse_threshold(self.min) > parse_threshold(self.max):
            raise ValueError(f"min {self.min!r} is above max {self.max!r}")
        for name, used in (("to", RuleType.REFERENTIAL_INTEGRITY), ("sql", RuleType.CUSTOM_SQL)):
            if getattr(self, name) is not None and self.type is not used:
                raise ValueError(f"`{name}` applies to {used.value} rules only")
        return self

    @property
    def action(self) -> OnFail:
        """What failing does: `on_fail`, or what the severity implies."""
        if self.on_fail is not None:
            return self.on_fail
        return OnFail.BLOCK if self.severity is Severity.ERROR else OnFail.WARN

    @property
    def columns(self) -> list[str]:
        """The target's column names (uniqueness may name several)."""
        if self.target.strip() == "*":
            return []
        return [part.strip() for part in self.target.split(",") if part.strip()]


QUARANTINABLE = (RuleType.NOT_NULL, RuleType.VALID_VALUES)
# rules about the table as a whole, whose target is '*'
TABLE_RULES = (RuleType.ROW_COUNT, RuleType.VOLUME, RuleType.SCHEMA, RuleType.CUSTOM_SQL)
# fields that mean something for some rule types only (elsewhere they would be ignored)
OWN_FIELDS = {
    "values": (RuleType.VALID_VALUES,),
    "pattern": (RuleType.VALID_VALUES,),
    "min_length": (RuleType.VALID_VALUES,),
    "max_length": (RuleType.VALID_VALUES,),
    "min": (RuleType.VALID_VALUES, RuleType.ROW_COUNT),
    "max": (RuleType.VALID_VALUES, RuleType.ROW_COUNT),
    "method": (RuleType.DRIFT,),
    "reference": (RuleType.DRIFT,),
    "bins": (RuleType.DRIFT,),
    "metric": (RuleType.ANOMALY,),
    "season": (RuleType.ANOMALY,),
    "warmup": (RuleType.ANOMALY,),
}


METADATA_PREFIX = "_hw_"  # raw's own columns: _hw_batch_id, _hw_ingested_at, _hw_source, …


class Column(Spec):
    name: Identifier
    type: str = Field(
        default="varchar",
        description="A DuckDB SQL type: bigint, double, "
        "varchar, boolean, date, timestamp, timestamptz, decimal(p,s), …",
    )
    nullable: bool = True
    pii: str | None = Field(default=None, description="PII tag, e.g. email, phone, name")
    description: str | None = None

    @field_validator("name")
    @classmethod
    def _not_metadata(cls, value: str) -> str:
        if value.lower().startswith(METADATA_PREFIX):
            raise ValueError(
                f"{value!r}: names starting with {METADATA_PREFIX} are headwater's metadata "
                "columns (_hw_batch_id, _hw_ingested_at, _hw_source, _hw_late); rename it"
            )
        return value

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        return authored.shown(sql_type(value))


class Contract(Spec):
    """The seed's IngestionContract, plus connector, columns, keys, evolution and rules."""

    name: str = Field(default="", description="Set from the file name; not written by users")
    zone: Literal["raw", "seed"] = Field(
        default="raw", description="Set by headwater: seed for seeds/ files; not written by users"
    )
    source: str = Field(min_length=1)
    schema_version: str = Field(min_length=1)
    delivery: Delivery
    privacy_level: PrivacyLevel
    owner: str | None = None
    description: str | None = None
    connector: Connector
    # columns come before the fields checked against them (validators see earlier fields)
    columns: list[Column] = Field(default_factory=list)
    watermark: str | None = Field(
        default=None,
        description="Event-time column minus allowed lateness, "
        "e.g. 'updated_at - interval 2 hours'",
    )
    primary_key: list[str] = Field(default_factory=list)
    load: Load = Field(
        default=Load.APPEND,
        description="ours: what a batch means — append (new records), snapshot (a full copy) "
        "or merge (new versions by primary_key)",
    )
    newest_by: str | None = Field(
        default=None,
        description="ours, with load: merge: the column whose highest value is a key's newest "
        "version (default: the version landed last)",
    )
    evolution: Evolution = Evolution.EVOLVE
    rules: list[Rule] = Field(default_factory=list)
    retries: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description="ours: attempts after a retryable failure "
        "(default: headwater.yml's defaults.retries)",
    )
    timeout: str | None = Field(
        default=None,
        description="ours: no new attempt starts this long after the first, "
        "e.g. '10m' (default: headwater.yml's defaults.timeout)",
    )
    schedule: Schedule | None = Field(
        default=None,
        description="ours: when `headwater scheduler` lands it, a cron expression or "
        "{cron, timezone, catch_up}; what reads it is built when new data lands",
    )
    sla: Sla | None = Field(
        default=None, description="ours: how fresh raw.<name> must be ({fresh_by, max_age})"
    )
    pool: str | None = Field(
        default=None, description="ours: the pool (headwater.yml's pools:) its landing runs in"
    )

    @field_validator("timeout")
    @classmethod
    def _timeout_duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("columns")
    @classmethod
    def _columns_once(cls, value: list[Column]) -> list[Column]:
        first: dict[str, int] = {}
        for index, column in enumerate(value):
            key = column.name.lower()
            if key in first:
                earlier = value[first[key]].name
                same = "" if earlier == column.name else f" ({earlier!r} differs only in case)"
                raise FieldError(
                    f"column {column.name!r} is declared twice{same}; "
                    f"first at columns[{first[key]}]",
                    loc=(index, "name"),
                )
            first[key] = index
        return value

    @field_validator("rules")
    @classmethod
    def _rules_once(cls, value: list[Rule]) -> list[Rule]:
        return rules_once(value)

    @field_validator("schema_version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value

    @field_validator("watermark")
    @classmethod
    def _watermark_shape(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            column = parse_watermark(value)[0]
            _declared(column, info, what="column")
            declared = _type_of(column, info)
            if declared is not None and not declared.is_type(*exp.DataType.TEMPORAL_TYPES):
                raise ValueError(
                    f"column {column!r} is {_shown_type(declared)}; a watermark needs "
                    "a date or timestamp column (declare its type as timestamp)"
                )
        return value

    @field_validator("primary_key")
    @classmethod
    def _keys_are_columns(cls, value: list[str], info: ValidationInfo) -> list[str]:
        for index, key in enumerate(value):
            if key in value[:index]:
                raise FieldError(f"{key!r} is named twice in the key", loc=(index,))
            _declared(key, info, what="")
        return value

    @field_validator("newest_by")
    @classmethod
    def _newest_by_is_column(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            _declared(value, info, what="column")
        return value

    @model_validator(mode="after")
    def _load_fits(self) -> Contract:
        if self.load is Load.MERGE and not self.primary_key:
            raise FieldError(
                "load: merge keeps the newest version of each key: declare primary_key "
                "(the columns that identify a record)",
                loc=("load",),
            )
        if self.newest_by is not None and self.load is not Load.MERGE:
            raise FieldError(
                "newest_by orders the versions of a key, so it needs load: merge",
                loc=("newest_by",),
            )
        if self.load is Load.SNAPSHOT and getattr(self.connector, "incremental", None):
            raise FieldError(
                "a snapshot is a full copy of the source, but connector.incremental fetches "
                "only what changed: remove incremental, or use load: merge",
                loc=("load",),
            )
        return self

    @model_validator(mode="after")
    def _bounds_fit_columns(self) -> Contract:
        types = {c.name: sql_type(c.type) for c in self.columns}
        for index, rule in enumerate(self.rules):
            if rule.type is not RuleType.VALID_VALUES or not rule.columns:
                continue
            declared = types.get(rule.columns[0])
            if declared is None:
                continue
            given: list[tuple[tuple[str | int, ...], Any]] = [
                (("min",), rule.min),
                (("max",), rule.max),
            ]
            given += [(("values", i), v) for i, v in enumerate(rule.values or [])]
            for loc, value in given:
                problem = None if value is None else _bound_problem(value, declared)
                if problem:
                    raise FieldError(problem, loc=("rules", index, *loc))
        return self

    @property
    def table(self) -> str:
        return f"{self.zone}.{self.name}"

    def allowed_values(self) -> dict[str, list[str]]:
        """Column → the values its `valid_values` rules allow everywhere (as text, sorted)."""
        out: dict[str, list[str]] = {}
        for rule in self.rules:
            if rule.type is RuleType.VALID_VALUES and rule.values is not None and not rule.where:
                out[rule.target] = sorted({str(v) for v in rule.values})
        return out

    @property
    def history(self) -> str | None:
        """The view of every batch when `raw.<name>` shows fewer (snapshot, merge)."""
        return None if self.load is Load.APPEND else f"{self.table}__history"

    @property
    def quarantine(self) -> str:
        return f"{self.table}__quarantine"

    @property
    def views(self) -> list[str]:
        """The tables readers see of this contract: its own, its quarantine, its history."""
        return [self.table, self.quarantine, *([self.history] if self.history else [])]

    @property
    def declared(self) -> dict[str, str | None]:
        """Each declared column's type, for schema rules (as `ModelSidecar.declared`)."""
        return {c.name: c.type for c in self.columns}


class Seed(Spec):
    """`seeds/<name>.yml`, all optional: what a seed file (`seeds/<name>.csv`, `.parquet`,
    `.jsonl`) needs beyond its data. Columns listed override the inferred types of those
    columns only; the seed lands with `load: snapshot` unless it says otherwise."""

    description: str | None = None
    owner: str | None = None
    privacy_level: PrivacyLevel = PrivacyLevel.INTERNAL
    columns: list[Column] = Field(default_factory=list)
    primary_key: list[str] = Field(default_factory=list)
    load: Load = Load.SNAPSHOT
    newest_by: str | None = None
    evolution: Evolution = Evolution.EVOLVE
    rules: list[Rule] = Field(default_factory=list)
    delimiter: str = Field(default=",", description="CSV only: one character, e.g. ';' or '\\t'")
    header: bool = True
    encoding: str = "utf-8"


class Defaults(Spec):
    retries: int = Field(default=2, ge=0, le=100)
    timeout: str = "30m"
    threads: int | None = Field(default=None, ge=1, le=1024, description="Parallel model builds")
    backoff: str = Field(
        default="1s",
        description="wait before the first retry; each next one waits up to twice as long "
        "(full jitter), at most 10 minutes",
    )
    profile: bool = Field(
        default=True,
        description="profile every landed batch and built version (nulls, distinct, bounds, "
        "mean, quantiles, top values) in the scan of its rules: `headwater profile`",
    )

    @field_validator("timeout", "backoff")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


class AutoApprove(Spec):
    """When `headwater apply` flips staged (green) versions of `critical: true` models by
    itself: every green version's row count within `rows_within` of blue's, and (with
    `no_failed_rules`) none of its rules failed, warnings included."""

    rows_within: str = Field(default="5%", description="e.g. 5% or 0.05")
    no_failed_rules: bool = True

    @field_validator("rows_within")
    @classmethod
    def _share(cls, value: str) -> str:
        share = parse_threshold(value)
        if not share >= 0:
            raise ValueError(f"{value!r}: a share of rows, e.g. 5%")
        return value


class Releases(Spec):
    """`releases:` in `headwater.yml`: which releases stay restorable (`headwater rollback`)
    and so what `headwater gc` keeps. A release is retained while it is one of the newest
    `keep` of its environment, or younger than `retention`."""

    keep: int = Field(default=10, ge=1, le=100_000)
    retention: str = Field(default="7d", description="e.g. 0s, 12h, 7d, 4w")
    auto_approve: AutoApprove | None = Field(
        default=None,
        description="flip staged versions of critical models without `apply --approve` "
        "when they pass this policy; without it a person approves",
    )

    @field_validator("retention")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


class SparkSettings(Spec):
    """`spark:` of `headwater.yml`: where `engine: spark` runs."""

    master: str = Field(
        default="local[*]",
        min_length=1,
        description="ours: a local session (local[*], local[4]) or a cluster's master URL "
        "(spark://host:7077, yarn)",
    )
    remote: str | None = Field(
        default=None,
        description="ours: a Spark Connect server (sc://host:15002) instead of `master`",
    )
    conf: dict[str, str] = Field(
        default_factory=dict,
        description="ours: further Spark settings, e.g. {spark.executor.memory: 4g}; they win "
        "over headwater's",
    )


class LakeStorage(Spec):
    """`lake_storage:` of `headwater.yml`: how the lake's object store is reached, for a lake on
    S3 or an S3-compatible server (MinIO, Ceph, moto). Three clients read it: pyiceberg (the
    ingestion's writes), DuckDB through fsspec (reads), and Iceberg's S3FileIO on Spark; each
    setting left out falls back to the AWS variables each of them reads (AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL)."""

    endpoint_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="an S3-compatible server, e.g. http://127.0.0.1:9000 (default: AWS, or "
        "AWS_ENDPOINT_URL)",
    )
    key: str | None = Field(default=None, description="the access key id, e.g. ${S3_KEY}")
    secret: str | None = Field(default=None, description="the secret key, e.g. ${S3_SECRET}")
    token: str | None = Field(default=None, description="a session token (temporary keys)")
    region: str | None = Field(default=None, description="e.g. eu-central-1 (or AWS_REGION)")
    path_style: bool | None = Field(
        default=None,
        description="address buckets as endpoint/bucket rather than bucket.endpoint (default: "
        "yes with an endpoint_url, as S3-compatible servers want)",
    )

    def resolved(self, environ: Mapping[str, str]) -> LakeStorage:
        """These settings with what was left out taken from the AWS variables in `environ`
        that not every client reads itself (pyarrow ignores AWS_ENDPOINT_URL)."""
        endpoint = self.endpoint_url or environ.get("AWS_ENDPOINT_URL_S3") or None
        endpoint = endpoint or environ.get("AWS_ENDPOINT_URL") or None
        region = self.region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
        return self.model_copy(update={"endpoint_url": endpoint, "region": region or None})

    @property
    def iceberg(self) -> dict[str, str]:
        """As the FileIO properties of Iceberg's catalogs (pyiceberg's and Java's S3FileIO
        read the same names)."""
        path_style = self.path_style if self.path_style is not None else bool(self.endpoint_url)
        named = {
            "s3.endpoint": self.endpoint_url,
            "s3.access-key-id": self.key,
            "s3.secret-access-key": self.secret,
            "s3.session-token": self.token,
            "s3.region": self.region,
            "client.region": self.region,
            "s3.path-style-access": "true" if path_style else None,
            "s3.force-virtual-addressing": "false" if path_style else None,
        }
        return {name: value for name, value in named.items() if value is not None}

    @property
    def fsspec(self) -> dict[str, Any]:
        """As s3fs's options."""
        options: dict[str, Any] = {
            k: v
            for k, v in (("key", self.key), ("secret", self.secret), ("token", self.token))
            if v is not None
        }
        if self.endpoint_url:
            options["endpoint_url"] = self.endpoint_url
        if self.region:
            options["client_kwargs"] = {"region_name": self.region}
        if self.path_style is not None:
            options["config_kwargs"] = {
                "s3": {"addressing_style": "path" if self.path_style else "virtual"}
            }
        return options


class Settings(Spec):
    """`headwater.yml`."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=100)]
    engine: Literal[authored.ENGINES] = authored.ENGINES[0]  # type: ignore[valid-type]
    catalog: str = Field(default=".headwater/catalog.db", min_length=1, max_length=4096)
    lake: str = Field(default=".headwater/lake", min_length=1, max_length=4096)
    lake_storage: LakeStorage = Field(
        default_factory=LakeStorage,
        description="ours: {endpoint_url, key, secret, token, region, path_style} — how a lake "
        "on s3:// is reached (default: the AWS variables)",
    )
    warehouse: str = Field(default=".headwater/warehouse.duckdb", min_length=1, max_length=4096)
    defaults: Defaults = Field(default_factory=Defaults)
    private: bool = Field(
        default=True,
        description="ours: create the catalog, lake and warehouse files 0600 and their "
        "folders 0700 whatever the umask (raw data holds PII); false keeps the umask's modes",
    )
    schedule: Schedule | None = Field(
        default=None,
        description="ours: when `headwater scheduler` runs the whole project (ingest and build)",
    )
    sla: RunSla = Field(default_factory=RunSla, description="ours: {max_duration} of a run")
    pools: dict[str, int] = Field(
        default_factory=dict,
        description="ours: how many tasks of each pool run at once, e.g. {postgres: 1}; a "
        "contract's or model's `pool:`, or a model's tag, names its pool",
    )
    alerts: list[AlertChannel] = Field(
        default_factory=list,
        description="ours: where alert events go besides .headwater/alerts.log",
    )
    lineage: Lineage | None = Field(
        default=None, description="ours: send OpenLineage events (file, http or console)"
    )
    online: str = Field(
        default=".headwater/online.db",
        min_length=1,
        max_length=4096,
        description="the online feature store: a SQLite file (relative to the project) or a "
        "redis:// URL",
    )
    releases: Releases = Field(
        default_factory=Releases,
        description="ours: {keep, retention} — which releases `rollback` can restore",
    )
    spark: SparkSettings = Field(
        default_factory=SparkSettings,
        description="ours: {master, remote, conf} — where `engine: spark` runs",
    )

    @field_validator("pools")
    @classmethod
    def _pools(cls, value: dict[str, int]) -> dict[str, int]:
        for name, size in value.items():
            if not isinstance(size, int) or size < 1:
                raise ValueError(f"pool {name!r}: {size!r} is not a number of tasks (1 or more)")
        return value


class ModelConfig(Spec):
    """The YAML header block at the top of a model's SQL file: `/* headwater ... */`."""

    kind: ModelKind = ModelKind.TABLE
    description: str | None = None
    owner: str | None = None
    tags: list[str] = Field(default_factory=list)
    grain: list[str] = Field(default_factory=list)
    time_column: str | None = Field(
        default=None, description="incremental_by_time: the output column an interval owns"
    )
    interval: IntervalUnit = Field(
        default=IntervalUnit.DAY, description="incremental_by_time: hour | day | week"
    )
    lookback: str | None = Field(
        default=None,
        description="incremental_by_time: always re-process this much before "
        "the newest interval, e.g. '2 days'",
    )
    batch_size: int = Field(
        default=30,
        ge=1,
        description="incremental_by_time: intervals per query on runs that add to the table; "
        "a first or full build writes every interval in one query unless this is set (set it "
        "to bound what one query holds in memory)",
    )
    unique_key: list[str] = Field(
        default_factory=list, description="incremental_by_key: the columns identifying a row"
    )
    updated_column: str | None = Field(
        default=None, description="incremental_by_key: the version column; the newest wins"
    )
    deleted_column: str | None = Field(
        default=None, description="incremental_by_key: a boolean column; true deletes the key"
    )
    truncated_column: str | None = Field(
        default=None,
        description="incremental_by_key: a boolean column; a true row (a source's TRUNCATE) "
        "removes every row whose version is not newer than its own",
    )
    start: datetime | None = Field(
        default=None,
        description="incremental_by_time: first interval (default: the "
        "earliest event time landed upstream)",
    )

    timeout: str | None = Field(
        default=None,
        description="a build running longer is stopped (its statement interrupted, nothing "
        "published), e.g. '2h' (default: headwater.yml's defaults.timeout)",
    )
    retries: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description="builds again after a retryable failure, this many times at most "
        "(default: headwater.yml's defaults.retries)",
    )
    schedule: Schedule | None = Field(
        default=None,
        description="when `headwater scheduler` builds it (and what it reads that is stale)",
    )
    sla: Sla | None = Field(default=None, description="how fresh it must be ({fresh_by, max_age})")
    pool: str | None = Field(
        default=None, description="the pool (headwater.yml's pools:) its build runs in"
    )
    forward_only: bool = Field(
        default=False,
        description="incremental_by_time or append: a change of its query is applied to the "
        "table in place (added columns by ALTER TABLE ADD COLUMN), the intervals already "
        "written kept as they are; only what is written next uses the new query",
    )
    critical: bool = Field(
        default=False,
        description="blue/green: `headwater apply` stages a new version as green and flips "
        "only once approved (`apply --approve`, or headwater.yml's releases.auto_approve)",
    )

    @field_validator("lookback", "timeout")
    @classmethod
    def _lookback_duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _by_key_needs_key(self) -> ModelConfig:
        if self.kind in (ModelKind.INCREMENTAL_BY_KEY, ModelKind.SCD2) and not (
            self.unique_key and self.updated_column
        ):
            raise ValueError(
                f"kind {self.kind.value} needs `unique_key:` and `updated_column:` (versions "
                "of a key are ordered by it, whatever order the data arrives in)"
            )
        return self

    @model_validator(mode="after")
    def _truncated_by_key(self) -> ModelConfig:
        if self.truncated_column and self.kind is not ModelKind.INCREMENTAL_BY_KEY:
            raise ValueError(
                "truncated_column is an incremental_by_key setting (a change log's TRUNCATE "
                "removes the rows before it)"
            )
        return self

    @model_validator(mode="after")
    def _incremental_needs_time(self) -> ModelConfig:
        if self.kind is ModelKind.INCREMENTAL_BY_TIME and not self.time_column:
            raise ValueError(
                "kind incremental_by_time needs `time_column:`, the output column each "
                "interval owns (e.g. time_column: day)"
            )
        return self

    @model_validator(mode="after")
    def _forward_only_in_place(self) -> ModelConfig:
        if self.forward_only and self.kind not in (
            ModelKind.INCREMENTAL_BY_TIME,
            ModelKind.APPEND,
        ):
            raise ValueError(
                f"forward_only is for incremental_by_time and append models (their next "
                f"writes add to the table in place); a {self.kind.value} model is rebuilt as a "
                "new version on every change, so it needs none"
            )
        return self


class ColumnDoc(Spec):
    """A model column's declaration in its sidecar: what it means, and optionally its type."""

    description: str | None = None
    type: str | None = Field(
        default=None, description="A DuckDB SQL type; schema rules check the column has it"
    )
    pii: str | None = Field(
        default=None,
        description="PII tag, e.g. email, phone, name; `none`: the column holds no PII, "
        "whatever its lineage says",
    )

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str | None) -> str | None:
        return None if value is None else authored.shown(sql_type(value))


class Serving(Spec):
    """How the data API serves a model (`serve: true` takes every default)."""

    aggregates: bool = Field(
        default=False, description="allow `group_by=` and `aggregate=` (sum, avg, …) requests"
    )
    max_limit: int = Field(
        default=10_000, ge=1, le=1_000_000, description="the most rows one page may ask for"
    )
    default_limit: int = Field(default=100, ge=1, description="rows per page unless asked")

    @model_validator(mode="after")
    def _limits(self) -> Serving:
        if self.default_limit > self.max_limit:
            raise ValueError(
                f"default_limit {self.default_limit} is above max_limit {self.max_limit}"
            )
        return self


class FeatureView(Spec):
    """Features of an entity over time, read from a model's rows: for training, the values
    as of each label's time (point in time); online, the latest values."""

    entity: list[str] = Field(description="the key column(s) of the entity, e.g. customer_id")
    event_time: str = Field(description="the column saying when each row's values became true")
    features: list[str] = Field(
        default_factory=list, description="the feature columns (default: every other column)"
    )
    ttl: str | None = Field(
        default=None,
        description="how long a value stays valid after its event time, e.g. 30d "
        "(older: EXPIRED online, NULL in training); none: forever",
    )
    description: str | None = None

    @field_validator("entity", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("ttl")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @property
    def ttl_seconds(self) -> float | None:
        return None if self.ttl is None else parse_duration(self.ttl)


class VectorIndex(Spec):
    """A nearest-neighbour index over a model's embedding column (a list of floats)."""

    column: str = Field(description="the embedding column: a fixed-length list of numbers")
    metric: Literal["cos", "l2sq", "ip"] = Field(
        default="cos", description="cos (cosine), l2sq (squared Euclidean), ip (inner product)"
    )
    exact_below: int = Field(
        default=20_000,
        ge=0,
        description="search exactly (every vector compared) when at most this many rows are "
        "candidates; an HNSW graph above it",
    )
    connectivity: int = Field(default=16, ge=2, le=128, description="HNSW links per node")
    expansion: int = Field(
        default=128, ge=8, le=4096, description="HNSW candidates kept while searching"
    )
    description: str | None = None


class ModelSidecar(Spec):
    """The optional YAML file next to a model: docs, owner, rules."""

    description: str | None = None
    owner: str | None = None
    tags: list[str] = Field(default_factory=list)
    privacy: PrivacyLevel | None = Field(
        default=None,
        description="public: anyone may read the table, so no PII-tagged column may reach it "
        "unmasked (build and plan refuse it); internal or restricted otherwise",
    )
    columns: dict[str, str | ColumnDoc] = Field(
        default_factory=dict,
        description="column → its description, or {description, type, pii}",
    )
    rules: list[Rule] = Field(default_factory=list)
    serve: Serving | None = Field(
        default=None,
        description="publish the model as a data product and serve it: true, or "
        "{aggregates, max_limit, default_limit}",
    )

    features: dict[Identifier, FeatureView] = Field(
        default_factory=dict, description="feature views over the model's rows, by name"
    )
    vectors: dict[Identifier, VectorIndex] = Field(
        default_factory=dict, description="vector indexes over embedding columns, by name"
    )

    @property
    def published(self) -> bool:
        """Whether the model is published as a data product (served, features, vectors)."""
        return self.serve is not None or bool(self.features) or bool(self.vectors)

    @field_validator("serve", mode="before")
    @classmethod
    def _serve_flag(cls, value: Any) -> Any:
        if value is True:
            return {}
        return None if value is False else value

    @field_validator("rules")
    @classmethod
    def _rules_once(cls, value: list[Rule]) -> list[Rule]:
        return rules_once(value)

    @property
    def declared(self) -> dict[str, str | None]:
        """Each declared column's type (None: any), for schema rules."""
        return {
            name: doc.type if isinstance(doc, ColumnDoc) else None
            for name, doc in self.columns.items()
        }


COMMON_TYPES = [
    "bigint",
    "integer",
    "smallint",
    "double",
    "float",
    "decimal(18,2)",
    "varchar",
    "boolean",
    "date",
    "timestamp",
    "timestamptz",
    "time",
    "interval",
    "uuid",
    "json",
    "blob",
]


def _declared(column: str, info: ValidationInfo, *, what: str) -> None:
    """Refuse a column the contract does not declare (when it declares any)."""
    names = [c.name for c in info.data.get("columns") or []]
    if names and column not in names:
        close = difflib.get_close_matches(column, names, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"columns are: {', '.join(names)}"
        raise ValueError(f"{what} {column!r}".strip() + f" is not among the columns; {hint}")


def sql_type(text: str) -> exp.DataType:
    """Parse a column type as DuckDB understands it, or raise ValueError."""
    try:
        built = authored.parse_type(text)
    except (sqlglot.errors.ParseError, ValueError) as err:
        close = difflib.get_close_matches(text.lower(), COMMON_TYPES, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"e.g. {', '.join(COMMON_TYPES[:8])}"
        raise ValueError(f"{text!r} is not a SQL type; {hint}") from err
    _check_modifiers(text, built)
    return built


# the types that take `(n)` or `(p, s)`; sqlglot keeps others' modifiers and DuckDB refuses them,
# and it drops a text type's modifier (even `varchar(abc)`) without a word
_SIZED = {exp.DataType.Type.VARCHAR, exp.DataType.Type.CHAR, exp.DataType.Type.TEXT}
_SIZED |= {exp.DataType.Type.NCHAR, exp.DataType.Type.NVARCHAR}
_PRECISE = {exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPNTZ}
_MODIFIERS = re.compile(r"^\s*[A-Za-z][A-Za-z0-9_ ]*\((?P<args>[^()]*)\)\s*$")


def _check_modifiers(text: str, built: exp.DataType) -> None:
    """Refuse the modifiers DuckDB would refuse at ingest: `varchar(abc)`, `decimal(50,2)`,
    `bigint(5)`."""
    match = _MODIFIERS.match(text)
    if match is None or built.is_type(*exp.DataType.NESTED_TYPES):
        return
    args = [a.strip() for a in match["args"].split(",")]
    if not all(a.isdigit() for a in args):
        raise ValueError(
            f"{text!r}: type modifiers must be whole numbers, e.g. varchar(20) or decimal(18,2)"
        )
    numbers = [int(a) for a in args]
    if built.is_type(exp.DataType.Type.DECIMAL):
        if len(numbers) > 2:
            raise ValueError(f"{text!r}: decimal takes (precision) or (precision, scale)")
        if not 1 <= numbers[0] <= 38:
            raise ValueError(f"{text!r}: decimal precision must be 1 to 38, e.g. decimal(18,2)")
        if len(numbers) == 2 and numbers[1] > numbers[0]:
            raise ValueError(f"{text!r}: decimal scale cannot exceed its precision")
    elif built.this in _SIZED | _PRECISE:
        if len(numbers) != 1:
            raise ValueError(f"{text!r}: {built.this.value.lower()} takes one number at most")
    else:
        plain = _shown_type(built).split("(")[0]
        raise ValueError(f"{text!r}: {plain} takes no modifiers; write {plain}")


def _shown_type(declared: exp.DataType) -> str:
    """A type as users write it: `varchar`, not sqlglot's `TEXT`."""
    text = authored.shown(declared).lower()
    return "varchar" + text[4:] if text.startswith("text") else text


def _type_of(column: str, info: ValidationInfo) -> exp.DataType | None:
    """The declared type of `column`, if the contract declares it."""
    for declared in info.data.get("columns") or []:
        if declared.name == column:
            return sql_type(declared.type)
    return None


def _bound_problem(value: Any, declared: exp.DataType) -> str | None:
    """Why `value` cannot bound a column of type `declared` (None: it can)."""
    shown = _shown_type(declared)
    if declared.is_type(*exp.DataType.NUMERIC_TYPES):
        if isinstance(value, int | float):
            return None
        try:
            float(str(value))
            return None
        except ValueError:
            return f"{value!r} is not a number, and the column is {shown}"
    if declared.is_type(*exp.DataType.TEMPORAL_TYPES):
        try:
            datetime.fromisoformat(str(value))
            return None
        except ValueError:
            return f"{value!r} is not a date or time (e.g. 2026-01-01), and the column is {shown}"
    return None


def rules_once(rules: list[Rule]) -> list[Rule]:
    """Refuse two rules of one name (results, history and samples are kept by name)."""
    first: dict[str, int] = {}
    for index, rule in enumerate(rules):
        if rule.name in first:
            raise FieldError(
                f"rule name {rule.name!r} is used twice; first at rules[{first[rule.name]}]",
                loc=(index, "name"),
            )
        first[rule.name] = index
    return rules


def parse_watermark(text: str) -> tuple[str, float]:
    """Split `updated_at - interval 2 hours` into (column, allowed lateness in seconds)."""
    shape = (
        f"'{text}' must be `<column> - interval <n> <unit>`, e.g. 'updated_at - interval 2 hours'"
    )
    try:
        tree = authored.parse_one(text)
    except sqlglot.errors.ParseError:
        raise ValueError(shape) from None
    if isinstance(tree, exp.Column):
        return tree.name, 0.0
    if (
        isinstance(tree, exp.Sub)
        and isinstance(tree.this, exp.Column)
        and isinstance(tree.expression, exp.Interval)
    ):
        lateness = tree.expression
        unit = lateness.unit.name.lower() if lateness.unit else ""
        try:
            return tree.this.name, parse_duration(f"{lateness.this.name} {unit}")
        except ValueError:
            raise ValueError(
                f"'{text}': {unit!r} is not a unit; use seconds, minutes, hours, days or weeks"
            ) from None
    raise ValueError(shape)


def _parse_sql(text: str) -> exp.Expr:
    try:
        return authored.parse_one(text)
    except sqlglot.errors.ParseError as err:
        near = err.errors[0].get("highlight") if err.errors else None
        where = f" near {near!r}" if near else ""
        raise ValueError(f"'{text}' is not a valid SQL condition{where}") from None
