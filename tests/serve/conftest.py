"""Fixtures of the data API tests: the example project with one more served model whose
columns have every type a filter reads, a policies.yml of three roles, an API key per role,
and the app answering on a real port (uvicorn in a thread, requests through httpx)."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from headwater.orchestrate import RunReport, Stores, run
from headwater.orchestrate.stores import LakeStores
from headwater.project import load_project
from headwater.serve.access import key_hash, new_key
from headwater.serve.app import create_app
from tests.conftest import NOW

ORDERS = "marts.orders_served"
EVENTS = "marts.events_daily"
ROLES = ("admin", "analyst", "outsider")
ANALYST_CURRENCY = "EUR"  # the analyst's row policy: only these orders

# integer, decimal, double, text (NULLs, commas, quotes), a column named like a reserved
# parameter, timestamp, date and boolean; orders past 900000 arrive only in the tests that
# refresh the data
ORDERS_SQL = """/* headwater
kind: table
grain: [order_id]
*/
select o.order_id,
       o.customer_id,
       o.amount,
       cast(o.amount as double) / 7 as ratio,
       o.status,
       case when o.order_id % 5 = 0 then null
            when o.order_id % 5 = 1 then 'red, green'
            when o.order_id % 5 = 2 then 'Blue "sky"'
            else upper(o.currency) end as label,
       c.email,
       c.full_name,
       o.currency,
       o.order_id % 3 as "limit",
       o.ordered_at,
       cast(o.ordered_at as date) as order_day,
       o.status in ('paid', 'shipped', 'delivered') as is_paid
from clean.orders o
left join clean.customers c on c.customer_id = o.customer_id
where o.order_id <= 300 or o.order_id > 900000
"""
ORDERS_YML = """description: Orders with their customer, served.
columns:
  order_id: The order
  email: {description: The customer's email, pii: email}
  full_name: The customer's name
serve: {aggregates: true, max_limit: 1000, default_limit: 100}
"""
POLICIES = f"""roles:
  admin: {{grants: ["*"], unmask: ["*"]}}
  analyst:
    grants: ["marts.*"]
    masks: {{{ORDERS}.full_name: partial}}
    rows: {{{ORDERS}: "currency = '{ANALYST_CURRENCY}'"}}
  outsider: {{grants: ["clean.*"]}}
"""


@dataclass
class Api:
    """A running data API: its project, base URL, one key per role and a client."""

    root: Path
    base: str
    keys: dict[str, str]
    app: FastAPI
    client: httpx.Client

    def auth(self, role: str | None) -> dict[str, str]:
        return {} if role is None else {"Authorization": f"Bearer {self.keys[role]}"}

    def get(
        self,
        path: str,
        role: str | None = "admin",
        params: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        return self.client.get(path, params=params, headers={**self.auth(role), **(headers or {})})

    def rows(self, model: str = ORDERS, role: str = "admin", **params: Any) -> dict[str, Any]:
        """A JSON page of `model` (asserting it is a 200), its decimals as `Decimal`."""
        response = self.get("/v1/" + model.replace(".", "/"), role, {"limit": 1000, **params})
        assert response.status_code == 200, response.text
        return page_of(response.content)

    def health(self) -> dict[str, Any]:
        return dict(self.client.get("/v1/health").json())


def page_of(body: bytes) -> dict[str, Any]:
    """A JSON page, its rows spelled by `as_json`."""
    page = dict(json.loads(body))
    page["data"] = [as_json(r) for r in page["data"]]
    return page


def served_project(template: Path, root: Path) -> Path:
    """A copy of the example with the served orders model and policies.yml, not yet run."""
    shutil.copytree(template, root)
    (root / "models/marts/orders_served.sql").write_text(ORDERS_SQL, encoding="utf-8")
    (root / "models/marts/orders_served.yml").write_text(ORDERS_YML, encoding="utf-8")
    (root / "policies.yml").write_text(POLICIES, encoding="utf-8")
    return root


def run_project(root: Path, now: datetime = NOW) -> RunReport:
    """Run the project in-process (as `headwater run` would)."""
    project = load_project(root)
    stores = Stores.open(project)
    try:
        report = run(project, stores, now=now)
    finally:
        stores.close()
    return report


def later(hours: int) -> datetime:
    return NOW + timedelta(hours=hours)


def make_keys(root: Path) -> dict[str, str]:
    """One API key per role, recorded in the catalog (its hash only)."""
    stores = LakeStores.open(load_project(root))
    keys = {}
    try:
        for role in ROLES:
            keys[role] = new_key()
            stores.catalog.add_api_key(
                f"tests-{role}", role, key_hash(keys[role]), now=datetime.now(UTC)
            )
    finally:
        stores.close()
    return keys


@contextmanager
def serving(root: Path) -> Iterator[Api]:
    """The project's data API on a free loopback port, stopped on exit."""
    keys = make_keys(root)
    app = create_app(load_project(root))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # a socket handed to uvicorn is not set TCP_NODELAY as one it binds is (Nagle's delay
    # would add ~40 ms to every answer); accepted connections inherit it
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", log_level="warning", access_log=False)
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="hw-test-api", daemon=True
    )
    thread.start()
    client = httpx.Client(base_url=base, timeout=30)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                # /docs: up, without reading the catalog or the lake yet
                if client.get("/docs").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the data API did not start"
            assert thread.is_alive(), "the data API thread died"
            time.sleep(0.05)
        yield Api(root, base, keys, app, client)
    finally:
        client.close()
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
        assert not thread.is_alive(), "the data API did not stop"


def warehouse_rows(root: Path, model: str = ORDERS) -> list[dict[str, Any]]:
    """`model`'s rows as prod shows them in the warehouse (only while no run writes it)."""
    path = root / ".headwater/warehouse.duckdb"
    with duckdb.connect(str(path), read_only=True) as conn:
        cursor = conn.execute(f"select * from {model}")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


DECIMALS = {"amount", "sum_amount", "min_amount", "max_amount"}


def as_json(row: dict[str, Any]) -> dict[str, Any]:
    """A row spelled so that it compares with the API's JSON: dates and times ISO 8601, the
    decimal columns as `Decimal` (JSON may spell one as a number or as text)."""

    def one(name: str, value: Any) -> Any:
        if value is None:
            return None
        if name in DECIMALS:
            return Decimal(str(value))
        if isinstance(value, datetime | date):
            return value.isoformat()
        return value

    return {k: one(k, v) for k, v in row.items()}


@pytest.fixture(scope="session")
def api(shop_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The served project after one run; its data never changes (tests that change it use
    `fresh_api`). Shared by every module of tests/serve."""
    root = served_project(shop_template, tmp_path_factory.mktemp("serve") / "shop")
    report = run_project(root)
    assert report.release is not None, report
    with serving(root) as running:
        yield running


@pytest.fixture(scope="session")
def truth(api: Api) -> list[dict[str, Any]]:
    """The served orders as the warehouse has them, spelled as the API's JSON, by order_id."""
    rows = [as_json(r) for r in warehouse_rows(api.root)]
    assert len(rows) > 200
    return sorted(rows, key=lambda r: r["order_id"])


@pytest.fixture
def fresh_api(shop_template: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Api]:
    """A served project of its own, after one run: for tests that land new data (an
    indirect parameter is appended to its headwater.yml)."""
    root = served_project(shop_template, tmp_path / "shop")
    settings = getattr(request, "param", "")
    if settings:
        with (root / "headwater.yml").open("a", encoding="utf-8") as handle:
            handle.write(settings)
    run_project(root)
    with serving(root) as running:
        yield running
