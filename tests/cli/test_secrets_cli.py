"""`${ENV_VAR}` secrets through the whole product: a project with an HTTP source run from the
CLI, with the right API key (sent in the query string) and a wrong one. The key never shows
in output, the catalog or the lake, and the contract keeps the reference."""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from headwater.cli.main import app
from tests import postgres
from tests.badinput.harness import write
from tests.httpapi import Api

TOKEN = "tok-3f9a-very-secret"
T0 = datetime(2026, 10, 1, tzinfo=UTC)
CONTRACT = """\
source: shop_api.orders
schema_version: "1"
delivery: batch
privacy_level: internal
connector:
  kind: http
  url: {url}/cursor/orders
  records: data
  auth: {{kind: api_key, name: api_key, value: "${{SHOP_TOKEN}}", location: query}}
  pagination: {{kind: cursor, path: meta.next, param: cursor}}
  retries: 0
columns:
  - {{name: id, type: bigint, nullable: false}}
  - {{name: updated_at, type: timestamptz}}
"""


def every_byte(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def run(root: Path, token: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["run", "-p", str(root)], env={"COLUMNS": "200", "SHOP_TOKEN": token}
    )
    return result.exit_code, result.output


def test_a_secret_never_leaves_the_environment(tmp_path: Path) -> None:
    records = [{"id": i, "updated_at": (T0 + timedelta(hours=i)).isoformat()} for i in range(5)]
    root = tmp_path / "shop"
    (root / "contracts").mkdir(parents=True)
    (root / "headwater.yml").write_text("name: shop\n", encoding="utf-8")
    with Api(records) as api:
        api.require("api_key", name="api_key", value=TOKEN, location="query")
        contract = CONTRACT.format(url=api.url)
        (root / "contracts/orders.yml").write_text(contract, encoding="utf-8")

        code, out = run(root, "wrong-" + TOKEN)
        assert code != 0
        assert "raw.orders" in out and "401" in out, out
        assert TOKEN not in out

        code, out = run(root, TOKEN)
        assert code == 0, out
        assert "5 rows landed" in out and "2 pages" in out
        assert api.listings[-1].query["api_key"] == TOKEN

    assert TOKEN.encode() not in every_byte(root)
    assert "${SHOP_TOKEN}" in (root / "contracts/orders.yml").read_text(encoding="utf-8")
    assert "SHOP_TOKEN" not in os.environ  # the test passed it to the run alone


# ---- every place a ${VAR} can appear, with a secret URL and path parsers cut ------------------

SECRET = "Zq9SeCrEt/h@x0rQ:pa55Wd%2FvQx7?#fRaG9"
# DuckDB reads `?` in a database path as the start of options, and globs the lake's file paths
PATH_SECRET = "Zq9SeCrEt/h@x0rQ:pa55Wd-vQx7"
USER = "Us3rN@me/qZ"  # a role of that name exists in the throwaway cluster


def leaks(secret: str) -> list[str]:
    """The secret and each piece of it a parser could cut out and quote: as it is, URL-encoded
    and URL-decoded, and every fragment of 4 characters or more between `/ @ : ? # %`."""
    forms = {secret, unquote(secret), quote(secret, safe=""), quote_plus(secret)}
    for form in (secret, unquote(secret)):
        forms |= {part for part in re.split(r"[/@:?#%]", form) if len(part) >= 4}
    return sorted(forms, key=len, reverse=True)


ORDERS_CSV = "order_id,updated_at\n1,2026-10-01 10:00:00\n2,2026-10-01 11:00:00\n"
FILES = '{kind: files, path: "data/*.csv", format: csv}'
HTTP_CONTRACT = """\
source: api.orders
schema_version: "1"
delivery: batch
privacy_level: internal
connector: %s
columns:
  - {name: %s, type: bigint, nullable: false}
  - {name: updated_at, type: %s}
"""


@dataclass(frozen=True)
class Variant:
    """One place a secret goes: `settings` fields of headwater.yml and the contract's connector
    (`{api}`, `{pg}`, `{port}` are filled in), and what serves it."""

    id: str
    settings: dict[str, str] = field(default_factory=dict)
    connector: str = FILES
    auth: tuple[str, dict[str, str]] | None = None  # what the HTTP API demands
    postgres: bool = False
    secret: str = SECRET
    lands: bool = True  # the run with the right secret lands the source's rows


VARIANTS = [
    Variant("catalog_sqlite_path", {"catalog": ".headwater/${HW_SECRET}/catalog.db"}),
    Variant(
        "catalog_postgres_password",
        {"catalog": "postgresql+psycopg://postgres:${HW_SECRET}@127.0.0.1:{port}/postgres"},
        postgres=True,
    ),
    Variant(
        "catalog_postgres_user",
        {"catalog": "postgresql+psycopg://${HW_SECRET}@127.0.0.1:{port}/postgres"},
        postgres=True,
        secret=USER,
    ),
    Variant(
        "catalog_postgres_host",
        {"catalog": "postgresql+psycopg://postgres@${HW_SECRET}:{port}/postgres"},
        postgres=True,
        secret="localhost",
    ),
    Variant("lake_path", {"lake": ".headwater/${HW_SECRET}"}, secret=PATH_SECRET),
    Variant(
        "warehouse_path", {"warehouse": ".headwater/${HW_SECRET}/w.duckdb"}, secret=PATH_SECRET
    ),
    # a files path is not expanded (yet): the reference stays, nothing is found, nothing leaks
    Variant(
        "files_path",
        lands=False,
        connector='{kind: files, path: "data/${HW_SECRET}/*.csv", format: csv}',
    ),
    Variant(
        "files_endpoint_url",
        lands=False,  # nothing listens there: the error is what is checked
        connector='{kind: files, path: "s3://bucket/o/*.csv", endpoint_url: '
        '"http://127.0.0.1:9/${HW_SECRET}", storage_options: {key: k, secret: s}}',
    ),
    Variant(
        "files_storage_options",
        lands=False,
        connector='{kind: files, path: "s3://bucket/o/*.csv", endpoint_url: '
        '"http://127.0.0.1:9", storage_options: {key: "${HW_SECRET}", secret: "${HW_SECRET}"}}',
    ),
    Variant(
        "http_url",
        connector='{kind: http, records: data, url: "{api}/offset/orders?t=${HW_SECRET}"}',
    ),
    Variant(
        "http_params",
        connector='{kind: http, records: data, url: "{api}/offset/orders", '
        'params: {t: "${HW_SECRET}"}}',
    ),
    Variant(
        "http_headers",
        connector='{kind: http, records: data, url: "{api}/offset/orders", '
        'headers: {X-T: "${HW_SECRET}"}}',
    ),
    Variant(
        "http_bearer",
        connector='{kind: http, records: data, url: "{api}/offset/orders", retries: 0, '
        'auth: {kind: bearer, token: "${HW_SECRET}"}}',
        auth=("bearer", {"token": SECRET}),
    ),
    Variant(
        "http_api_key",
        connector='{kind: http, records: data, url: "{api}/offset/orders", retries: 0, '
        'auth: {kind: api_key, name: X-Key, value: "${HW_SECRET}"}}',
        auth=("api_key", {"name": "X-Key", "value": SECRET}),
    ),
    Variant(
        "http_basic",
        connector='{kind: http, records: data, url: "{api}/offset/orders", retries: 0, '
        'auth: {kind: basic, username: u, password: "${HW_SECRET}"}}',
        auth=("basic", {"username": "u", "password": SECRET}),
    ),
    Variant(
        "http_oauth2",
        connector='{kind: http, records: data, url: "{api}/offset/orders", retries: 0, '
        'auth: {kind: oauth2, token_url: "{api}/oauth/token", client_id: c, '
        'client_secret: "${HW_SECRET}"}}',
        auth=("oauth2", {"client_id": "c", "client_secret": SECRET}),
    ),
    Variant(
        "postgres_url",
        connector='{kind: postgres, url: "postgresql://postgres:${HW_SECRET}@127.0.0.1:{port}'
        '/postgres", table: public.orders}',
        postgres=True,
    ),
    Variant(
        "sql_url",
        connector='{kind: sql, url: "postgresql+psycopg://postgres:${HW_SECRET}@127.0.0.1:{port}'
        '/postgres", table: public.orders}',
        postgres=True,
    ),
]


@pytest.fixture(scope="module")
def pg_port() -> Iterator[int]:
    postgres.require()
    with postgres.cluster() as url:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE ROLE "{USER}" LOGIN SUPERUSER'))
            conn.execute(sa.text("CREATE TABLE orders (id bigint, updated_at timestamptz)"))
            conn.execute(sa.text("INSERT INTO orders VALUES (1, now()), (2, now())"))
        engine.dispose()
        yield int(url.rsplit(":", 1)[1].split("/")[0])


def _project(root: Path, variant: Variant, *, api: str, port: int) -> None:
    def fill(text: str) -> str:
        return text.replace("{api}", api).replace("{port}", str(port))

    settings = {"name": "leak", **{k: fill(v) for k, v in variant.settings.items()}}
    write(root, "headwater.yml", "".join(f"{k}: '{v}'\n" for k, v in settings.items()))
    http = variant.connector.startswith("{kind: http")
    column, when = ("id", "timestamptz") if http or variant.postgres else ("order_id", "timestamp")
    if "kind: files" in variant.connector:
        column, when = "order_id", "timestamp"
    contract = HTTP_CONTRACT % (fill(variant.connector), column, when)
    write(root, "contracts/orders.yml", contract.replace("source: api", "source: shop"))
    folder = "data/" + (variant.secret + "/" if "data/${HW_SECRET}" in variant.connector else "")
    write(root, folder + "orders.csv", ORDERS_CSV)


def _stored(root: Path, variant: Variant, port: int) -> bytes:
    """Every byte the project stores: its state folder, and the PostgreSQL catalog if any.

    A secret in the lake's own path is the one exception: Iceberg records every table's
    absolute location in its metadata (and the catalog's `iceberg_tables`), and the warehouse's
    raw views name the lake's data files, so there headwater's own catalog rows are searched,
    not every byte."""
    if variant.id == "lake_path":
        return _headwater_rows(root / ".headwater/catalog.db")
    data = b"".join(
        p.read_bytes() for p in root.rglob("*") if p.is_file() and "data" not in p.parts
    )
    if "postgresql" in variant.settings.get("catalog", ""):
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            for name in names:
                rows = conn.execute(sa.text(f'select t::text from "{name}" t')).scalars().all()
                data += "\n".join(rows).encode()
            conn.execute(sa.text("select 1"))
        engine.dispose()
    return data


def _headwater_rows(database: Path) -> bytes:
    with sqlite3.connect(database) as conn:
        names = [
            r[0]
            for r in conn.execute("select name from sqlite_master where type = 'table'")
            if r[0].startswith("hw_")
        ]
        return b"".join(
            repr(row).encode() for name in names for row in conn.execute(f'select * from "{name}"')
        )


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(v, id=v.id, marks=[pytest.mark.postgres] if v.postgres else [])
        for v in VARIANTS
    ],
)
def test_no_fragment_of_a_secret_leaks(
    tmp_path: Path, variant: Variant, request: pytest.FixtureRequest
) -> None:
    port = request.getfixturevalue("pg_port") if variant.postgres else 1
    root = tmp_path / "leak"
    outputs: list[str] = []
    records = [{"id": i, "updated_at": "2026-10-01T10:00:00+00:00"} for i in range(1, 5)]
    with Api(records) as api:
        if variant.auth is not None:
            api.require(variant.auth[0], **variant.auth[1])
        _project(root, variant, api=api.url, port=port)
        wrong = variant.secret[:-3] + "!x/" if variant.auth else None
        for secret in filter(None, (wrong, variant.secret)):
            env = {"HW_SECRET": secret, "COLUMNS": "80"}
            for command in ("run", "status"):
                result = CliRunner().invoke(app, [command, "-p", str(root)], env=env)
                assert not isinstance(result.exception, Exception) or isinstance(
                    result.exception, SystemExit
                ), result.output
                outputs.append(result.output)
    if variant.lands:  # the run with the right secret worked: the secret was really used
        assert re.search(r"\b[1-9]\d* rows landed", outputs[-2]), outputs[-2]
    shown = "\n".join(outputs)
    stored = _stored(root, variant, port)
    secrets = [variant.secret, *([wrong] if variant.auth else [])]
    for secret in secrets:
        for piece in leaks(secret):
            if variant.id == "catalog_postgres_host" and piece != secret:
                continue
            assert piece not in shown, f"{piece!r} shown:\n{shown}"
            assert piece.encode() not in stored, f"{piece!r} stored"
