"""`${ENV_VAR}` secrets through the whole product: a project with an HTTP source run from the
CLI, with the right API key (sent in the query string) and a wrong one. The key never shows
in output, the catalog or the lake, and the contract keeps the reference."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from headwater.cli.main import app
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
