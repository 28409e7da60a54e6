"""`headwater import dbt` without dbt: each mapping from a small dbt project written per test,
the report's file:line, idempotence, and bad input as one clean line."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from headwater.change.dbt.convert import Conversion, convert
from headwater.change.dbt.shims import generate_surrogate_key
from headwater.cli.main import app
from headwater.project import load_project
from tests.badinput.harness import Outcome, assert_clean_error

PROJECT = """\
name: shop
profile: shop
vars:
  start: "2024-01-01"
  shop: {methods: [card, cash]}
models:
  shop:
    +materialized: view
    marts:
      +materialized: table
"""
ORDERS_CSV = "id,customer_id,amount,updated_at\n1,7,100,2024-01-02 10:00:00\n"


def dbt_project(root: Path, files: dict[str, str]) -> Path:
    """A dbt project: dbt_project.yml, one seed, and `files` (dedented)."""
    given = {"dbt_project.yml": PROJECT, "seeds/raw_orders.csv": ORDERS_CSV, **files}
    for name, text in given.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def converted(tmp_path: Path, files: dict[str, str]) -> Conversion:
    return convert(dbt_project(tmp_path / "dbt", files))


def text(conversion: Conversion, name: str) -> str:
    return conversion.files[name].decode()


def spec(conversion: Conversion, name: str) -> Any:
    return yaml.safe_load(conversion.files[name])


def unconverted(conversion: Conversion) -> list[tuple[str, str]]:
    return [(f.where, f.construct) for f in conversion.report.unconverted]


def hw(*args: str) -> Outcome:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    crashed = None if isinstance(result.exception, SystemExit) else result.exception
    return Outcome(result.exit_code, result.output, crashed)


# ---- models: Jinja rendered to plain SQL ---------------------------------------------------------


def test_ref_source_var_loops_and_macros_render_to_plain_sql(tmp_path: Path) -> None:
    conversion = converted(
        tmp_path,
        {
            "macros/money.sql": """\
                {% macro dollars(col) %}round({{ col }} / 100, 2){% endmacro %}
                {% macro twice(col) %}{{ return(col ~ ' * 2') }}{% endmacro %}
            """,
            "models/staging/stg_orders.sql": """\
                select id as order_id, {{ dollars('amount') }} as amount,
                       {{ shop.twice('amount') }} as doubled
                from {{ ref('raw_orders') }}
                where updated_at >= '{{ var("start") }}'
            """,
            "models/marts/by_method.sql": """\
                select
                {%- for m in var('methods') %}
                  sum(case when method = '{{ m }}' then amount end) as {{ m }}_amount,
                {%- endfor %}
                  count(*) as n
                from {{ ref('stg_orders') }} join {{ source('pos', 'payments') }} using (order_id)
            """,
            "models/staging/sources.yml": """\
                sources: [{name: pos, tables: [{name: payments}]}]
            """,
        },
    )
    staging = text(conversion, "models/staging/stg_orders.sql")
    assert "round(amount / 100, 2) as amount" in staging
    assert "amount * 2 as doubled" in staging
    assert "from seed.raw_orders" in staging and "'2024-01-01'" in staging
    marts = text(conversion, "models/marts/by_method.sql")
    assert "as card_amount," in marts and "as cash_amount," in marts
    assert "from staging.stg_orders join raw.payments using" in marts
    assert "{{" not in staging + marts and "{%" not in staging + marts


def test_materializations_become_kinds(tmp_path: Path) -> None:
    conversion = converted(
        tmp_path,
        {
            "models/staging/a.sql": "select 1 as x",
            "models/staging/b.sql": "{{ config(materialized='ephemeral') }} select 1 as x",
            "models/marts/c.sql": "select * from {{ ref('a') }}",
            "models/d.sql": "{{ config(materialized='table', tags=['finance']) }}\nselect 1 as x",
            "models/staging/off.sql": "{{ config(enabled=false) }} select 1 as x",
            "models/01-raw/my-model.sql": "select * from {{ ref('a') }}",
        },
    )
    assert "models/staging/off.sql" not in conversion.files
    assert "from staging.a" in text(conversion, "models/z_01_raw/my_model.sql")
    assert unconverted(conversion) == [("models/01-raw/my-model.sql", "model name `my-model`")]
    assert text(conversion, "models/staging/a.sql").startswith("/* headwater\nkind: view\n*/\n")
    assert "kind: ephemeral" in text(conversion, "models/staging/b.sql")
    assert "kind: table" in text(conversion, "models/marts/c.sql")
    # a model at the root of models/ goes to the marts zone
    assert text(conversion, "models/marts/d.sql") == (
        "/* headwater\nkind: table\ntags: [finance]\n*/\nselect 1 as x\n"
    )


INCREMENTAL = """\
{{{{ config(materialized='incremental'{key}) }}}}
select id, amount, updated_at from {{{{ {table} }}}}
{{% if is_incremental() %}}
where updated_at > (select max(updated_at) from {{{{ this }}}})
{{% endif %}}
"""


def test_an_incremental_model_with_a_key_and_a_newer_than_this_filter_is_incremental_by_key(
    tmp_path: Path,
) -> None:
    model = INCREMENTAL.format(key=", unique_key='id'", table="ref('raw_orders')")
    conversion = converted(tmp_path, {"models/staging/orders.sql": model})
    sql = text(conversion, "models/staging/orders.sql")
    assert sql.startswith(
        "/* headwater\nkind: incremental_by_key\nunique_key: [id]\nupdated_column: updated_at\n*/"
    )
    assert "max(updated_at)" not in sql  # the full-build SQL: is_incremental() is false
    assert unconverted(conversion) == []


@pytest.mark.parametrize(
    ("key", "table", "why"),
    [
        ("", "ref('raw_orders')", "it has no unique_key"),
        (", unique_key='id'", "ref('base')", "it reads models"),
    ],
)
def test_other_incremental_models_are_tables_and_flagged(
    tmp_path: Path, key: str, table: str, why: str
) -> None:
    files = {
        "models/staging/orders.sql": INCREMENTAL.format(key=key, table=table),
        "models/staging/base.sql": "select * from {{ ref('raw_orders') }}",
    }
    conversion = converted(tmp_path, files)
    assert "kind: table" in text(conversion, "models/staging/orders.sql")
    [finding] = conversion.report.unconverted
    assert finding.where == "models/staging/orders.sql"
    assert why in finding.action


def test_unknown_macros_are_flagged_with_file_and_line_and_stay_visible(tmp_path: Path) -> None:
    conversion = converted(
        tmp_path,
        {
            "macros/helpers.sql": "{% macro pivoted() %}\n"
            "{{ dbt_utils.pivot('m') }}\n{% endmacro %}",
            "models/staging/a.sql": "select\n  {{ dbt_utils.star(ref('raw_orders')) }},\n"
            "  {{ pivoted() }}\nfrom {{ ref('raw_orders') }}",
        },
    )
    assert unconverted(conversion) == [
        ("macros/helpers.sql:2", "`dbt_utils.pivot(...)`"),
        ("models/staging/a.sql:2", "`dbt_utils.star(...)`"),
    ]
    # the model keeps the call as Jinja, which headwater refuses naming the line
    assert "{{ dbt_utils.star('seed.raw_orders') }}" in text(conversion, "models/staging/a.sql")


def test_generate_surrogate_key_is_expanded_as_dbt_utils_does() -> None:
    assert generate_surrogate_key(["a", "b"]) == (
        "md5(cast(coalesce(cast(a as varchar), '_dbt_utils_surrogate_key_null_') || '-' || "
        "coalesce(cast(b as varchar), '_dbt_utils_surrogate_key_null_') as varchar))"
    )


# ---- schema.yml: docs and tests ------------------------------------------------------------------

SCHEMA = """\
models:
  - name: orders
    description: One row per order.
    meta: {owner: sales@example.com}
    data_tests:
      - dbt_utils.unique_combination_of_columns:
          combination_of_columns: [id, customer_id]
      - dbt_expectations.expect_table_row_count_to_be_between:
          arguments: {min_value: 1, max_value: 1000}
      - dbt_utils.recency: {datepart: day, field: updated_at, interval: 3}
      - dbt_utils.expression_is_true:
          expression: "amount >= 0"
          config: {severity: warn, where: "id > 0"}
    columns:
      - name: id
        description: The order id.
        data_tests: [unique, not_null]
      - name: customer_id
        data_tests:
          - relationships: {to: ref('customers'), field: id, config: {where: "id > 0"}}
      - name: amount
        data_tests:
          - accepted_values: {values: [100, 200], config: {severity: warn}}
          - dbt_utils.accepted_range: {min_value: 0, max_value: 500}
          - dbt_utils.not_null_proportion: {at_least: 0.95}
          - dbt_expectations.expect_column_values_to_match_regex: {regex: "^[0-9]+$"}
          - dbt_utils.not_constant
          - dbt_utils.at_least_one
"""


def test_tests_become_rules_with_severity_and_where(tmp_path: Path) -> None:
    conversion = converted(
        tmp_path,
        {
            "models/staging/orders.sql": "select * from {{ ref('raw_orders') }}",
            "models/staging/customers.sql": "select 7 as id",
            "models/staging/schema.yml": SCHEMA,
        },
    )
    sidecar = spec(conversion, "models/staging/orders.yml")
    assert sidecar["description"] == "One row per order."
    assert sidecar["owner"] == "sales@example.com"
    assert sidecar["columns"] == {"id": "The order id."}
    rules = {r.pop("name"): r for r in sidecar["rules"]}
    assert rules == {
        "orders_unique_combination_of_columns": {"type": "uniqueness", "target": "id, customer_id"},
        "orders_expect_table_row_count_to_be_between": {
            "type": "row_count", "target": "*", "min": 1, "max": 1000,
        },
        "orders_recency": {"type": "freshness", "target": "updated_at", "threshold": "3 days"},
        "orders_expression_is_true": {
            "type": "custom_sql", "target": "*", "severity": "warn",
            "sql": "SELECT * FROM (SELECT * FROM this WHERE id > 0) AS this "
                   "WHERE NOT (amount >= 0)",
        },
        "id_unique": {"type": "uniqueness", "target": "id"},
        "id_not_null": {"type": "not_null", "target": "id"},
        "customer_id_relationships": {
            "type": "referential_integrity", "target": "customer_id",
            "to": "staging.customers.id", "where": "id > 0",
        },
        "amount_accepted_values": {
            "type": "valid_values", "target": "amount", "values": [100, 200], "severity": "warn",
        },
        "amount_accepted_range": {"type": "valid_values", "target": "amount", "min": 0, "max": 500},
        "amount_not_null_proportion": {
            "type": "completeness", "target": "amount", "threshold": 0.05,
        },
        "amount_expect_column_values_to_match_regex": {
            "type": "valid_values", "target": "amount", "pattern": "(?s).*(?:^[0-9]+$).*",
        },
        "amount_at_least_one": {
            "type": "custom_sql", "target": "*",
            "sql": "SELECT * FROM (SELECT COUNT(amount) AS present FROM this) WHERE present = 0",
        },
    }  # fmt: skip
    assert unconverted(conversion) == [
        ("models/staging/schema.yml:27", "test `dbt_utils.not_constant`")
    ]


def test_a_relationship_to_a_downstream_model_is_checked_from_there(tmp_path: Path) -> None:
    conversion = converted(
        tmp_path,
        {
            "models/marts/orders.sql": "select 1 as id, 7 as customer_id",
            "models/marts/customers.sql": "select customer_id as id from {{ ref('orders') }}",
            "models/marts/schema.yml": """\
                models:
                  - name: orders
                    columns:
                      - name: customer_id
                        data_tests:
                          - relationships:
                              to: ref('customers')
                              field: id
                              config: {where: "customer_id > 0"}
            """,
        },
    )
    assert "models/marts/orders.yml" not in conversion.files
    [rule] = spec(conversion, "models/marts/customers.yml")["rules"]
    assert rule["name"] == "orders_customer_id_relationships"
    assert rule["sql"] == (
        "SELECT child.* FROM (SELECT * FROM marts.orders WHERE customer_id > 0) AS child "
        "WHERE NOT child.customer_id IS NULL "
        "AND NOT EXISTS(SELECT 1 FROM this WHERE this.id = child.customer_id)"
    )


# ---- seeds and sources ---------------------------------------------------------------------------


def test_seeds_are_copied_byte_for_byte_with_their_types_and_tests(tmp_path: Path) -> None:
    conversion = converted(
        tmp_path,
        {
            "dbt_project.yml": PROJECT + "seeds:\n  shop:\n    +column_types: {amount: bigint}\n",
            "seeds/schema.yml": """\
                seeds:
                  - name: raw_orders
                    description: Orders.
                    config: {delimiter: ","}
                    columns:
                      - {name: amount, description: Cents., data_tests: [not_null]}
            """,
        },
    )
    assert conversion.files["seeds/raw_orders.csv"] == ORDERS_CSV.encode()
    assert spec(conversion, "seeds/raw_orders.yml") == {
        "description": "Orders.",
        "columns": [{"name": "amount", "type": "bigint", "description": "Cents."}],
        "rules": [{"name": "amount_not_null", "type": "not_null", "target": "amount"}],
    }


def test_sources_become_contracts_with_a_connector_or_a_flagged_stub(tmp_path: Path) -> None:
    conversion = converted(
        tmp_path,
        {
            "models/staging/sources.yml": """\
                sources:
                  - name: shop
                    meta: {external_location: "exports/{name}.parquet"}
                    tables:
                      - name: orders
                        columns: [{name: id, data_type: bigint, data_tests: [unique]}]
                      - name: customers
                        identifier: crm_customers
                  - name: crm
                    tables: [{name: customers}]
                  - name: web
                    tables:
                      - name: events
                        meta: {external_location: "/exports/events/*.JSONL.gz"}
            """,
        },
    )
    root = (tmp_path / "dbt").resolve()
    orders = spec(conversion, "contracts/orders.yml")
    assert orders["connector"] == {
        "kind": "files", "path": f"{root}/exports/orders.parquet", "format": "parquet",
    }  # fmt: skip
    assert orders["load"] == "snapshot"
    assert orders["columns"] == [{"name": "id", "type": "bigint"}]
    assert orders["rules"] == [{"name": "id_unique", "type": "uniqueness", "target": "id"}]
    assert spec(conversion, "contracts/shop_customers.yml")["connector"]["path"] == (
        f"{root}/exports/crm_customers.parquet"
    )
    assert spec(conversion, "contracts/crm_customers.yml")["connector"]["path"] == (
        "data/crm/customers/*.csv"
    )
    assert spec(conversion, "contracts/events.yml")["connector"] == {
        "kind": "files", "path": "/exports/events/*.JSONL.gz", "format": "jsonl",
    }  # fmt: skip
    assert unconverted(conversion) == [
        ("models/staging/sources.yml:7", "source table `shop.customers`"),
        ("models/staging/sources.yml:10", "source `crm.customers`"),
        ("models/staging/sources.yml:10", "source table `crm.customers`"),
    ]


def test_the_output_is_a_project_headwater_loads(tmp_path: Path) -> None:
    dbt = dbt_project(
        tmp_path / "dbt",
        {
            "models/staging/stg_orders.sql": "select id, amount from {{ ref('raw_orders') }}",
            "models/marts/revenue.sql": "select sum(amount) as revenue "
            "from {{ ref('stg_orders') }}",
            "models/staging/schema.yml": "models: [{name: stg_orders, columns: "
            "[{name: id, data_tests: [unique]}]}]",
        },
    )
    assert hw("import", "dbt", str(dbt), str(tmp_path / "out")).code == 0
    loaded = load_project(tmp_path / "out")
    assert loaded.settings.name == "shop"
    assert set(loaded.models) == {"staging.stg_orders", "marts.revenue"}
    assert loaded.models["marts.revenue"].depends_on == ("staging.stg_orders",)
    assert [r.name for r in loaded.models["staging.stg_orders"].rules] == ["id_unique"]


# ---- the command: determinism, the report, refusals ----------------------------------------------


def test_importing_twice_gives_the_same_tree_and_reimporting_overwrites(tmp_path: Path) -> None:
    dbt = dbt_project(tmp_path / "dbt", {"models/staging/a.sql": "select {{ nope() }} as x"})
    first, second = tmp_path / "first", tmp_path / "second"
    assert hw("import", "dbt", str(dbt), str(first)).code == 0
    assert hw("import", "dbt", str(dbt), str(second)).code == 0
    assert tree(first) == tree(second)
    (dbt / "models/staging/a.sql").rename(dbt / "models/staging/b.sql")
    (first / ".headwater").mkdir()  # state a run left is kept
    assert hw("import", "dbt", str(dbt), str(first)).code == 0
    assert "models/staging/a.sql" not in tree(first) and "models/staging/b.sql" in tree(first)
    assert (first / ".headwater").is_dir()


def test_the_report_and_summary_name_each_unconverted_construct(tmp_path: Path) -> None:
    dbt = dbt_project(tmp_path / "dbt", {"models/staging/a.sql": "select\n{{ nope() }} as x"})
    outcome = hw("import", "dbt", str(dbt), str(tmp_path / "out"))
    assert outcome.code == 0
    assert "models/staging/a.sql:2  `nope(...)`" in outcome.output
    assert f"Report: {tmp_path / 'out' / 'IMPORT.md'}" in outcome.output
    report = (tmp_path / "out/IMPORT.md").read_text()
    assert "| models (view) | 1 |" in report
    assert "- `models/staging/a.sql:2` `nope(...)`: a macro headwater does not know" in report
    outcome = hw("import", "dbt", str(dbt), str(tmp_path / "json"), "--format", "json")
    assert '"line": 2' in outcome.output and '"construct": "`nope(...)`"' in outcome.output


def test_a_folder_an_import_did_not_write_is_refused_without_force(tmp_path: Path) -> None:
    dbt = dbt_project(tmp_path / "dbt", {"models/staging/a.sql": "select 1 as x"})
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert_clean_error(hw("import", "dbt", str(dbt), str(out)), "not empty", "--force", code=3)
    assert hw("import", "dbt", str(dbt), str(out), "--force").code == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "IMPORT.md").exists()
    # never into the dbt project itself, forced or not
    outcome = hw("import", "dbt", str(dbt), str(dbt), "--force")
    assert_clean_error(outcome, "would overwrite the dbt project", code=3)
    assert (dbt / "models/staging/a.sql").read_text() == "select 1 as x"


@pytest.mark.parametrize(
    ("files", "names"),
    [
        ({"dbt_project.yml": ""}, ["dbt_project.yml", "name"]),
        ({"dbt_project.yml": "name: [shop\n"}, ["dbt_project.yml:", "invalid YAML"]),
        (
            {"models/staging/a.sql": "select 1\n{% if true %}\nas x"},
            ["models/staging/a.sql:2", "Jinja syntax error"],
        ),
        (
            {"models/staging/schema.yml": "models:\n  - name: a\n   bad: indent\n"},
            ["models/staging/schema.yml:3", "invalid YAML"],
        ),
        ({"macros/m.sql": "{% macro m() %}\nunclosed"}, ["macros/m.sql:1", "Jinja syntax"]),
    ],
)
def test_bad_dbt_projects_are_one_clean_line(
    tmp_path: Path, files: dict[str, str], names: list[str]
) -> None:
    dbt = dbt_project(tmp_path / "dbt", files)
    outcome = hw("import", "dbt", str(dbt), str(tmp_path / "out"))
    assert_clean_error(outcome, *names, code=3)
    assert outcome.output.strip().count("\n") == 0
    assert not (tmp_path / "out").exists()


def test_a_folder_without_a_dbt_project_is_refused(tmp_path: Path) -> None:
    outcome = hw("import", "dbt", str(tmp_path), str(tmp_path / "out"))
    assert_clean_error(outcome, "no dbt_project.yml", code=3)


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_the_cli_loads_jinja_only_when_importing() -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from headwater.cli.main import app; "
        "CliRunner().invoke(app, ['--help']); "
        "CliRunner().invoke(app, ['import', 'dbt', '--help']); "
        "print('jinja2' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_env_var_target_and_hooks_are_rendered_but_flagged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_REGION", "eu")
    conversion = converted(
        tmp_path,
        {
            "dbt_project.yml": PROJECT + '    +post-hook: "analyze {{ this }}"\n',
            "models/marts/a.sql": "select '{{ env_var('SHOP_REGION') }}' as region\n"
            "{% if target.name == 'prod' %}, 1 as prod{% endif %}",
        },
    )
    assert "select 'eu' as region" in text(conversion, "models/marts/a.sql")
    assert unconverted(conversion) == [
        ("models/marts/a.sql", "`post-hook` config"),
        ("models/marts/a.sql:1", "`env_var('SHOP_REGION')`"),
        ("models/marts/a.sql:2", "`target.name`"),
    ]


def test_unit_tests_become_model_tests_headwater_runs(tmp_path: Path) -> None:
    dbt = dbt_project(
        tmp_path / "dbt",
        {
            "models/staging/sources.yml": """\
                sources:
                  - name: pos
                    tables:
                      - name: sales
                        columns:
                          - {name: id, data_type: bigint}
                          - {name: cents, data_type: bigint}
            """,
            "models/staging/sales.sql": "select id, cents / 100 as amount "
            "from {{ source('pos', 'sales') }}",
            "models/staging/schema.yml": """\
                unit_tests:
                  - name: cents_become_amounts
                    model: sales
                    given:
                      - input: source('pos', 'sales')
                        rows: [{id: 1, cents: 250}]
                    expect:
                      rows: [{id: 1, amount: 2.5}]
                  - name: incremental_case
                    model: sales
                    overrides: {macros: {is_incremental: true}}
                    given: []
                    expect: {rows: []}
                  - name: from_csv
                    model: sales
                    given: [{input: "source('pos', 'sales')", format: csv, rows: "id,cents"}]
                    expect: {rows: []}
            """,
        },
    )
    out = tmp_path / "out"
    assert hw("import", "dbt", str(dbt), str(out)).code == 0
    assert yaml.safe_load((out / "tests/dbt_unit_tests.yml").read_text()) == {
        "cents_become_amounts": {
            "model": "staging.sales",
            "inputs": {"raw.sales": [{"id": 1, "cents": 250}]},
            "expected": [{"id": 1, "amount": 2.5}],
        }
    }
    report = (out / "IMPORT.md").read_text()
    assert "- `models/staging/schema.yml:9` unit test `incremental_case`: it overrides" in report
    assert "- `models/staging/schema.yml:14` unit test `from_csv`: input" in report
    outcome = hw("test", "-p", str(out))
    assert outcome.code == 0 and "1 passed" in outcome.output, outcome


def test_a_model_that_is_not_utf8_is_one_clean_line(tmp_path: Path) -> None:
    dbt = dbt_project(tmp_path / "dbt", {})
    (dbt / "models/staging").mkdir(parents=True)
    (dbt / "models/staging/a.sql").write_bytes(b"select 1 as x\n-- caf\xe9\n")
    outcome = hw("import", "dbt", str(dbt), str(tmp_path / "out"))
    assert_clean_error(outcome, "models/staging/a.sql:2", "not UTF-8", code=3)


def test_singular_tests_become_custom_sql_on_the_table_built_from_the_others(
    tmp_path: Path,
) -> None:
    conversion = converted(
        tmp_path,
        {
            "models/staging/orders.sql": "select id, amount from {{ ref('raw_orders') }}",
            "models/marts/totals.sql": "select sum(amount) as total from {{ ref('orders') }}",
            "models/staging/other.sql": "select 1 as id",
            "tests/total_matches.sql": """\
                {{ config(severity='warn') }}
                -- the total is the sum of the orders
                select * from {{ ref('totals') }}
                where total <> (select sum(amount) from {{ ref('orders') }})
            """,
            "tests/unrelated.sql": "select * from {{ ref('orders') }} join {{ ref('other') }} "
            "using (id)",
        },
    )
    [rule] = spec(conversion, "models/marts/totals.yml")["rules"]
    assert rule == {
        "name": "total_matches",
        "type": "custom_sql",
        "target": "*",
        "severity": "warn",
        "sql": "SELECT * FROM marts.totals WHERE total <> (SELECT SUM(amount) FROM staging.orders)",
    }
    assert unconverted(conversion) == [("tests/unrelated.sql", "singular test")]


def test_a_model_whose_jinja_fails_to_render_is_kept_as_written_and_flagged(
    tmp_path: Path,
) -> None:
    model = "select 1 as x\n{{ exceptions.raise_compiler_error('not on duckdb') }}\n"
    conversion = converted(tmp_path, {"models/staging/a.sql": model})
    assert unconverted(conversion) == [("models/staging/a.sql:2", "Jinja that failed to render")]
    assert conversion.report.unconverted[0].action.startswith("not on duckdb")
    assert text(conversion, "models/staging/a.sql").endswith(model.strip() + "\n")


def test_unknown_results_can_be_used_further_and_are_flagged_once(tmp_path: Path) -> None:
    conversion = converted(
        tmp_path,
        {
            "models/staging/a.sql": """\
                {% set found = run_query('select 1') %}
                {% if execute %}{% set first = found.columns[0].values() %}{% endif %}
                select {{ adapter.dispatch('pick', 'pkg')('x') }} as picked
            """,
        },
    )
    assert unconverted(conversion) == [
        ("models/staging/a.sql:1", "`run_query(...)`"),
        ("models/staging/a.sql:3", "`adapter.dispatch(...)`"),
    ]
    assert "select {{ adapter.dispatch('pick', 'pkg') }} as picked" in text(
        conversion, "models/staging/a.sql"
    )
