"""Failing-rule samples never carry the value of a PII column: the key and a masked value, in
what the CLI prints (run, check, JSON) and in what the catalog stores, for raw tables tagged
by their contract and for models whose column lineage reaches a tagged column."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from headwater.cli.main import app
from headwater.contracts import Rule
from headwater.engine.duckdb import DuckDBEngine
from headwater.govern.pii import UNKNOWN, model_pii
from headwater.project import load_project
from headwater.quality import evaluate
from headwater.quality.rules import mask

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
RAW = "not-an-email"  # the example's bad email (customers.csv), tagged `pii: email`
# a model that carries the email two hops from raw (raw.customers → clean.customers → here),
# renamed and transformed, with rules that fail on the bad address
CONTACTS = """\
select customer_id, upper(email) as contact, split_part(email, '@', 2) as domain, country
from clean.customers
"""
CONTACTS_SIDECAR = """\
rules:
  - {name: contacts_format, type: valid_values, target: contact, pattern: '[^@]+@[^@]+',
     severity: warn}
  - {name: contacts_dupes, type: uniqueness, target: domain, threshold: 0, severity: warn}
  - name: contacts_custom
    type: custom_sql
    target: "*"
    severity: warn
    sql: "select customer_id, lower(contact) as address from this where contact not like '%@%'"
"""
CLEAN_SIDECAR = """\
rules:
  - {name: clean_email_format, type: valid_values, target: email, pattern: '[^@]+@[^@]+',
     severity: warn}
"""

runner = CliRunner()


def hw(*args: str) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.output


@pytest.fixture(scope="module")
def project(shop_template: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The example with the two extra rules' files, after one run; and the run's output."""
    root = tmp_path_factory.mktemp("pii") / "shop"
    shutil.copytree(shop_template, root)
    (root / "models/marts/contacts.sql").write_text(CONTACTS)
    (root / "models/marts/contacts.yml").write_text(CONTACTS_SIDECAR)
    (root / "models/clean/customers.yml").write_text(CLEAN_SIDECAR)
    return root, hw("run", "-p", str(root))


def test_the_raw_value_is_in_the_data(project: tuple[Path, str]) -> None:
    root, _ = project  # so that its absence below means masking, not missing data
    assert RAW in (root / "data/customers/customers.csv").read_text()
    out = hw(
        "sql",
        f"select count(*) as n from marts.contacts where contact = upper('{RAW}')",
        "-p",
        str(root),
    )
    assert out.split()[-1] == "1", out


def test_run_prints_the_key_and_a_masked_value(project: tuple[Path, str]) -> None:
    _, out = project
    flat = " ".join(out.split())
    for rule in ("customers_email_format", "clean_email_format", "contacts_format"):
        assert f"{rule}: e.g. (customer_id=" in flat  # shown, with its key ...
    assert "(customer_id=11, email=n***@***)" in flat  # ... and the value masked
    assert "(customer_id=11, contact=N***@***, domain=***@***, country=ES)" in flat
    assert RAW not in out and RAW.upper() not in out


def test_check_and_its_json_mask_too(project: tuple[Path, str]) -> None:
    root, _ = project
    table = hw("check", "-p", str(root))
    assert "customers_email_format" in table and "contacts_format" in table
    as_json = hw("check", "--format", "json", "-p", str(root))
    assert '"email": "n***@***"' in as_json and '"contact": "N***@***"' in as_json
    for out in (table, as_json):
        assert RAW not in out.lower(), out


def test_every_sample_of_a_pii_column_is_masked(project: tuple[Path, str]) -> None:
    root, _ = project
    samples = {r["rule"]: r["samples"] for r in _json(root)}
    # an email's domain is derived from it: masked like the email, never shown
    assert samples["contacts_dupes"][0]["domain"] == "e***@***"
    # a custom rule's own expressions on a table with PII are masked whatever they are
    assert {"customer_id": 11, "address": "***"} in samples["contacts_custom"]
    assert samples["customers_country_known"][0]["country"] == "XX"  # not PII: shown


def test_the_catalog_holds_no_raw_value(project: tuple[Path, str]) -> None:
    root, _ = project
    hw("check", "-p", str(root))
    stored = b"".join(p.read_bytes() for p in (root / ".headwater").glob("catalog.db*"))
    assert b"n***@***" in stored
    assert RAW.encode() not in stored and RAW.upper().encode() not in stored


def _json(root: Path) -> list[dict[str, Any]]:
    return list(json.loads(hw("check", "--format", "json", "-p", str(root)))["results"])


def test_lineage_tags_model_columns(project: tuple[Path, str]) -> None:
    root, _ = project
    loaded = load_project(root)
    columns = ["customer_id", "contact", "domain", "country"]
    assert model_pii(loaded, "marts.contacts", columns) == {"contact": "email", "domain": "email"}
    assert model_pii(loaded, "marts.events_daily", ["day", "event_type"]) == {}
    # a column the table has but lineage does not know (added outside the SQL) may be PII
    assert model_pii(loaded, "marts.contacts", [*columns, "extra"])["extra"] == UNKNOWN


@pytest.mark.parametrize(
    ("value", "tag", "shown"),
    [
        ("jane@example.com", "email", "j***@***"),
        ("Jane Doe", "name", "***"),
        (42, "id", "***"),
        (None, "email", None),
    ],
)
def test_mask_is_deterministic_and_hides_the_value(value: Any, tag: str, shown: Any) -> None:
    assert mask(value, tag) == shown == mask(value, tag)


def test_evaluate_masks_only_pii_columns() -> None:
    engine = DuckDBEngine()
    engine.execute(
        "create table t as select * from (values (1, 'a@x.com', 'x'), (2, 'nope', 'y'), "
        "(2, 'nope', 'y')) v(id, email, tier)"
    )

    def rule(**spec: Any) -> Rule:
        return Rule.model_validate({"name": "r", **spec})

    rules = [
        rule(name="fmt", type="valid_values", target="email", pattern="[^@]+@[^@]+"),
        rule(name="dupes", type="uniqueness", target="email"),
        rule(name="tier", type="valid_values", target="tier", values=["x"]),
        rule(
            name="custom",
            type="custom_sql",
            target="*",
            sql="select id, email || '!' as e from this",
        ),
    ]
    results = {
        r.rule.name: r.samples
        for r in evaluate(
            rules,
            "t",
            engine=engine,
            now=NOW,
            columns=["id", "email", "tier"],
            key=["id"],
            pii={"email": "email"},
        )
    }
    assert results["fmt"] == [{"id": 2, "email": "n***@***"}] * 2
    assert results["dupes"] == [{"email": "n***@***", "copies": 2}]
    assert results["tier"] == [{"id": 2, "tier": "y"}] * 2
    assert {s["e"] for s in results["custom"]} == {"***"}
