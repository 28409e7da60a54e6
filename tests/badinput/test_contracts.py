"""Bad input: a contract broken in every plausible way, run from the CLI.

Each case changes the probe project's `contracts/orders.yml` (usually one line of it) and runs
`headwater run`: no traceback, exit 2 (a spec error), and one message naming the file, the
line and the field. The probe contract's lines:

     1 source          6 connector      11-14 columns[1..4]
     2 schema_version  7 primary_key    15 rules:
     3 delivery        8 evolution      16 rules[0]
     4 privacy_level   9 columns:
     5 owner          10 columns[0] (order_id)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.badinput.harness import ORDERS, assert_clean_error, hw, probe_project, write

FILE = "contracts/orders.yml"
LINES = ORDERS.splitlines()


@dataclass(frozen=True)
class Case:
    id: str
    text: str | bytes | None  # None: the contract is a folder
    names: tuple[str, ...]  # what the message must name besides the file
    file: str = FILE


def line(number: int, text: str) -> str:
    """The probe contract with line `number` (1-based) replaced by `text` (several lines may
    replace one; the lines above keep their numbers)."""
    lines = [*LINES]
    lines[number - 1] = text
    return "\n".join(lines) + "\n"


def connector(text: str) -> str:
    return line(6, f"connector: {text}")


def column(text: str) -> str:
    """The probe contract with a sixth column, on line 15 (rules move down by one)."""
    return line(14, f"{LINES[13]}\n  - {text}")


def rule(text: str) -> str:
    return line(16, f"  - {text}")


def at(number: int, *names: str) -> tuple[str, ...]:
    return (f"{FILE}:{number}", *names)


# 10**5 values expanded: past the bound, yet harmless in process if the bound regressed
# (the gigabyte bomb runs under a memory limit in tests/contracts/test_hostile_yaml.py)
BOMB = (
    ORDERS
    + "description:\n"
    + "".join(
        f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}" if i else "x"] * 10) + "]\n" for i in range(6)
    )
)
HTTP = "{kind: http, url: 'https://api.example.com/orders', "
PG = "{kind: postgres, url: 'postgresql://u@h/db', "

CASES = [
    # the file itself
    Case(
        "empty_file",
        "",
        at(1, "required fields are missing: source, schema_version, delivery, privacy_level"),
    ),
    Case(
        "three_fields_missing_at_once",
        "\n".join(
            x for x in LINES if not x.startswith(("source:", "delivery:", "owner:", "privacy"))
        )
        + "\n",
        at(1, "required fields are missing: source, delivery, privacy_level", "add `source:`"),
    ),
    Case("a_list", "- source\n- orders\n", at(1, "expected a mapping")),
    Case("a_scalar", "orders\n", at(1, "expected a mapping")),
    Case("a_folder", None, (FILE, "is a folder")),
    Case("non_utf8", ORDERS.encode() + b"description: \xff\xfe\n", at(17, "not UTF-8")),
    Case("latin1_owner", line(5, "owner: ").encode() + b"Jos\xe9\n", at(17, "0xe9")),
    Case("binary_junk", b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\xff", at(1, "UTF-8")),
    Case("nul_byte", line(5, "owner: a\x00b"), at(5, "invalid YAML")),
    Case("tab_indent", line(10, "\t- {name: order_id}"), at(10, "invalid YAML")),
    Case("unclosed_flow", line(10, "  - {name: order_id, type: bigint"), ("invalid YAML",)),
    Case("duplicate_key", line(5, "delivery: stream"), at(5, "duplicate field 'delivery'")),
    Case("duplicate_column_key", column("{name: a, name: b}"), at(15, "duplicate field 'name'")),
    Case("alias_bomb", BOMB, (FILE, "aliases expand")),
    Case("alias_loop", line(5, "owner: &o [*o]"), at(5, "aliases expand")),
    Case("python_tag", line(5, "owner: !!python/name:os.system ''"), at(5, "invalid YAML")),
    Case(
        "bad_file_name",
        ORDERS,
        ("contracts/my-orders.yml", "identifier"),
        "contracts/my-orders.yml",
    ),
    # top-level fields
    Case("source_missing", line(1, "# no source"), (FILE, "source", "required field")),
    Case("source_null", line(1, "source:"), at(1, "source")),
    Case("source_list", line(1, "source: [a, b]"), at(1, "source")),
    Case("schema_version_map", line(2, "schema_version: {v: 1}"), at(2, "schema_version")),
    Case("delivery_misspelt", line(3, "delivery: batches"), at(3, "delivery", "'batch'")),
    Case("delivery_null", line(3, "delivery:"), at(3, "delivery", "null is not valid")),
    Case("privacy_unknown", line(4, "privacy_level: secret"), at(4, "privacy_level", "restricted")),
    Case("privacy_number", line(4, "privacy_level: 3"), at(4, "privacy_level")),
    Case("owner_list", line(5, "owner: [a, b]"), at(5, "owner")),
    Case("misspelt_key", line(5, "ownr: data@example.com"), at(5, "did you mean 'owner'")),
    Case("evolution_misspelt", line(8, "evolution: evolv"), at(8, "evolution", "'evolve'")),
    Case("evolution_list", line(8, "evolution: [evolve]"), at(8, "evolution")),
    Case("description_map", line(5, "description: {a: 1}"), at(5, "description")),
    # columns
    Case(
        "columns_a_map",
        "\n".join([*LINES[:8], "columns: {order_id: bigint}", *LINES[14:]]),
        at(9, "columns"),
    ),
    Case(
        "columns_text", "\n".join([*LINES[:8], "columns: order_id", *LINES[14:]]), at(9, "columns")
    ),
    Case("column_a_string", column("order_total"), at(15, "columns[5]")),
    Case("column_without_name", column("{type: bigint}"), at(15, "columns[5].name")),
    Case("column_name_null", column("{name: null}"), at(15, "columns[5].name")),
    Case("column_name_space", column("{name: order total}"), at(15, "columns[5].name")),
    Case("column_name_digit", column("{name: 1st}"), at(15, "columns[5].name")),
    Case("column_twice", column("{name: status}"), at(15, "columns[5].name", "declared twice")),
    Case("column_twice_case", column("{name: Status}"), at(15, "columns[5].name", "in case")),
    Case("column_metadata", column("{name: _hw_source}"), at(15, "columns[5].name", "_hw_")),
    Case("column_metadata_case", column("{name: _HW_Late}"), at(15, "columns[5].name", "_hw_")),
    Case(
        "type_misspelt", column("{name: n, type: bigintt}"), at(15, "columns[5].type", "'bigint'")
    ),
    Case("type_varchar_abc", column("{name: n, type: varchar(abc)}"), at(15, "columns[5].type")),
    Case("type_decimal_wide", column("{name: n, type: 'decimal(50,2)'}"), at(15, "1 to 38")),
    Case(
        "type_decimal_scale", column("{name: n, type: 'decimal(4,6)'}"), at(15, "columns[5].type")
    ),
    Case("type_decimal_unquoted", column("{name: n, type: decimal(50,2)}"), at(15, "columns[5]")),
    Case("type_bigint_size", column("{name: n, type: bigint(5)}"), at(15, "columns[5].type")),
    Case("type_number", column("{name: n, type: 5}"), at(15, "columns[5].type")),
    Case("type_empty", column("{name: n, type: ''}"), at(15, "columns[5].type")),
    Case("nullable_word", column("{name: n, nullable: maybe}"), at(15, "columns[5].nullable")),
    Case("column_key_misspelt", column("{name: n, nulable: true}"), at(15, "'nullable'")),
    Case("pii_list", column("{name: n, pii: [email]}"), at(15, "columns[5].pii")),
    # primary key
    Case(
        "primary_key_unknown", line(7, "primary_key: [order_no]"), at(7, "primary_key", "order_id")
    ),
    Case(
        "primary_key_twice",
        line(7, "primary_key: [order_id, order_id]"),
        at(7, "primary_key[1]", "twice"),
    ),
    Case("source_empty", line(1, "source: ''"), at(1, "source")),
    Case("schema_version_empty", line(2, "schema_version: ''"), at(2, "schema_version")),
    Case("primary_key_text", line(7, "primary_key: order_id"), at(7, "primary_key")),
    Case("primary_key_map", line(7, "primary_key: {a: 1}"), at(7, "primary_key")),
    # watermark
    Case("watermark_varchar", line(8, "watermark: status - interval 1 hour"), at(8, "watermark")),
    Case("watermark_unknown", line(8, "watermark: shipped_at"), at(8, "watermark", "shipped_at")),
    Case("watermark_shape", line(8, "watermark: ordered_at plus 2"), at(8, "watermark")),
    Case("watermark_unit", line(8, "watermark: ordered_at - interval 2 eons"), at(8, "watermark")),
    Case("watermark_number", line(8, "watermark: 5"), at(8, "watermark")),
    Case("watermark_query", line(8, "watermark: select 1"), at(8, "watermark")),
    # connector
    Case("connector_missing", line(6, "# none"), at(1, "connector", "required field")),
    Case("connector_text", line(6, "connector: files"), at(6, "connector")),
    Case("connector_no_kind", connector("{path: x.csv}"), at(6, "connector.kind")),
    Case("connector_kind_unknown", connector("{kind: ftp, path: x}"), at(6, "connector.kind")),
    Case("connector_kind_misspelt", connector("{kind: file, path: x}"), at(6, "'files'")),
    Case("files_no_path", connector("{kind: files}"), at(6, "connector.path")),
    Case(
        "files_format", connector("{kind: files, path: x, format: xlsx}"), at(6, "connector.format")
    ),
    Case(
        "files_header",
        connector("{kind: files, path: x, header: maybe}"),
        at(6, "connector.header"),
    ),
    Case(
        "files_options_list",
        connector("{kind: files, path: x, storage_options: [a]}"),
        at(6, "storage_options"),
    ),
    Case("files_key_misspelt", connector("{kind: files, pth: x}"), at(6, "did you mean 'path'")),
    Case("http_no_url", connector("{kind: http}"), at(6, "connector.url")),
    Case("http_key_misspelt", connector(HTTP + "recrds: data}"), at(6, "did you mean 'records'")),
    Case("postgres_key_misspelt", connector(PG + "tabel: t}"), at(6, "did you mean 'table'")),
    Case("http_auth_kind", connector(HTTP + "auth: {kind: digest}}"), at(6, "connector.auth.kind")),
    Case("http_bearer_no_token", connector(HTTP + "auth: {kind: bearer}}"), at(6, "auth.token")),
    Case(
        "http_basic_no_password",
        connector(HTTP + "auth: {kind: basic, username: u}}"),
        at(6, "auth.password"),
    ),
    Case(
        "http_api_key_location",
        connector(HTTP + "auth: {kind: api_key, name: k, value: v, location: body}}"),
        at(6, "auth.location"),
    ),
    Case(
        "http_oauth2_no_url",
        connector(HTTP + "auth: {kind: oauth2, client_id: a, client_secret: b}}"),
        at(6, "auth.token_url"),
    ),
    Case(
        "http_pagination_kind",
        connector(HTTP + "pagination: {kind: pages}}"),
        at(6, "pagination.kind"),
    ),
    Case(
        "http_offset_limit_zero",
        connector(HTTP + "pagination: {kind: offset, limit: 0}}"),
        at(6, "pagination.limit"),
    ),
    Case(
        "http_incremental_no_param",
        connector(HTTP + "incremental: {column: ordered_at}}"),
        at(6, "param"),
    ),
    Case(
        "http_incremental_lag",
        connector(HTTP + "incremental: {column: c, param: p, lag: soon}}"),
        at(6, "incremental.lag"),
    ),
    Case("http_rate_negative", connector(HTTP + "rate_limit: -1}"), at(6, "connector.rate_limit")),
    Case("http_retries_negative", connector(HTTP + "retries: -1}"), at(6, "connector.retries")),
    Case("http_timeout_word", connector(HTTP + "timeout: soon}"), at(6, "connector.timeout")),
    Case("http_params_list", connector(HTTP + "params: [a]}"), at(6, "connector.params")),
    Case(
        "http_headers_nested", connector(HTTP + "headers: {X: {a: 1}}}"), at(6, "connector.headers")
    ),
    Case("postgres_no_table", connector(PG[:-2] + "}"), at(6, "connector", "table")),
    Case(
        "postgres_table_and_query",
        connector(PG + "table: t, query: select 1}"),
        at(6, "exactly one"),
    ),
    Case(
        "postgres_batch_rows_zero", connector(PG + "table: t, batch_rows: 0}"), at(6, "batch_rows")
    ),
    Case("sql_no_url", connector("{kind: sql, table: t}"), at(6, "connector.url")),
    # rules
    Case("rules_a_map", line(16, "  orders_fresh: {type: freshness}"), at(15, "rules")),
    Case("rule_no_name", rule("{type: not_null, target: order_id}"), at(16, "rules[0].name")),
    Case(
        "rule_name_space",
        rule("{name: my rule, type: not_null, target: order_id}"),
        at(16, "rules[0].name"),
    ),
    Case(
        "rule_name_twice",
        rule(
            "{name: r, type: not_null, target: order_id}\n"
            "  - {name: r, type: not_null, target: status}"
        ),
        at(17, "rules[1].name", "twice"),
    ),
    Case(
        "rule_type_misspelt",
        rule("{name: r, type: uniquenes, target: order_id}"),
        at(16, "rules[0].type", "'uniqueness'"),
    ),
    Case("rule_no_target", rule("{name: r, type: not_null}"), at(16, "rules[0].target")),
    Case(
        "rule_target_empty",
        rule("{name: r, type: not_null, target: ''}"),
        at(16, "rules[0].target", "names no column"),
    ),
    Case(
        "rule_target_star_on_a_column_rule",
        rule("{name: r, type: completeness, target: '*'}"),
        at(16, "rules[0].target", "names no column"),
    ),
    Case(
        "rule_target_only_commas",
        rule("{name: r, type: uniqueness, target: ' , '}"),
        at(16, "rules[0].target"),
    ),
    Case(
        "rule_target_two_columns",
        rule("{name: r, type: valid_values, target: 'status, amount', values: [a]}"),
        at(16, "rules[0].target", "2 columns"),
    ),
    Case(
        "rule_target_column_on_a_table_rule",
        rule("{name: r, type: row_count, target: status, min: 1}"),
        at(16, "rules[0].target", "'*'"),
    ),
    Case(
        "rule_values_on_not_null",
        rule("{name: r, type: not_null, target: order_id, values: [1]}"),
        at(16, "rules[0].values", "valid_values rules only"),
    ),
    Case(
        "rule_pattern_on_uniqueness",
        rule("{name: r, type: uniqueness, target: order_id, pattern: 'x'}"),
        at(16, "rules[0].pattern"),
    ),
    Case(
        "rule_target_unknown",
        rule("{name: r, type: not_null, target: order_no}"),
        at(16, "rules[0].target", "'order_id'"),
    ),
    Case(
        "rule_severity",
        rule("{name: r, type: not_null, target: order_id, severity: fatal}"),
        at(16, "rules[0].severity"),
    ),
    Case(
        "rule_on_fail",
        rule("{name: r, type: not_null, target: order_id, on_fail: explode}"),
        at(16, "rules[0].on_fail"),
    ),
    Case(
        "rule_quarantine_uniqueness",
        rule("{name: r, type: uniqueness, target: order_id, on_fail: quarantine}"),
        at(16, "rules[0]", "quarantine"),
    ),
    Case(
        "completeness_150_percent",
        rule("{name: r, type: completeness, target: status, threshold: 150%}"),
        at(16, "rules[0].threshold", "100%"),
    ),
    Case(
        "completeness_rate_above_one",
        rule("{name: r, type: completeness, target: status, threshold: 1.5}"),
        at(16, "rules[0].threshold"),
    ),
    Case(
        "threshold_negative",
        rule("{name: r, type: uniqueness, target: order_id, threshold: -1}"),
        at(16, "rules[0].threshold", "negative"),
    ),
    Case(
        "threshold_percent_over",
        rule("{name: r, type: uniqueness, target: order_id, threshold: 120%}"),
        at(16, "rules[0].threshold"),
    ),
    Case(
        "threshold_word",
        rule("{name: r, type: uniqueness, target: order_id, threshold: lots}"),
        at(16, "rules[0].threshold"),
    ),
    Case(
        "threshold_boolean",
        rule("{name: r, type: uniqueness, target: order_id, threshold: true}"),
        at(16, "rules[0].threshold"),
    ),
    Case(
        "freshness_no_threshold",
        rule("{name: r, type: freshness, target: ordered_at}"),
        at(16, "rules[0]", "freshness"),
    ),
    Case(
        "freshness_bad_unit",
        rule("{name: r, type: freshness, target: ordered_at, threshold: 2 eons}"),
        at(16, "rules[0].threshold"),
    ),
    Case(
        "valid_values_empty",
        rule("{name: r, type: valid_values, target: status}"),
        at(16, "rules[0]", "valid_values"),
    ),
    Case(
        "valid_values_regex",
        rule("{name: r, type: valid_values, target: status, pattern: '('}"),
        at(16, "rules[0].pattern"),
    ),
    Case(
        "valid_values_min_zero",
        rule("{name: r, type: valid_values, target: amount, min: zero}"),
        at(16, "rules[0].min", "not a number"),
    ),
    Case(
        "valid_values_max_date",
        rule("{name: r, type: valid_values, target: ordered_at, max: soon}"),
        at(16, "rules[0].max", "date"),
    ),
    Case(
        "valid_values_value_not_a_number",
        rule("{name: r, type: valid_values, target: customer_id, values: [10, eleven]}"),
        at(16, "rules[0].values[1]", "'eleven'"),
    ),
    Case(
        "threshold_count_not_whole",
        rule("{name: r, type: uniqueness, target: order_id, threshold: 2.5}"),
        at(16, "rules[0].threshold", "whole"),
    ),
    Case(
        "valid_values_values_text",
        rule("{name: r, type: valid_values, target: status, values: paid}"),
        at(16, "rules[0].values"),
    ),
    Case(
        "valid_values_min_length",
        rule("{name: r, type: valid_values, target: status, min_length: -1}"),
        at(16, "rules[0].min_length"),
    ),
    Case(
        "row_count_min_zero",
        rule("{name: r, type: row_count, target: '*', min: zero}"),
        at(16, "rules[0].min"),
    ),
    Case(
        "row_count_min_above_max",
        rule("{name: r, type: row_count, target: '*', min: 5, max: 2}"),
        at(16, "rules[0]", "above"),
    ),
    Case(
        "row_count_negative",
        rule("{name: r, type: row_count, target: '*', min: -3}"),
        at(16, "rules[0].min"),
    ),
    Case(
        "volume_no_threshold",
        rule("{name: r, type: volume, target: '*'}"),
        at(16, "rules[0]", "volume"),
    ),
    Case(
        "volume_runs_zero",
        rule("{name: r, type: volume, target: '*', threshold: 10%, runs: 0}"),
        at(16, "rules[0].runs"),
    ),
    Case(
        "referential_no_to",
        rule("{name: r, type: referential_integrity, target: customer_id}"),
        at(16, "rules[0]", "`to`"),
    ),
    Case(
        "referential_to_shape",
        rule("{name: r, type: referential_integrity, target: customer_id, to: customers}"),
        at(16, "rules[0].to"),
    ),
    Case(
        "to_on_not_null",
        rule("{name: r, type: not_null, target: order_id, to: a.b.c}"),
        at(16, "rules[0]", "`to`"),
    ),
    Case(
        "custom_sql_none",
        rule("{name: r, type: custom_sql, target: '*'}"),
        at(16, "rules[0]", "sql"),
    ),
    Case(
        "custom_sql_delete",
        rule("{name: r, type: custom_sql, target: '*', sql: delete from this}"),
        at(16, "rules[0].sql"),
    ),
    Case(
        "custom_sql_garbage",
        rule("{name: r, type: custom_sql, target: '*', sql: 'selec * frm'}"),
        at(16, "rules[0].sql"),
    ),
    Case(
        "where_garbage",
        rule("{name: r, type: not_null, target: order_id, where: 'amount >'}"),
        at(16, "rules[0].where"),
    ),
    Case(
        "rule_key_misspelt",
        rule("{name: r, type: uniqueness, target: order_id, treshold: 0}"),
        at(16, "did you mean 'threshold'"),
    ),
    Case("rule_a_string", rule("orders_unique"), at(16, "rules[0]")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_contracts_give_one_located_line(tmp_path: Path, case: Case) -> None:
    root = probe_project(tmp_path / "probe")
    if case.file != FILE:
        (root / FILE).unlink()
    if case.text is None:
        (root / case.file).unlink()
        (root / case.file).mkdir()
    else:
        write(root, case.file, case.text)

    outcome = hw(root, "run")

    assert_clean_error(outcome, case.file, *case.names, code=3)
    assert outcome.output.startswith("error: ") and len(outcome.output) < 600, outcome


def test_there_are_enough_contract_cases() -> None:
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)
