"""Connector specs: where a contract's records come from (files, HTTP, SQL databases, Kafka).

Any string may hold `${ENV_VAR}`; it is expanded only when the connector runs (see
`contracts.secrets`), so a spec object, `headwater schema` and every error keep the reference,
never the value.
"""

from __future__ import annotations

import codecs
import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from headwater.contracts.base import Duration, FieldError, Spec

FORMATS = ("csv", "jsonl", "parquet")


class FilesConnector(Spec):
    """Files on a local path or glob (relative to the project folder), or on object storage."""

    kind: Literal["files"]
    path: str = Field(
        description="A path or glob: data/orders/*.csv, s3://bucket/orders/*.jsonl, gs://b/x/*"
    )
    format: Literal["csv", "jsonl", "parquet"] | None = Field(
        default=None, description="Inferred from the file extension when omitted"
    )
    delimiter: str = Field(default=",", description="CSV only: one character, e.g. ';' or '\\t'")
    header: bool = True
    encoding: str = Field(
        default="utf-8", description="The text encoding of CSV / JSON-lines files, e.g. latin-1"
    )
    compression: Literal["auto", "none", "gzip", "zstd", "bz2"] = Field(
        default="auto",
        description="auto: by extension (.gz, .zst, .bz2) or the file's first bytes",
    )
    endpoint_url: str | None = Field(
        default=None, description="An S3-compatible endpoint, e.g. http://127.0.0.1:9000"
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec options for s3:// or gs:// (key, secret, region_name, token, …); "
        "use ${ENV_VAR} for credentials",
    )

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if len(value) != 1 or value in '\r\n"':
            raise ValueError(
                f"delimiter {value!r} must be one character other than a quote or a line break,"
                " e.g. ',' or ';' or '\\t'"
            )
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(
                f"unknown encoding {value!r}; e.g. utf-8, latin-1, cp1252, utf-16"
            ) from None
        return value


# ---- HTTP -------------------------------------------------------------------------------------


class BearerAuth(Spec):
    kind: Literal["bearer"]
    token: str


class ApiKeyAuth(Spec):
    kind: Literal["api_key"]
    name: str = Field(description="Header or query parameter name, e.g. X-API-Key")
    value: str
    location: Literal["header", "query"] = "header"


class BasicAuth(Spec):
    kind: Literal["basic"]
    username: str
    password: str


class OAuth2Auth(Spec):
    """OAuth2 client credentials: a token is fetched, reused until it expires, then refreshed."""

    kind: Literal["oauth2"]
    token_url: str
    client_id: str
    client_secret: str
    scope: str | None = None


Auth = Annotated[BearerAuth | ApiKeyAuth | BasicAuth | OAuth2Auth, Field(discriminator="kind")]


class CursorPagination(Spec):
    """The body carries the next page's cursor; it is sent back as a query parameter."""

    kind: Literal["cursor"]
    path: str = Field(description="Dotted path of the next cursor in the body, e.g. meta.next")
    param: str = Field(default="cursor", description="Query parameter that carries it")


class NextUrlPagination(Spec):
    """The body carries the URL of the next page."""

    kind: Literal["next_url"]
    path: str = Field(description="Dotted path of the next URL in the body, e.g. links.next")


class LinkHeaderPagination(Spec):
    """RFC 8288 `Link: <…>; rel="next"` response header (GitHub style)."""

    kind: Literal["link_header"]
    rel: str = "next"


class OffsetPagination(Spec):
    """`?offset=0&limit=100`, then 100, 200 … until a page comes back short."""

    kind: Literal["offset"]
    param: str = "offset"
    limit_param: str = "limit"
    limit: int = Field(default=100, ge=1)


class PagePagination(Spec):
    """`?page=1`, 2, 3 … until a page comes back empty (or short of `size`)."""

    kind: Literal["page"]
    param: str = "page"
    start: int = 1
    size_param: str | None = None
    size: int | None = Field(default=None, ge=1)


Pagination = Annotated[
    CursorPagination | NextUrlPagination | LinkHeaderPagination | OffsetPagination | PagePagination,
    Field(discriminator="kind"),
]


class Incremental(Spec):
    """Fetch only what changed: records whose `column` is at least the highest value landed
    so far minus `lag` (records seen again are recognised and not landed twice)."""

    column: str
    param: str | None = Field(
        default=None, description="HTTP only: the query parameter that carries the lower bound"
    )
    lag: Duration = Field(default="0s", description="Re-read this much before the last value")
    initial: str | None = Field(default=None, description="Lower bound of the very first run")


class HttpConnector(Spec):
    """A JSON API over HTTP(S), read page by page with httpx."""

    kind: Literal["http"]
    url: str = Field(description="The endpoint, e.g. https://api.example.com/v1/orders")
    records: str = Field(
        default="", description="Dotted path of the record list in the body; empty: the body"
    )
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    auth: Auth | None = None
    pagination: Pagination | None = None
    incremental: Incremental | None = None
    rate_limit: float | None = Field(default=None, gt=0, description="Requests per second")
    retries: int = Field(default=5, ge=0, description="Retries of a timeout, 429 or 5xx")
    backoff: Duration = Field(default="1s", description="First retry delay; doubles, jittered")
    timeout: Duration = "30s"

    @model_validator(mode="after")
    def _param_for_http(self) -> HttpConnector:
        if self.incremental is not None and not self.incremental.param:
            raise ValueError("incremental needs `param:`, the query parameter of the lower bound")
        return self


# ---- SQL databases ----------------------------------------------------------------------------


class _Database(Spec):
    url: str = Field(description="Connection URL; put the password in ${ENV_VAR}")
    table: str | None = Field(default=None, description="schema.table to extract")
    query: str | None = Field(default=None, description="A SELECT to extract instead of a table")
    incremental: Incremental | None = None
    batch_rows: int = Field(default=100_000, ge=1)

    @model_validator(mode="after")
    def _table_or_query(self) -> _Database:
        if (self.table is None) == (self.query is None):
            raise ValueError("set exactly one of `table:` or `query:`")
        return self


class PostgresConnector(_Database):
    """PostgreSQL through ADBC: the server's binary COPY straight into Arrow, no row objects."""

    kind: Literal["postgres"]


class SqlConnector(_Database):
    """Any database SQLAlchemy can reach (a slower, row-by-row fallback)."""

    kind: Literal["sql"]


# ---- streams ----------------------------------------------------------------------------------


class KafkaConnector(Spec):
    """Kafka topics read by a consumer group (confluent-kafka). The lake's offsets are the
    truth: each batch commits its offsets with its rows, and Kafka's are set only after."""

    kind: Literal["kafka"]
    brokers: str = Field(description="Bootstrap servers, e.g. 127.0.0.1:9092,broker2:9092")
    topics: list[str] = Field(default_factory=list, description="Topics to read")
    pattern: str | None = Field(
        default=None, description="A regular expression of topics to read instead, e.g. ^orders"
    )
    group: str | None = Field(
        default=None, description="The consumer group (default: headwater-<contract>)"
    )
    format: Literal["json", "avro"] = Field(
        default="json", description="How message values are encoded"
    )
    avro_schema: dict[str, Any] | str | None = Field(
        default=None,
        description="format: avro: the writer's schema (a record schema, or a path to an .avsc "
        "file) for values without a schema registry",
    )
    schema_registry: str | None = Field(
        default=None,
        description="format: avro: a schema registry URL; values carry the schema id "
        "(Confluent's wire format)",
    )
    start: Literal["earliest", "latest"] = Field(
        default="earliest", description="Where a topic nothing has landed from is read from"
    )
    max_rows: int = Field(default=10_000, ge=1, description="A batch closes at this many messages")
    max_wait: Duration = Field(
        default="1s", description="… or this long after its first message, whichever is first"
    )
    connect_timeout: Duration = Field(
        default="10s", description="How long to wait for the brokers to answer"
    )
    options: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="More librdkafka settings (security.protocol, sasl.*, …); use ${ENV_VAR} "
        "for secrets",
    )

    @model_validator(mode="after")
    def _what_to_read(self) -> KafkaConnector:
        if bool(self.topics) == (self.pattern is not None):
            raise ValueError("set exactly one of `topics:` (a list) or `pattern:` (a regex)")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as err:
                raise FieldError(
                    f"pattern is not a regular expression: {err}", loc=("pattern",)
                ) from None
        if self.format == "avro" and (self.avro_schema is None) == (self.schema_registry is None):
            raise FieldError(
                "format: avro needs exactly one of `avro_schema:` (the writer's schema) or "
                "`schema_registry:` (its URL)",
                loc=("format",),
            )
        if self.format == "json" and (self.avro_schema or self.schema_registry):
            raise FieldError(
                "avro_schema / schema_registry describe Avro values: set `format: avro`",
                loc=("format",),
            )
        return self


class PostgresCdcConnector(Spec):
    """A PostgreSQL table's changes by logical replication (pgoutput): a snapshot at the
    slot's starting point, then every committed insert, update, delete and truncate. The
    lake's LSN is the truth; the slot is told only after each batch lands."""

    kind: Literal["postgres_cdc"]
    url: str = Field(description="Connection URL; put the password in ${ENV_VAR}")
    table: str = Field(description="schema.table to replicate, e.g. public.orders")
    slot: str | None = Field(
        default=None, description="The replication slot (default: headwater_<schema>__<table>)"
    )
    publication: str | None = Field(
        default=None, description="The publication (default: the slot's name)"
    )
    snapshot: bool = Field(
        default=True, description="Land the table's rows first (op r), then its changes"
    )
    max_rows: int = Field(default=10_000, ge=1, description="A batch closes at this many changes")
    max_wait: Duration = Field(
        default="1s", description="… or this long after its first change, whichever is first"
    )
    connect_timeout: Duration = Field(
        default="10s", description="How long to wait for the server to answer"
    )

    @field_validator("table")
    @classmethod
    def _qualified(cls, value: str) -> str:
        if value.count(".") != 1 or not all(value.split(".")):
            raise ValueError(f"table {value!r}: write schema.table, e.g. public.orders")
        return value

    @field_validator("slot", "publication")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value):
            raise ValueError(
                f"{value!r}: a slot or publication name is lower-case letters, digits and _ "
                "(at most 63), not starting with a digit"
            )
        return value


Connector = Annotated[
    FilesConnector
    | HttpConnector
    | PostgresConnector
    | SqlConnector
    | KafkaConnector
    | PostgresCdcConnector,
    Field(discriminator="kind"),
]
