"""Policies as every read enforces them: tags that follow lineage, masks built into the query,
restricted columns refused, `headwater sql --role` and its exports, the public-model gate,
the audit log, and policies.yml's bad input named by file and line."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from headwater.contracts.policies import Mask
from headwater.govern.gate import leaks
from headwater.govern.masking import masked, project_salt
from headwater.govern.pii import project_tags
from headwater.project import load_project
from tests.badinput.harness import assert_clean_error, hw, mentions, write

POLICIES = """\
masks:
  email: email
  name: restricted
roles:
  analyst:
    grants: ["raw.*", "clean.*", "marts.*"]
    masks: {tag:date_of_birth: year}
    rows: {clean.customers: "country <> 'DE'"}
  support:
    grants: ["clean.customers"]
    unmask: [name]
    masks: {clean.customers.country: redact}
  hasher: {grants: ["clean.*"], masks: {tag:email: hash}}
  admin: {grants: ["*"], unmask: ["*"]}
"""
# models below the example's customers: what a hash, a count and a rename do to a tag
MODELS = {
    "models/marts/contacts.sql": "select customer_id, email as contact, sha256(email) as "
    "contact_key, right(email, 4) as tail, country from clean.customers",
    "models/marts/emails_by_country.sql": "select country, count(distinct email) as emails, "
    "max(email) as last_email from clean.customers group by country",
    "models/marts/scrubbed.sql": "select customer_id, full_name as shown_name from clean.customers",
    "models/marts/scrubbed.yml": "columns:\n  shown_name: {pii: none}\n",
}


@pytest.fixture(scope="module")
def governed(shop_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The example with policies.yml and the models above, run once."""
    root = tmp_path_factory.mktemp("governed") / "shop"
    shutil.copytree(shop_template, root)
    write(root, "policies.yml", POLICIES)
    for path, text in MODELS.items():
        write(root, path, text)
    outcome = hw(root, "run")
    assert outcome.code == 0, outcome
    yield root


def customers(root: Path) -> list[dict[str, object]]:
    """The customers as the warehouse holds them (the owner's view)."""
    with duckdb.connect(str(root / ".headwater" / "warehouse.duckdb"), read_only=True) as db:
        cursor = db.execute("select * from clean.customers order by customer_id")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def email_mask(email: object) -> str | None:
    """What the email mask shows of an address: its domain, or **** for no address."""
    if email is None:
        return None
    return "****" + str(email)[str(email).index("@") :] if "@" in str(email) else "****"


def sql(root: Path, query: str, *args: str) -> list[dict[str, object]]:
    outcome = hw(root, "sql", query, "--format", "json", "--limit", "10000", *args)
    assert outcome.code == 0, outcome
    return list(json.loads(outcome.output))


# ---- tags follow lineage ------------------------------------------------------------------


def test_tags_follow_lineage_and_a_hash_or_a_count_takes_identity_away(governed: Path) -> None:
    project = load_project(governed)
    tags = project_tags(project)
    contacts = tags.of("marts.contacts", ["customer_id", "contact", "contact_key", "tail"])
    assert contacts["contact"].tag == "email"
    assert contacts["contact"].shown_path() == (
        "raw.customers.email → clean.customers.email → marts.contacts.contact"
    )
    assert contacts["contact_key"].tag == "pseudonymous"
    assert contacts["tail"].tag == "pseudonymous"
    assert "customer_id" not in contacts
    by_country = tags.of("marts.emails_by_country", ["country", "emails", "last_email"])
    assert "emails" not in by_country  # count(distinct email): no identity left
    assert by_country["last_email"].tag == "email"  # max() returns one person's email
    assert "shown_name" not in tags.of("marts.scrubbed", ["shown_name"])  # pii: none


def test_lineage_tags_explains_each_step(governed: Path) -> None:
    outcome = hw(governed, "lineage", "marts.contacts.contact_key", "--tags", "--format", "json")
    assert outcome.code == 0, outcome
    explained = json.loads(outcome.output)
    assert explained["tag"] == "pseudonymous"
    [upstream] = explained["upstream"]
    assert upstream["column"] == "clean.customers.email"
    assert upstream["effect"] == "pseudonymous" and "SHA256" in upstream["via"]
    assert upstream["upstream"][0]["how"] == "declared in contracts/customers.yml"
    shown = hw(governed, "lineage", "marts.emails_by_country.emails", "--tags")
    assert mentions(shown, "no PII") and mentions(shown, "dropped by COUNT(DISTINCT")


# ---- masks --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mask", "value", "kind", "shown"),
    [
        (Mask.EMAIL, "ada.lovelace@example.com", "text", "****@example.com"),
        (Mask.PARTIAL, "+491701234567", "text", "*********4567"),
        (Mask.PARTIAL, "abcdef", "text", "****ef"),  # a third of it at most
        (Mask.REDACT, "secret", "text", "****"),
        (Mask.NULL, "secret", "text", None),
        (Mask.YEAR, "1987-03-14", "date", "1987"),
        (Mask.DEFAULT, "42", "number", "0"),
        (Mask.DEFAULT, "x", "text", ""),
    ],
)
def test_each_mask_shows_what_it_promises(
    mask: Mask, value: str, kind: str, shown: str | None
) -> None:
    cast = "date" if kind == "date" else "varchar"
    expression = masked("v", mask, salt="s", kind=kind).sql(dialect="duckdb")
    query = f"select {expression} from (select cast(? as {cast}) as v)"
    assert duckdb.execute(query, [value]).fetchone() == (shown,)
    assert duckdb.execute(f"select {expression} from (select null as v)").fetchone() == (None,)


def test_the_hash_mask_is_salted_per_project_and_stable(shop: Path, tmp_path: Path) -> None:
    salt = project_salt(load_project(shop))
    assert len(salt) == 64 and project_salt(load_project(shop)) == salt
    assert (shop / ".headwater" / "salt").stat().st_mode & 0o077 == 0
    other = tmp_path / "other"
    shutil.copytree(shop, other, ignore=shutil.ignore_patterns(".headwater"))
    assert project_salt(load_project(other)) != salt
    expression = masked("v", Mask.HASH, salt=salt).sql(dialect="duckdb")
    [(hashed,)] = duckdb.execute(f"select {expression} from (select 'a@b.c' as v)").fetchall()
    assert hashed == hashlib.sha256((salt + "a@b.c").encode()).hexdigest()


def test_the_salt_comes_from_a_secret_when_policies_name_one(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(shop, "policies.yml", "salt: ${HW_TEST_SALT}\nroles: {}\n")
    monkeypatch.setenv("HW_TEST_SALT", "pepper")
    assert project_salt(load_project(shop)) == "pepper"
    assert not (shop / ".headwater" / "salt").exists()


# ---- headwater sql --role -----------------------------------------------------------------


def test_a_role_reads_masked_values_of_its_rows_only(governed: Path) -> None:
    truth = customers(governed)
    seen = sql(governed, "select * from clean.customers order by customer_id", "--role", "analyst")
    assert [r["customer_id"] for r in seen] == [
        r["customer_id"] for r in truth if r["country"] != "DE"
    ]
    assert "full_name" not in seen[0]  # restricted: left out of select *
    by_id = {r["customer_id"]: r for r in truth}
    assert all(row["email"] == email_mask(by_id[row["customer_id"]]["email"]) for row in seen)
    admin = sql(governed, "select * from clean.customers order by customer_id", "--role", "admin")
    assert [r["email"] for r in admin] == [r["email"] for r in truth]


def test_a_role_with_the_grant_sees_a_restricted_column_and_column_masks_apply(
    governed: Path,
) -> None:
    truth = {r["customer_id"]: r for r in customers(governed)}
    seen = sql(
        governed, "select customer_id, full_name, country from clean.customers", "--role", "support"
    )
    assert all(r["full_name"] == truth[r["customer_id"]]["full_name"] for r in seen)
    assert {r["country"] for r in seen} == {"****"}


def test_filters_and_joins_see_only_masked_values(governed: Path) -> None:
    someone = customers(governed)[-1]
    probe = f"select count(*) as n from clean.customers where email = '{someone['email']}'"
    assert sql(governed, probe, "--role", "analyst") == [{"n": 0}]
    assert sql(governed, probe, "--role", "admin") == [{"n": 1}]


@pytest.mark.parametrize(
    ("query", "role", "says", "code"),
    [
        ("select full_name from clean.customers", "analyst", "restricted (PII tag name)", 5),
        ("select * from clean.orders", "support", "may not read clean.orders", 5),
        ("select * from read_csv('data/customers/customers.csv')", "admin", "table function", 2),
        ("select * from 'data/customers/customers.csv'", "admin", "not a table of the project", 2),
        ("select * from information_schema.tables", "admin", "not a table of the project", 2),
        ("delete from clean.customers", "admin", "one SELECT", 2),
        ("select 1; select 2", "admin", "one SELECT", 2),
        ("select 1", "nobody", "no role 'nobody' in policies.yml", 2),
    ],
)
def test_what_a_role_may_not_do_is_refused_by_name(
    governed: Path, query: str, role: str, says: str, code: int
) -> None:
    assert_clean_error(hw(governed, "sql", query, "--role", role), says, code=code)


def test_a_quarantined_record_is_as_restricted_as_its_strictest_field(governed: Path) -> None:
    outcome = hw(
        governed, "sql", "select _hw_record from raw.customers__quarantine", "--role", "analyst"
    )
    assert_clean_error(outcome, "_hw_record is restricted", code=5)
    seen = sql(governed, "select * from raw.customers__quarantine", "--role", "analyst")
    assert seen and all("_hw_record" not in r and "_hw_reason" not in r for r in seen)


def test_an_export_goes_through_the_same_policies(governed: Path, tmp_path: Path) -> None:
    out = tmp_path / "contacts.csv"
    query = "select * from marts.contacts order by customer_id"
    outcome = hw(governed, "sql", query, "--role", "analyst", "--out", str(out))
    assert outcome.code == 0, outcome
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    truth = customers(governed)
    assert len(rows) == len(truth)
    emails = {str(r["email"]) for r in truth}
    assert not emails & {r["contact"] for r in rows}
    assert [r["contact"] for r in rows] == [email_mask(r["email"]) or "" for r in truth]
    for suffix in (".parquet", ".jsonl"):
        target = tmp_path / f"contacts{suffix}"
        assert (
            hw(
                governed,
                "sql",
                "select * from marts.contacts",
                "--role",
                "analyst",
                "--out",
                str(target),
            ).code
            == 0
        )
        assert not any(e.encode() in target.read_bytes() for e in emails)
    assert_clean_error(
        hw(governed, "sql", "select 1", "--out", str(tmp_path / "x.xlsx")), ".parquet, .csv", code=2
    )


def test_every_read_is_audited_by_its_shape_not_its_values(governed: Path) -> None:
    someone = str(customers(governed)[0]["email"])
    sql(
        governed,
        f"select count(*) from clean.customers where email = '{someone}'",
        "--role",
        "analyst",
    )
    hw(governed, "sql", "select full_name from clean.customers", "--role", "analyst")
    outcome = hw(governed, "audit", "--action", "sql", "--format", "json")
    assert outcome.code == 0, outcome
    entries = json.loads(outcome.output)["entries"]
    refused, read = entries[0], entries[1]
    assert refused["status"] == 5 and refused["role"] == "analyst"
    assert "full_name is restricted" in refused["detail"]["refused"]
    assert read["subject"] == "clean.customers" and read["status"] == 0
    assert read["detail"]["query"].endswith("WHERE email = ?")
    assert read["detail"]["masked"] == {"clean.customers": ["email"]}
    assert someone not in outcome.output
    runs = json.loads(hw(governed, "audit", "--action", "run", "--format", "json").output)
    assert runs["entries"][0]["detail"]["built"]
    assert_clean_error(hw(governed, "audit", "--since", "yesterday-ish"), "--since", code=2)


# ---- the gate -----------------------------------------------------------------------------


def test_a_public_model_that_shows_pii_fails_plan_and_build_naming_the_path(shop: Path) -> None:
    write(
        shop,
        "models/marts/leads.sql",
        "select customer_id, email as contact, sha256(email) as contact_key from clean.customers",
    )
    write(shop, "models/marts/leads.yml", "description: leads\nprivacy: public\n")
    path = "raw.customers.email → clean.customers.email → marts.leads.contact"
    for command in ("plan", "run"):
        outcome = hw(shop, command)
        assert_clean_error(outcome, "models/marts/leads.yml:2", path, "sha256", code=3)
    assert json.loads(hw(shop, "runs", "--format", "json").output) == {"runs": []}  # none ran
    gate = json.loads(hw(shop, "audit", "--action", "gate", "--format", "json").output)
    assert path in gate["entries"][0]["detail"]["refused"]
    write(
        shop,
        "models/marts/leads.sql",
        "select customer_id, sha256(email) as contact_key from clean.customers",
    )
    assert leaks(load_project(shop)) == []
    assert hw(shop, "run").code == 0


def test_pii_none_lets_a_column_through_and_python_models_are_unknown(shop: Path) -> None:
    write(shop, "models/marts/leads.sql", "select customer_id, email from clean.customers")
    write(shop, "models/marts/leads.yml", "privacy: public\ncolumns:\n  email: {pii: none}\n")
    assert leaks(load_project(shop)) == []
    (shop / "models/marts/leads.sql").unlink()
    write(
        shop, "models/marts/leads.py", "def model(clean__customers):\n    return clean__customers\n"
    )
    write(shop, "models/marts/leads.yml", "privacy: public\n")
    [leak] = leaks(load_project(shop))
    assert leak.tag.tag == "unknown" and "lineage cannot follow" in leak.render()


# ---- bad policies.yml ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "roles:\n  r:\n    masks: {clean.customers.email: scramble}\n",
            ["policies.yml:3", "scramble", "hash"],
        ),
        ("masks: {email: blur}\n", ["policies.yml:1", "blur"]),
        (
            "roles:\n  r:\n    masks: {clean.customer.email: hash}\n",
            ["policies.yml:3", "no table 'clean.customer'", "clean.customers"],
        ),
        (
            "roles:\n  r:\n    masks: {raw.customers.emial: hash}\n",
            ["policies.yml:3", "no column 'emial'", "email"],
        ),
        (
            "roles:\n  r:\n    rows: {raw.customers: \"contry = 'DE'\"}\n",
            ["policies.yml:3", "no column 'contry'", "country"],
        ),
        ("roles:\n  r:\n    masks: {email: hash}\n", ["policies.yml", "tag:email"]),
        ("roles: {r: {}}\nanonymous: ghost\n", ["policies.yml:2", "'ghost' is not a role"]),
        ("roles:\n  r: {grant: ['*']}\n", ["policies.yml:2", "unknown field 'grant'", "'grants'"]),
    ],
)
def test_bad_policies_are_refused_naming_file_and_line(
    shop: Path, text: str, says: list[str]
) -> None:
    write(shop, "policies.yml", text)
    assert_clean_error(hw(shop, "plan"), *says, code=3)


def test_the_docs_site_shows_no_range_of_a_column_a_role_masks(
    governed: Path, tmp_path: Path
) -> None:
    assert hw(governed, "docs", "--out", str(tmp_path / "site")).code == 0
    data = (tmp_path / "site" / "catalog.js").read_text(encoding="utf-8")
    payload = json.loads(data[data.index("{") : data.rindex("}") + 1])
    tables = {t["name"]: t for t in payload["tables"]}
    columns = {c["name"]: c for c in tables["clean.customers"]["columns"]}
    assert "min" not in (columns["country"].get("profile") or {})  # support masks it by name
    assert (columns["signed_up_at"].get("profile") or {}).get("min")  # nothing masks it


def test_an_error_as_a_role_shows_neither_the_rewrite_nor_the_salt(governed: Path) -> None:
    outcome = hw(
        governed, "sql", "select cast(email as int) from clean.customers", "--role", "hasher"
    )
    assert outcome.code == 1 and "Conversion Error" in outcome.output
    salt = project_salt(load_project(governed))
    assert salt not in outcome.output and "while running" not in outcome.output
    assert mentions(outcome, "the query ran as role 'hasher'")


def test_an_export_to_a_missing_folder_is_a_clear_error(governed: Path, tmp_path: Path) -> None:
    target = tmp_path / "nowhere" / "x.csv"
    outcome = hw(governed, "sql", "select 1 as x", "--out", str(target))
    assert_clean_error(outcome, "there is no folder", code=2)
    assert not target.parent.exists()
