"""Bad input, models: every way a model file, its header, its sidecar or a Python model can be
wrong gives one clear line naming the file (and the line or field), never a traceback."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.badinput.harness import assert_clean_error, hw, probe_project, write

ORDERS_SQL = "models/clean/orders.sql"
ORDERS_YML = "models/clean/orders.yml"
DAILY_SQL = "models/marts/orders_daily.sql"
HEADER = "/* headwater\nkind: table\ngrain: [order_id]\n*/\n"
SELECT = "select order_id, customer_id, status, amount, ordered_at\nfrom raw.orders\n"


@dataclass(frozen=True)
class Case:
    id: str
    files: dict[str, str | bytes]
    expect: tuple[str, ...]  # each must appear in the message
    code: int | None = None  # 3: refused when the project loads; 1: the run failed
    removed: tuple[str, ...] = field(default=())


def header(*lines: str) -> str:
    return "/* headwater\n" + "".join(f"{line}\n" for line in lines) + "*/\n" + SELECT


def sidecar(*rules: str) -> str:
    return "rules:\n" + "".join(f"  - {rule}\n" for rule in rules)


def python(body: str) -> dict[str, str | bytes]:
    return {"models/marts/py_model.py": body}


CASES = [
    # --- the SQL of a model -------------------------------------------------------------------
    Case(
        "sql-syntax",
        {ORDERS_SQL: HEADER + "select order_id, status\nfrom raw.orders where\n"},
        (ORDERS_SQL, "SQL syntax error"),
        3,
    ),
    Case(
        "sql-unclosed-paren",
        {ORDERS_SQL: HEADER + "select (order_id from raw.orders\n"},
        (ORDERS_SQL, "syntax"),
        3,
    ),
    Case(
        "sql-unterminated-string",
        {ORDERS_SQL: HEADER + "select 'abc from raw.orders\n"},
        (ORDERS_SQL,),
        3,
    ),
    Case(
        "sql-two-statements",
        {ORDERS_SQL: HEADER + SELECT + ";\nselect 1 as x from raw.orders;\n"},
        (ORDERS_SQL, "one SELECT statement, found 2"),
        3,
    ),
    Case("sql-empty-file", {ORDERS_SQL: ""}, (ORDERS_SQL, "found 0"), 3),
    Case(
        "sql-only-comments",
        {ORDERS_SQL: "-- nothing here\n/* still nothing */\n"},
        (ORDERS_SQL, "found 0"),
        3,
    ),
    Case(
        "sql-drop-table",
        {ORDERS_SQL: "drop table raw.orders\n"},
        (ORDERS_SQL, "a model is a SELECT statement, found DROP"),
        3,
    ),
    Case(
        "sql-insert",
        {ORDERS_SQL: "insert into raw.orders values (1)\n"},
        (ORDERS_SQL, "found INSERT"),
        3,
    ),
    Case("sql-delete", {ORDERS_SQL: "delete from raw.orders\n"}, (ORDERS_SQL, "found DELETE"), 3),
    Case(
        "sql-unknown-table",
        {ORDERS_SQL: "select * from raw.order\n"},
        (f"{ORDERS_SQL}:1", "unknown table 'raw.order'", "did you mean 'raw.orders'?"),
        3,
    ),
    Case(
        "sql-table-without-zone",
        {ORDERS_SQL: "select *\nfrom orders\n"},
        (f"{ORDERS_SQL}:2", "table 'orders' has no zone"),
        3,
    ),
    Case(
        "sql-unknown-zone",
        {ORDERS_SQL: "select * from staging.orders\n"},
        (ORDERS_SQL, "unknown table 'staging.orders'", "did you mean"),
        3,
    ),
    Case(
        "sql-self-reference",
        {ORDERS_SQL: "select * from clean.orders\n"},
        (ORDERS_SQL, "dependency cycle"),
        3,
    ),
    Case(
        "sql-two-model-cycle",
        {ORDERS_SQL: "select * from marts.orders_daily\n"},
        ("dependency cycle", "clean.orders", "marts.orders_daily"),
        3,
    ),
    Case(
        "sql-three-model-cycle",
        {
            ORDERS_SQL: "select * from marts.loop_b\n",
            "models/marts/loop_a.sql": "select * from clean.orders\n",
            "models/marts/loop_b.sql": "select * from marts.loop_a\n",
        },
        ("dependency cycle", "marts.loop_a", "marts.loop_b"),
        3,
    ),
    Case(
        "sql-unknown-column-at-build",
        {ORDERS_SQL: "select order_id,\n  nope\nfrom raw.orders\n"},
        (f"{ORDERS_SQL}:2", "nope"),
        1,
    ),
    Case(
        "sql-bad-function-at-build",
        {ORDERS_SQL: "select order_id, no_such_fn(order_id) as x from raw.orders\n"},
        (ORDERS_SQL, "no_such_fn"),
        1,
    ),
    Case(
        "sql-cast-fails-at-build",
        {ORDERS_SQL: "select order_id, cast(status as integer) as s from raw.orders\n"},
        (ORDERS_SQL, "Conversion Error"),
        1,
    ),
    Case(
        "sql-not-utf8",
        {ORDERS_SQL: HEADER.encode() + b"select '\xff' as x from raw.orders\n"},
        (f"{ORDERS_SQL}:5", "not UTF-8", "0xff"),
        3,
    ),
    Case(
        "sql-latin1",
        {ORDERS_SQL: "select 'caf\xe9' as x from raw.orders\n".encode("latin-1")},
        (f"{ORDERS_SQL}:1", "not UTF-8"),
        3,
    ),
    Case(
        "sql-unknown-parameter",
        {ORDERS_SQL: "select * from raw.orders where order_id > :min_id\n"},
        (ORDERS_SQL, "unknown parameter :min_id"),
        3,
    ),
    Case("sql-binary-junk", {ORDERS_SQL: bytes(range(256))}, (ORDERS_SQL,), 3),
    # --- a dbt model, as it was written for dbt ---------------------------------------------
    Case(
        "dbt-ref",
        {DAILY_SQL: "select cast(ordered_at as date) as day\nfrom {{ ref('orders') }}\n"},
        (
            f"{DAILY_SQL}:2",
            "plain SQL",
            "write the table's name, e.g. clean.orders, instead of {{ ref('orders') }}",
        ),
        3,
    ),
    Case(
        "dbt-source",
        {ORDERS_SQL: "select *\nfrom {{ source('shop', 'orders') }}\n"},
        (f"{ORDERS_SQL}:2", "a source is a contract: write raw.orders"),
        3,
    ),
    Case(
        "dbt-config",
        {ORDERS_SQL: "{{ config(materialized='table') }}\n" + SELECT},
        (f"{ORDERS_SQL}:1", "configuration goes in a `/* headwater ... */` comment"),
        3,
    ),
    Case(
        # `{{ f(x) }}` is also a DuckDB struct literal: it must be refused, not run
        "dbt-macro-call",
        {
            DAILY_SQL: "select\n  {{ dbt_utils.star('clean.orders') }}, count(*) as n\n"
            "from clean.orders\n"
        },
        (f"{DAILY_SQL}:2", "plain SQL", "write out the SQL the template would make"),
        3,
    ),
    Case(
        "dbt-for-loop",
        {
            DAILY_SQL: "select\n{% for s in ['paid'] %}count(*) as n_{{ s }}{% endfor %}\n"
            "from clean.orders\n"
        },
        (f"{DAILY_SQL}:2", "{% for %} blocks are not run"),
        3,
    ),
    Case(
        "dbt-test-unique",
        {ORDERS_YML: sidecar("{name: r, type: unique, target: order_id}")},
        (f"{ORDERS_YML}:2", "did you mean 'uniqueness'? (unique in dbt)"),
        3,
    ),
    Case(
        "dbt-test-accepted-values",
        {ORDERS_YML: sidecar("{name: r, type: accepted_values, target: status, values: [paid]}")},
        (f"{ORDERS_YML}:2", "did you mean 'valid_values'?"),
        3,
    ),
    Case(
        "dbt-test-relationships",
        {
            ORDERS_YML: sidecar(
                "{name: r, type: relationships, target: order_id, to: raw.orders.order_id}"
            )
        },
        (f"{ORDERS_YML}:2", "did you mean 'referential_integrity'?"),
        3,
    ),
    # --- the header block -------------------------------------------------------------------
    Case(
        "header-invalid-yaml", {ORDERS_SQL: header("kind: [table")}, (ORDERS_SQL, "invalid YAML"), 3
    ),
    Case(
        "header-unknown-key",
        {ORDERS_SQL: header("kinds: table")},
        (f"{ORDERS_SQL}:2", "kinds", "did you mean 'kind'?"),
        3,
    ),
    Case(
        "header-bad-kind",
        {ORDERS_SQL: header("kind: tabel")},
        (f"{ORDERS_SQL}:2", "kind", "did you mean 'table'?"),
        3,
    ),
    Case("header-not-a-mapping", {ORDERS_SQL: header("- table")}, (ORDERS_SQL, "mapping"), 3),
    Case(
        "header-incremental-without-time-column",
        {ORDERS_SQL: header("kind: incremental_by_time")},
        (ORDERS_SQL, "time_column"),
        3,
    ),
    Case(
        "header-incremental-without-bounds",
        {ORDERS_SQL: header("kind: incremental_by_time", "time_column: ordered_at")},
        (ORDERS_SQL, ":start"),
        3,
    ),
    Case(
        "header-bad-lookback",
        {ORDERS_SQL: header("lookback: a while")},
        (f"{ORDERS_SQL}:2", "lookback"),
        3,
    ),
    Case(
        "header-batch-size-zero",
        {ORDERS_SQL: header("batch_size: 0")},
        (f"{ORDERS_SQL}:2", "batch_size"),
        3,
    ),
    Case(
        "header-batch-size-text",
        {ORDERS_SQL: header("batch_size: many")},
        (f"{ORDERS_SQL}:2", "batch_size"),
        3,
    ),
    Case(
        "header-by-key-without-key",
        {ORDERS_SQL: header("kind: incremental_by_key")},
        (ORDERS_SQL, "unique_key"),
        3,
    ),
    Case(
        "header-grain-missing-column",
        {ORDERS_SQL: header("grain: [order_no]")},
        (f"{ORDERS_SQL}:2", "order_no", "did you mean 'order_id'?"),
        3,
    ),
    Case(
        "header-grain-not-a-list",
        {ORDERS_SQL: header("grain: {a: 1}")},
        (f"{ORDERS_SQL}:2", "grain"),
        3,
    ),
    Case(
        "header-time-column-missing",
        {
            ORDERS_SQL: "/* headwater\nkind: incremental_by_time\ntime_column: day\n*/\n"
            "select order_id, ordered_at from raw.orders\n"
            "where ordered_at >= :start and ordered_at < :end\n"
        },
        (ORDERS_SQL, "time_column 'day' is not a column"),
        3,
    ),
    Case(
        "header-unique-key-missing",
        {
            ORDERS_SQL: header(
                "kind: incremental_by_key", "unique_key: [id]", "updated_column: ordered_at"
            )
        },
        (f"{ORDERS_SQL}:3", "unique_key", "'id'"),
        3,
    ),
    Case(
        "header-append-reads-a-model",
        {
            "models/marts/appended.sql": "/* headwater\nkind: append\n*/\n"
            "select * from clean.orders\n"
        },
        ("models/marts/appended.sql", "reads raw tables (and seeds) only"),
        3,
    ),
    Case(
        "header-tab-indent",
        {ORDERS_SQL: "/* headwater\nkind: table\n\tgrain: [order_id]\n*/\n" + SELECT},
        (ORDERS_SQL, "invalid YAML"),
        3,
    ),
    Case(
        "header-bad-start",
        {ORDERS_SQL: header("start: yesterday-ish")},
        (f"{ORDERS_SQL}:2", "start"),
        3,
    ),
    # --- the sidecar ------------------------------------------------------------------------
    Case("sidecar-invalid-yaml", {ORDERS_YML: "rules: [\n"}, (ORDERS_YML, "invalid YAML"), 3),
    Case(
        "sidecar-unknown-key",
        {ORDERS_YML: "descripton: Orders.\n"},
        (f"{ORDERS_YML}:1", "did you mean 'description'?"),
        3,
    ),
    Case(
        "sidecar-rules-not-a-list",
        {ORDERS_YML: "rules: {name: x}\n"},
        (f"{ORDERS_YML}:1", "rules"),
        3,
    ),
    Case(
        "sidecar-rule-bad-type",
        {ORDERS_YML: sidecar("{name: r, type: uniqueneess, target: order_id}")},
        (f"{ORDERS_YML}:2", "did you mean 'uniqueness'?"),
        3,
    ),
    Case(
        "sidecar-rule-without-name",
        {ORDERS_YML: sidecar("{type: not_null, target: order_id}")},
        (f"{ORDERS_YML}:2", "name"),
        3,
    ),
    Case(
        "sidecar-rule-missing-column",
        {ORDERS_YML: sidecar("{name: r, type: not_null, target: order_idd}")},
        (f"{ORDERS_YML}:2", "rules[0].target", "did you mean 'order_id'?"),
        3,
    ),
    Case(
        "sidecar-rule-one-of-two-columns-missing",
        {ORDERS_YML: sidecar("{name: r, type: uniqueness, target: 'order_id, statuss'}")},
        (f"{ORDERS_YML}:2", "statuss", "did you mean 'status'?"),
        3,
    ),
    Case(
        "sidecar-ri-unknown-table",
        {
            ORDERS_YML: sidecar(
                "{name: r, type: referential_integrity, target: customer_id, "
                "to: marts.customer.customer_id}"
            )
        },
        (f"{ORDERS_YML}:2", "rules[0].to", "does not exist"),
        3,
    ),
    Case(
        "sidecar-ri-unknown-column",
        {
            ORDERS_YML: sidecar(
                "{name: r, type: referential_integrity, target: customer_id, "
                "to: raw.orders.customer}"
            )
        },
        (f"{ORDERS_YML}:2", "rules[0].to", "did you mean 'customer_id'?"),
        3,
    ),
    Case(
        "sidecar-ri-without-column",
        {
            ORDERS_YML: sidecar(
                "{name: r, type: referential_integrity, target: customer_id, to: raw.orders}"
            )
        },
        (f"{ORDERS_YML}:2", "to"),
        3,
    ),
    Case(
        "sidecar-ri-cycle",
        {
            ORDERS_YML: sidecar(
                "{name: r, type: referential_integrity, target: order_id, "
                "to: marts.orders_daily.orders}"
            )
        },
        ("dependency cycle", "clean.orders"),
        3,
    ),
    Case(
        "sidecar-bad-threshold",
        {ORDERS_YML: sidecar("{name: r, type: completeness, target: status, threshold: lots}")},
        (f"{ORDERS_YML}:2", "threshold"),
        3,
    ),
    Case(
        "sidecar-bad-regex",
        {ORDERS_YML: sidecar("{name: r, type: valid_values, target: status, pattern: '[a-'}")},
        (f"{ORDERS_YML}:2", "pattern"),
        3,
    ),
    Case(
        "sidecar-custom-sql-syntax",
        {ORDERS_YML: sidecar("{name: r, type: custom_sql, target: '*', sql: 'select * fro this'}")},
        (f"{ORDERS_YML}:2", "rules[0].sql", "is not SQL"),
        3,
    ),
    Case(
        "sidecar-custom-sql-unknown-table",
        {
            ORDERS_YML: sidecar(
                "{name: r, type: custom_sql, target: '*', "
                "sql: 'select * from this where order_id not in "
                "(select id from marts.nothing)'}"
            )
        },
        (ORDERS_YML, "marts.nothing"),
        1,
    ),
    Case(
        "sidecar-quarantine-on-a-view",
        {
            ORDERS_SQL: header("kind: view"),
            ORDERS_YML: sidecar("{name: r, type: not_null, target: status, on_fail: quarantine}"),
        },
        (f"{ORDERS_YML}:2", "on_fail"),
        3,
    ),
    Case(
        "sidecar-orphan",
        {"models/clean/order.yml": "description: typo'd name\n"},
        ("models/clean/order.yml", "no model beside it", "did you mean orders.yml?"),
        3,
    ),
    Case(
        "sidecar-yaml-extension",
        {"models/clean/orders.yaml": "description: Orders.\n"},
        ("models/clean/orders.yaml", "rename it to orders.yml"),
        3,
    ),
    Case("sidecar-not-utf8", {ORDERS_YML: b"description: caf\xe9\n"}, (ORDERS_YML,), 3),
    Case("sidecar-a-list", {ORDERS_YML: "- description: x\n"}, (ORDERS_YML, "mapping"), 3),
    Case(
        "sidecar-a-directory",
        {"models/clean/orders.yml/keep": "x"},
        (ORDERS_YML,),
        3,
        removed=(ORDERS_YML,),
    ),
    # --- where files are --------------------------------------------------------------------
    Case(
        "place-model-outside-a-zone",
        {"models/orders_all.sql": SELECT},
        ("models/orders_all.sql", "zone folder"),
        3,
    ),
    Case(
        "place-model-in-raw",
        {"models/raw/orders_copy.sql": SELECT},
        ("models/raw/orders_copy.sql", "raw zone"),
        3,
    ),
    Case(
        "place-zone-not-an-identifier",
        {"models/my-marts/orders_x.sql": SELECT},
        ("models/my-marts/orders_x.sql", "identifiers"),
        3,
    ),
    Case(
        "place-name-not-an-identifier",
        {"models/marts/orders-x.sql": SELECT},
        ("models/marts/orders-x.sql", "identifiers"),
        3,
    ),
    Case(
        "place-duplicate-in-subfolder",
        {"models/clean/legacy/orders.sql": SELECT},
        ("models/clean/legacy/orders.sql", "defined twice", ORDERS_SQL),
        3,
    ),
    Case(
        "place-sql-and-python-same-name",
        {"models/clean/orders.py": "def model():\n    pass\n"},
        ("defined twice",),
        3,
    ),
    # --- Python models ----------------------------------------------------------------------
    Case(
        "python-syntax",
        python("def model(clean__orders)\n    return clean__orders\n"),
        ("models/marts/py_model.py:1", "syntax"),
        3,
    ),
    Case(
        "python-import-error",
        python("import no_such_module\n\ndef model():\n    pass\n"),
        ("models/marts/py_model.py:1", "ModuleNotFoundError"),
        1,
    ),
    Case(
        "python-no-model-function",
        python("def build(clean__orders):\n    return clean__orders\n"),
        ("models/marts/py_model.py", "defines a function named `model`"),
        3,
    ),
    Case(
        "python-bad-parameter",
        python("def model(orders):\n    return orders\n"),
        ("models/marts/py_model.py:1", "parameter 'orders' does not name a table"),
        3,
    ),
    Case(
        "python-unknown-table",
        python("def model(clean__order):\n    return clean__order\n"),
        ("models/marts/py_model.py:1", "unknown table 'clean.order'"),
        3,
    ),
    Case(
        "python-raises",
        python("def model(clean__orders):\n    raise ValueError('boom')\n"),
        ("models/marts/py_model.py:2", "ValueError: boom"),
        1,
    ),
    Case(
        "python-returns-dict",
        python("def model(clean__orders):\n    return {'a': 1}\n"),
        ("models/marts/py_model.py", "returned dict, not Arrow"),
        1,
    ),
    Case(
        "python-sys-exit",
        python("import sys\n\ndef model(clean__orders):\n    sys.exit(3)\n"),
        ("models/marts/py_model.py:4", "sys.exit(3)"),
        1,
    ),
    Case(
        "python-exit-at-import",
        python("raise SystemExit('no')\n"),
        ("models/marts/py_model.py:1", "sys.exit('no')"),
        1,
    ),
    Case(
        "python-keyerror",
        python("def model(clean__orders):\n    return {}['x']\n"),
        ("models/marts/py_model.py:2", "KeyError"),
        1,
    ),
    Case(
        "python-not-utf8",
        {"models/marts/py_model.py": b"# caf\xe9\ndef model():\n    pass\n"},
        ("models/marts/py_model.py:1", "not UTF-8"),
        3,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_broken_model_gives_one_located_line(tmp_path: Path, case: Case) -> None:
    root = probe_project(tmp_path / "probe")
    for name in case.removed:
        (root / name).unlink()
    for name, text in case.files.items():
        write(root, name, text)

    outcome = hw(root, "run")

    assert_clean_error(outcome, *case.expect, code=case.code)


def test_braces_inside_a_string_are_the_users_data(tmp_path: Path) -> None:
    root = probe_project(tmp_path / "probe")
    write(
        root, ORDERS_SQL, HEADER + SELECT.replace("ordered_at\n", "ordered_at, '{{ x }}' as note\n")
    )

    outcome = hw(root, "run")

    assert outcome.code == 0, outcome


def test_there_are_enough_model_cases() -> None:
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)
