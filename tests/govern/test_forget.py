"""`headwater forget`: after an erasure and its expiry, no byte of the subject (id, email,
name) is left anywhere under `.headwater` — catalog, lake, warehouse — and every other row is
what it was: raw rows value for value, and each model exactly as a project that never had
the subject builds it. Until expiry the old snapshot still holds the rows (time travel).

The subject is a customer added to the example with a distinctive id, email and name (the
example's own ids are small numbers every file holds by chance, and its names repeat), with
orders, events, a rule's failing sample (a duplicate id) and quarantined records of each kind:
a CSV record (a JSON object of its fields), a JSON line with an unknown field, a CSV line that
could not be split and a truncated JSON line (the last two only recognisable by the value).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from sqlglot import exp
from typer.testing import CliRunner

from headwater.cli.main import app
from headwater.engine import scratch
from headwater.errors import StoreError, UsageError
from headwater.orchestrate import Stores, run
from headwater.orchestrate.expiry import expire
from headwater.orchestrate.forget import Forgotten, forget
from headwater.orchestrate.subjects import ERASED, Recogniser, Subject, Traced, token_regex
from headwater.project import Project, load_project
from tests.conftest import NOW

ID = 830571946
EMAIL = "zelda.quixote-erasure@example.org"
NAME = "Zelda Quixote-Erasure"
OTHER = 17  # a customer of the example with records beside the subject's, kept
RAW = ("raw.customers", "raw.orders", "raw.events")
QUARANTINES = tuple(f"{t}__quarantine" for t in RAW)


def add_subject(root: Path) -> None:
    """The subject's records, added to the example's source files before anything lands;
    and `marts.customer_orders` served, so a data product holds the subject too."""
    with (root / "models" / "marts" / "customer_orders.yml").open("a", encoding="utf-8") as out:
        out.write("serve: true\n")
    with (root / "data" / "customers" / "customers.csv").open("a", encoding="utf-8") as out:
        for _ in range(2):  # twice: the warn rule customers_id_unique samples the id
            out.write(f"{ID},{EMAIL},{NAME},SE,2025-01-02 03:04:05\n")
        out.write(f"x,{EMAIL},{NAME},SE,2025-01-02,extra\n")  # quarantined, without the id
    header = "order_id,customer_id,status,amount,currency,ordered_at,updated_at\n"
    (root / "data" / "orders" / "orders_zz.csv").write_text(
        header
        + f"90000001,{ID},paid,10.00,EUR,2026-10-20 10:00:00,2026-10-20 11:00:00\n"
        + f"90000002,{ID},shipped,20.00,EUR,2026-10-21 10:00:00,2026-10-21 11:00:00\n"
        + f'90000003,{ID},paid,"12,50",EUR,2026-10-22 10:00:00,2026-10-22 11:00:00\n'
        + f"90000004,{ID},paid,1.00,EUR,2026-10-22 10:00:00,2026-10-22 11:00:00,extra\n"
        + f"90000005,{OTHER},paid,2.00,EUR,2026-10-22 10:00:00,2026-10-22 11:00:00,extra\n",
        encoding="utf-8",
    )
    event = '{{"event_id":"{e}","customer_id":{c},"session_id":"szz","event_type":"{t}",'
    (root / "data" / "events" / "events_zz.jsonl").write_text(
        event.format(e="zz01", c=ID, t="page_view")
        + '"page":"/","occurred_at":"2026-10-20T10:00:00Z"}\n'
        + event.format(e="zz02", c=ID, t="purchase")
        + '"page":"/","occurred_at":"2026-10-20T10:05:00Z"}\n'
        + event.format(e="zz03", c=ID, t="page_view")
        + '"page":"/","occurred_at":"2026-10-20T10:06:00Z","debug":true}\n'
        + event.format(e="zz04", c=ID, t="page_view")[:-12]
        + "\n"
        + event.format(e="zz05", c=OTHER, t="page_view")[:-12]
        + "\n",
        encoding="utf-8",
    )


NEEDLES = {
    "id": str(ID).encode(),
    "email": EMAIL.encode(),
    "name": NAME.encode(),
    # what Parquet statistics and manifest bounds keep: the id as 8 bytes, text cut to 16
    "id as int64": struct.pack("<q", ID),
    "email prefix": EMAIL[:15].encode(),
    "name prefix": NAME[:15].encode(),
}


def found_in(folder: Path) -> dict[str, list[str]]:
    """Which needles each file under `folder` holds, byte for byte: needle → files."""
    found: dict[str, list[str]] = {}
    for directory, _, files in os.walk(folder):
        for name in files:
            path = Path(directory, name)
            data = path.read_bytes()
            for needle, raw in NEEDLES.items():
                if raw in data:
                    found.setdefault(needle, []).append(str(path.relative_to(folder)))
    return found


def lake_rows(stores: Stores, table: str) -> list[tuple[Any, ...]]:
    """Every row of a lake table's current snapshot, every column, in a stable order."""
    rows = []
    for path in stores.lake.files(table):
        for row in pq.read_table(path).to_pylist():
            rows.append(tuple(sorted((k, repr(v)) for k, v in row.items())))
    return sorted(rows)


def model_rows(stores: Stores, project: Project) -> dict[str, list[tuple[Any, ...]]]:
    """Every model's rows as its view shows them, sorted."""
    out = {}
    for name in project.models:
        rows = stores.engine.rows(exp.select(exp.Star()).from_(exp.to_table(name)))
        out[name] = sorted(rows, key=repr)
    return out


def subjects_row(row: tuple[Any, ...]) -> bool:
    """A raw row of the subject, or a quarantined record of theirs, as this test knows it."""
    fields = dict(row)
    record = fields.get("_hw_record", "")
    return fields.get("customer_id") == repr(ID) or str(ID) in record or EMAIL in record


@dataclass
class Erased:
    """The example with the subject, forgotten (grace 7 days) and expired 8 days later; and
    the example without the subject, as the models' reference."""

    root: Path
    before: dict[str, list[tuple[Any, ...]]]
    after: dict[str, list[tuple[Any, ...]]]
    models: dict[str, list[tuple[Any, ...]]]
    control: dict[str, list[tuple[Any, ...]]]
    found_before: dict[str, list[str]]
    found_after: dict[str, list[str]]
    forgotten: Forgotten
    old_snapshot_rows: int  # rows of the subject still in the old snapshot before expiry
    gone_after_expiry: bool  # that snapshot is unreadable after expiry
    landed_again: int  # rows a run after the erasure landed
    erasures: list[Any]
    audit: list[Any]
    unservable: list[str]  # products a release or prod serves whose snapshot is gone
    again: UsageError | None  # forgetting the subject again


@pytest.fixture(scope="module")
def erased(shop_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Erased:
    base = tmp_path_factory.mktemp("forget")
    root, control_root = base / "shop", base / "control"
    shutil.copytree(shop_template, root)
    shutil.copytree(shop_template, control_root)
    add_subject(root)
    control = _built_models(control_root)
    project = load_project(root)
    stores = Stores.open(project)
    try:
        assert run(project, stores, now=NOW).ok
        tables = RAW + QUARANTINES
        before = {t: lake_rows(stores, t) for t in tables}
        old = stores.lake.current_snapshot_id("raw.customers")
        assert old is not None
        stores.engine.execute("CHECKPOINT")
        found_before = found_in(root / ".headwater")
        subject = Subject("customer_id", str(ID))
        forgotten = forget(
            project, stores, [subject], now=NOW, reason=f"asked by {EMAIL}", grace_s=7 * 86400
        )
        old_rows = _subject_rows_at(stores, "raw.customers", old)
        landed = sum(x.rows for x in run(project, stores, now=NOW).landed)
        expire(project, stores, now=NOW + timedelta(days=8))
        try:
            stores.lake.snapshot_files("raw.customers", old)
            gone = False
        except StoreError:
            gone = True
        after = {t: lake_rows(stores, t) for t in tables}
        models = model_rows(stores, project)
        erasures = stores.catalog.erasures()
        audit = stores.catalog.audited(actions=["forget"])
        unservable = _unservable(stores)
        try:
            forget(project, stores, [subject], now=NOW)
            again = None
        except UsageError as err:
            again = err
    finally:
        stores.close()
    return Erased(
        root,
        before,
        after,
        models,
        control,
        found_before,
        found_in(root / ".headwater"),
        forgotten,
        old_rows,
        gone,
        landed,
        erasures,
        audit,
        unservable,
        again,
    )


def _built_models(root: Path) -> dict[str, list[tuple[Any, ...]]]:
    project = load_project(root)
    stores = Stores.open(project)
    try:
        assert run(project, stores, now=NOW).ok
        return model_rows(stores, project)
    finally:
        stores.close()


def _unservable(stores: Stores) -> list[str]:
    """The products prod or a release serves whose snapshot cannot be read."""
    catalog = stores.catalog
    served = [p for p in catalog.served("prod").values() if p is not None]
    for release_id, _, _ in catalog.release_heads():
        served += [p for p in catalog.released_products(release_id).values() if p is not None]
    out = []
    for product in served:
        try:
            stores.lake.snapshot_files(product.product, product.snapshot_id)
        except StoreError:
            out.append(f"{product.name} {product.data_key}")
    assert served
    return out


def _subject_rows_at(stores: Stores, table: str, snapshot_id: int) -> int:
    rows = [
        r
        for f in stores.lake.snapshot_files(table, snapshot_id)
        for r in pq.read_table(f).to_pylist()
    ]
    return sum(r["customer_id"] == ID for r in rows)


# ---- the acceptance: nothing of the subject is left, everything else is unchanged ----------


def test_no_byte_of_the_subject_is_left_under_headwater(erased: Erased) -> None:
    # the test has power: before, the subject was in the catalog, the warehouse and the lake
    # (the id as text: in quarantined records and a rule's failing sample; elsewhere it is a
    # number, stored as bytes the "id as int64" needle looks for)
    before = erased.found_before
    for needle in ("id", "email", "name"):
        assert any(p.startswith("lake/raw/") for p in before[needle]), (needle, before)
    for needle in ("email", "name"):
        assert "warehouse.duckdb" in before[needle], (needle, before)
    assert any(p.startswith("catalog.db") for p in before["id"]), before
    # a data product held it: its Parquet statistics keep the id as 8 bytes (the largest)
    assert any(p.startswith("lake/products/") for p in before["id as int64"]), before
    assert erased.found_after == {}, erased.found_after


def test_every_other_raw_row_and_record_is_unchanged(erased: Erased) -> None:
    for table, rows in erased.before.items():
        kept = [r for r in rows if not subjects_row(r)]
        assert len(kept) < len(rows), f"{table} held none of the subject's rows"
        assert erased.after[table] == kept, table
    # the other customer's records beside the subject's (unreadable ones too) stay
    assert sum(str(OTHER) in dict(r)["_hw_record"] for r in erased.after["raw.orders__quarantine"])
    assert any('"zz05"' in dict(r)["_hw_record"] for r in erased.after["raw.events__quarantine"])


def test_every_model_is_as_if_the_subject_had_never_been(erased: Erased) -> None:
    assert erased.models.keys() == erased.control.keys()
    for name, rows in erased.control.items():
        assert erased.models[name] == rows, name
    assert set(erased.forgotten.rebuilt) == set(erased.models)
    # the product of the data the first run published held the subject: rewritten, and
    # every product prod and the releases serve is still there
    assert any(t.startswith("products.marts__customer_orders") for t in erased.forgotten.removed)
    assert erased.unservable == []


def test_the_old_snapshot_holds_the_rows_until_it_expires(erased: Erased) -> None:
    assert erased.forgotten.expire_after == NOW + timedelta(days=7)
    assert erased.old_snapshot_rows == 2  # time travel still reads them within the grace
    assert erased.gone_after_expiry


def test_the_erasure_is_recorded_and_audited_without_the_value(erased: Erased) -> None:
    [erasure] = erased.erasures
    assert erasure.subject_key == "customer_id"
    assert erasure.value_sha256 == (hashlib.sha256(str(ID).encode()).hexdigest(),)
    assert erasure.done_at == NOW + timedelta(days=8)
    assert erasure.tables["raw.customers"] == 2 and erasure.tables["raw.orders"] == 2
    assert erasure.tables["raw.orders__quarantine"] == 2
    assert erasure.tables["raw.events__quarantine"] == 2
    assert erasure.reason == f"asked by {ERASED}"  # the reason quoted the email
    forgot = [a for a in erased.audit if a.subject == "customer_id"]
    assert [a.detail["stage"] for a in forgot] == ["expire", "erase"]  # newest first
    forgot = forgot[1:]
    assert forgot[0].status == 0
    detail = json.dumps(forgot[0].detail)
    assert str(ID) not in detail and EMAIL not in detail and NAME not in detail
    assert forgot[0].detail["sha256"] == list(erasure.value_sha256)
    assert forgot[0].detail["tables"]["raw.customers"] == 2


def test_a_run_after_the_erasure_lands_nothing_again(erased: Erased) -> None:
    # the erasure's commits carry the connector's checkpoint: the files are not read again
    assert erased.landed_again == 0


def test_forgetting_again_finds_nothing_and_says_where_it_looked(erased: Erased) -> None:
    assert erased.again is not None and erased.again.exit_code == 2
    for name in ("raw.customers.customer_id", "raw.orders.customer_id", "raw.events__quarantine"):
        assert name in erased.again.message


# ---- the command ------------------------------------------------------------------------


def hw_forget(root: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["forget", *args, "-p", str(root)], env={"COLUMNS": "200"})
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def ran(shop_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The example with the subject after one run (the command's tests share it)."""
    root = tmp_path_factory.mktemp("forget-cli") / "shop"
    shutil.copytree(shop_template, root)
    add_subject(root)
    _built_models(root)
    yield root


@pytest.mark.parametrize(
    ("subject", "said"),
    [
        ("customer_idx=42", ["customer_idx", "did you mean 'customer_id'", "raw.customers"]),
        (
            "customer_id=424242424",
            ["no row holds it", "raw.customers.customer_id", "raw.orders__quarantine"],
        ),
        ("customer_id=forty-two", ["fits the type", "raw.customers (BIGINT)"]),
        ("customer_id", ["is not KEY=VALUE", "--subject customer_id=42"]),
    ],
)
def test_a_subject_that_matches_nothing_is_a_clear_error(
    ran: Path, subject: str, said: list[str]
) -> None:
    code, output = hw_forget(ran, "--subject", subject)
    assert code == 2, output
    flat = " ".join(output.split())
    for text in said:
        assert text in flat, (text, output)
    assert "Traceback" not in output


def test_dry_run_then_forget_with_no_grace(ran: Path) -> None:
    code, output = hw_forget(ran, "--subject", f"customer_id={ID}", "--dry-run", "--format", "json")
    assert code == 0, output
    preview = json.loads(output)["forgotten"]
    assert preview["dry_run"] and preview["removed"]["raw.customers"] == 2
    assert any(t.startswith("products.marts__customer_orders") for t in preview["removed"])
    assert "marts.funnel_daily" in preview["rebuilt"]  # downstream of what reads raw.events
    assert found_in(ran / ".headwater").get("email")  # nothing was changed

    code, output = hw_forget(ran, "--subject", f"customer_id={ID}", "--grace", "0")
    assert code == 0, output
    flat = " ".join(output.split())
    assert "removed" in flat and "expired erasure(s) 1" in flat
    assert str(ID) not in output and EMAIL not in output
    assert found_in(ran / ".headwater") == {}

    code, output = hw_forget(ran, "--expire")
    assert code == 0 and "no erasure is due" in output


def test_the_command_is_registered() -> None:
    result = CliRunner().invoke(app, ["forget", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--subject" in result.output


# ---- recognising the subject's data --------------------------------------------------------


def traced(**types: str) -> Traced:
    return Traced(Subject("customer_id", "42"), "42", types or {"raw.orders": "bigint"}, {EMAIL})


@pytest.mark.parametrize(
    ("record", "theirs"),
    [
        ('{"order_id":"5","customer_id":"42","amount":"12,50"}', True),  # a CSV record
        ('{"order_id":"42","customer_id":"7","amount":"42"}', False),  # 42, but not the key
        ('{"customer_id": 42, "debug": true}', True),  # a JSON line
        ('{"customer_id": " 42 "}', True),  # typed as the key: spaces do not matter
        ('{"customer_id": "420"}', False),
        ('{"customer_id": null, "email": "ZELDA.QUIXOTE-ERASURE@example.org"}', True),
        ('{"customer_id": null, "amount": "42"}', False),  # no key: only identifying values
        ("42,broken,line,with,too,many", True),  # not JSON: the value as a token
        ('{"customer_id":42,"event_type":"page_vi', True),  # truncated JSON
        ("420,broken,line", False),
        ("order 4.42 and x42", False),
        ("1,7,paid,42.5", False),
        (f"lost record of {EMAIL}", True),
    ],
)
def test_quarantined_records_of_the_subject_are_recognised(record: str, theirs: bool) -> None:
    recogniser = Recogniser([traced()])
    matched = recogniser.quarantined("raw.orders")
    one = exp.select(exp.Placeholder(this="r").as_("_hw_record"))
    query = exp.select(matched).from_(one.subquery())
    engine = scratch()
    try:
        [(found,)] = engine.rows(query, {**recogniser.params(query), "r": record})
    finally:
        engine.close()
    assert bool(found) is theirs


@pytest.mark.parametrize(
    "text", ["id 42,", '"42"', "42", "(42)", "420", "x42", "4.42", "42.5", "42. done", "a-42"]
)
def test_a_token_is_the_same_in_sql_and_in_python(text: str) -> None:
    import re

    engine = scratch()
    try:
        [(in_sql,)] = engine.rows(
            "SELECT regexp_matches($t, $p)", {"t": text, "p": token_regex("42")}
        )
    finally:
        engine.close()
    in_python = Recogniser([traced()]).redact(text) != text
    assert in_sql == in_python == bool(re.search(token_regex("42"), text))


def test_text_is_redacted_and_json_rows_of_the_subject_dropped() -> None:
    recogniser = Recogniser([traced()], carriers={"cust"})
    samples = json.dumps([{"customer_id": 42, "copies": 2}, {"customer_id": 7, "copies": 2}])
    assert json.loads(recogniser.redact(samples)) == [{"customer_id": 7, "copies": 2}]
    detail = json.dumps({"filters": {"cust": "42"}, "rows": 42, "note": f"mail {EMAIL} now"})
    assert json.loads(recogniser.redact(detail)) == {
        "filters": ERASED,
        "rows": 42,  # a count that happens to be 42 is not the subject
        "note": f"mail {ERASED} now",
    }
    assert recogniser.redact("failed at 10:42:00 for customer 42.") == (
        f"failed at 10:{ERASED}:00 for customer {ERASED}."
    )
    assert recogniser.redact("nothing here: 420 rows") == "nothing here: 420 rows"


# ---- rewriting the stores ------------------------------------------------------------------


def test_a_compacted_warehouse_keeps_everything_but_the_deleted_bytes(tmp_path: Path) -> None:
    from headwater.engine.duckdb import DuckDBEngine

    path = tmp_path / "warehouse.duckdb"
    engine = DuckDBEngine(path)
    engine.execute("CREATE SCHEMA hw_marts")
    engine.execute(
        "CREATE TABLE hw_marts.people AS SELECT range AS id, 'p' || range AS name FROM range(5000)"
    )
    engine.execute(f"INSERT INTO hw_marts.people VALUES ({ID}, '{EMAIL}')")
    engine.execute("CREATE VIEW hw_marts.shown AS SELECT * FROM hw_marts.people")
    engine.execute("COMMENT ON VIEW hw_marts.shown IS 'snapshot 7'")
    engine.execute("CHECKPOINT")
    engine.execute(f"DELETE FROM hw_marts.people WHERE id = {ID}")
    engine.execute("CHECKPOINT")
    assert EMAIL.encode() in path.read_bytes()  # deleted, and still in the file's free blocks
    engine.compact()
    assert EMAIL.encode() not in path.read_bytes()
    assert engine.rows("SELECT count(*), sum(id) FROM hw_marts.shown") == [(5000, 12497500)]
    stored = engine.stored("hw_marts.shown")
    assert stored is not None and stored.comment == "snapshot 7"
    assert not Path(f"{path}.compact").exists()
    engine.close()


def test_the_online_store_is_compacted(tmp_path: Path) -> None:
    import pyarrow as pa

    from headwater.change.online import Held, SqliteOnline

    path = tmp_path / "online.db"
    store = SqliteOnline(path)
    held = Held(
        "prod", "customer", "marts.c", "products.c", 1, ("customer_id",), ("email",), "", 0, ""
    )
    records = [f'[0, ["{EMAIL}"]]'] + [f'[0, ["person{i}@example.com"]]' for i in range(2000)]
    keys = [str(ID)] + [str(i) for i in range(2000)]
    store.replace(held, [pa.record_batch({"_hw_key": keys, "_hw_record": records})])
    # refreshed without the subject: the state replaced is deleted, its pages only freed
    store.replace(held, [pa.record_batch({"_hw_key": keys[1:], "_hw_record": records[1:]})])
    # its write-ahead log still holds the pages as first written (and where SQLite is built
    # without secure_delete, so does the file's free space)
    assert EMAIL.encode() in found_bytes(path)
    store.compact()
    assert EMAIL.encode() not in found_bytes(path)
    assert store.get("prod", "customer", ["7"])["7"] is not None
    store.close()


def found_bytes(path: Path) -> bytes:
    """A SQLite database's bytes with its write-ahead log's."""
    log = path.with_name(path.name + "-wal")
    return path.read_bytes() + (log.read_bytes() if log.exists() else b"")
