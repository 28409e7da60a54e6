"""The feature store: training sets are point-in-time correct (a value that changed after a
label's time is not seen), the TTL is one rule online and offline (same entity and time →
same value or none, the boundary inclusive both ways), keys of several columns, the online
store refreshed only when the served snapshot (or the view) changed and swapped whole, Redis
as the same store, and bad input named by file and column."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from headwater.change import online
from headwater.change.online import OnlineStore, refresh
from headwater.errors import StoreError, UsageError
from headwater.orchestrate import Stores
from headwater.project import Project, load_project
from headwater.serve import features
from headwater.serve.features import online_features, training_set
from tests.badinput.harness import Outcome, assert_clean_error, csv_contract, write
from tests.change.test_releases import ok

US = timedelta(microseconds=1)
DAY = timedelta(days=1)
JAN = [datetime(2025, 12, 31, tzinfo=UTC) + d * DAY for d in range(32)]  # JAN[5]: 2026-01-05
# customer 1 spends 10 on Jan 1, then 50 on Jan 5; customer 2 spends 7 on Jan 2; customer 3
# (region "x|y\z", which the key encoding must escape) spends 5 on Jan 3
ROWS = """customer_id,region,ts,spend
1,eu,2026-01-01 00:00:00,10
1,eu,2026-01-05 00:00:00,50
2,us,2026-01-02 00:00:00,7
3,x|y\\z,2026-01-03 00:00:00,5
"""
SIDECAR = """features:
  customer_spend: {entity: customer_id, event_time: ts, features: [spend, region], ttl: 2d}
  regional: {entity: [region, customer_id], event_time: ts}
"""


def feature_project(root: Path, settings: str = "") -> Path:
    write(root, "headwater.yml", "name: t\n" + settings)
    columns = {"customer_id": "bigint", "region": "varchar", "ts": "timestamp", "spend": "double"}
    write(root, "contracts/activity.yml", csv_contract("shop.activity", **columns))
    write(root, "data/a.csv", ROWS)
    write(root, "models/clean/activity.sql", "select * from raw.activity\n")
    write(root, "models/clean/activity.yml", SIDECAR)
    ok(root, "run")
    return root


def refreshed(root: Path, env: str = "prod") -> list[str]:
    """What `refresh` (which orchestrate runs after each release) refreshes now."""
    loaded = load_project(root)
    stores = Stores.open(loaded)
    try:
        return refresh(loaded, stores.engine, stores.lake, stores.catalog, env, now=JAN[20])
    finally:
        stores.close()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = feature_project(tmp_path_factory.mktemp("features"))
    assert refreshed(root) == []  # the run refreshed the online store after its release
    return load_project(root)


def entities(rows: list[tuple[Any, ...]], names: tuple[str, ...] = ("customer_id",)) -> pa.Table:
    """An entity table: key column(s), `event_timestamp` (UTC, microseconds), a label."""
    columns = list(zip(*rows, strict=True))
    data = {n: list(c) for n, c in zip(names, columns, strict=False)}
    data["event_timestamp"] = pa.array(columns[len(names)], pa.timestamp("us", tz="UTC"))
    data["label"] = list(columns[len(names) + 1])
    return pa.table(data)


def spend_at(shop: Project, customer: int, at: datetime) -> Any:
    table = training_set(shop, "customer_spend", entities([(customer, at, 0)]))
    return table.column("spend")[0].as_py()


# ---- point in time ------------------------------------------------------------------------


def test_a_feature_that_changes_after_the_label_time_yields_the_earlier_value(
    shop: Project, tmp_path: Path
) -> None:
    write(
        tmp_path,
        "labels.csv",
        "customer_id,event_timestamp,label\n"
        "1,2026-01-02 12:00:00,yes\n"  # after the 10, before the 50: 10
        "1,2025-12-31 00:00:00,no\n"  # before any row of customer 1: NULL
        "2,2026-01-03 00:00:00,yes\n"
        "1,2026-01-05 00:00:00,no\n"  # at the second row's exact time: 50
        "9,2026-01-05 00:00:00,no\n",  # an entity without rows: NULL
    )
    table = training_set(shop, "customer_spend", tmp_path / "labels.csv")
    assert table.column_names == ["customer_id", "event_timestamp", "label", "spend", "region"]
    got = [(r["customer_id"], r["label"], r["spend"], r["region"]) for r in table.to_pylist()]
    assert got == [
        (1, "yes", 10.0, "eu"),
        (1, "no", None, None),
        (2, "yes", 7.0, "us"),
        (1, "no", 50.0, "eu"),
        (9, "no", None, None),
    ]
    # the same written by the engine as Parquet, in the same order
    out = training_set(
        shop, "customer_spend", tmp_path / "labels.csv", out=tmp_path / "set" / "train.parquet"
    )
    assert out == (tmp_path / "set" / "train.parquet").resolve()
    assert pq.read_table(out).to_pylist() == table.to_pylist()


def test_rows_keep_their_order_and_every_column_of_a_parquet_entity_file(
    shop: Project, tmp_path: Path
) -> None:
    rows = [(1 + i % 3, JAN[1] + i * timedelta(hours=7), i) for i in range(200)]
    pq.write_table(entities(rows), tmp_path / "labels.parquet", row_group_size=16)
    table = training_set(shop, "customer_spend", tmp_path / "labels.parquet")
    assert table.column("label").to_pylist() == list(range(200))
    expected = []
    for customer, at, _ in rows:  # the rule, by hand: latest row at or before, within 2 days
        times = {1: [(JAN[1], 10.0), (JAN[5], 50.0)], 2: [(JAN[2], 7.0)], 3: [(JAN[3], 5.0)]}
        seen = [(t, v) for t, v in times[customer] if t <= at]
        expected.append(seen[-1][1] if seen and at - seen[-1][0] <= 2 * DAY else None)
    assert table.column("spend").to_pylist() == expected


# ---- one TTL rule -------------------------------------------------------------------------

# (customer, time) at or after each customer's latest row, where online and offline answer the
# same question; the TTL is 2 days, inclusive
GRID = [
    (1, JAN[5]),  # the latest row's own time
    (1, JAN[7] - US),
    (1, JAN[7]),  # exactly the TTL later: still valid
    (1, JAN[7] + US),  # one microsecond past it: expired
    (1, JAN[30]),
    (2, JAN[4]),
    (2, JAN[4] + US),
    (3, JAN[3] + timedelta(hours=47)),
    (9, JAN[7]),  # no such entity
]


def offline_and_online(shop: Project) -> list[tuple[Any, Any]]:
    """Per GRID point: the training set's value, and the online lookup's (status, value)."""
    table = training_set(shop, "customer_spend", entities([(c, t, 0) for c, t in GRID]))
    answers = []
    for (customer, at), value in zip(GRID, table.column("spend").to_pylist(), strict=True):
        [found] = online_features(shop, "customer_spend", [customer], now=at)
        spend = found["features"]["spend"]
        answers.append((value, (spend["status"], spend["value"])))
    return answers


def test_the_ttl_is_the_same_online_and_offline_with_an_inclusive_boundary(shop: Project) -> None:
    answers = offline_and_online(shop)
    assert [online for _, online in answers] == [
        ("PRESENT", 50.0),
        ("PRESENT", 50.0),
        ("PRESENT", 50.0),
        ("EXPIRED", None),
        ("EXPIRED", None),
        ("PRESENT", 7.0),
        ("EXPIRED", None),
        ("PRESENT", 5.0),
        ("NOT_FOUND", None),
    ]
    for offline, (status, value) in answers:
        assert offline == value  # PRESENT: the same value; EXPIRED, NOT_FOUND: NULL
        assert (offline is not None) == (status == "PRESENT")


def test_the_ttl_comparison_catches_a_training_set_that_ignores_the_ttl(
    shop: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The power of the test above: without the TTL offline, it sees the difference."""
    monkeypatch.setattr(features, "_valid", lambda value, ttl_us: value)
    differ = [(off, on) for off, on in offline_and_online(shop) if off != on[1]]
    assert differ == [
        (50.0, ("EXPIRED", None)),
        (50.0, ("EXPIRED", None)),
        (7.0, ("EXPIRED", None)),
    ]


def test_an_online_answer_names_the_event_time_and_every_feature(shop: Project) -> None:
    [present, expired, missing] = online_features(
        shop, "customer_spend", [1, 2, 404], env="prod", now=JAN[6]
    )
    assert present == {
        "key": 1,
        "event_time": JAN[5],
        "features": {
            "spend": {"value": 50.0, "status": "PRESENT"},
            "region": {"value": "eu", "status": "PRESENT"},
        },
    }
    assert expired["event_time"] == JAN[2]
    assert expired["features"]["region"] == {"value": None, "status": "EXPIRED"}
    assert missing["event_time"] is None
    assert missing["features"]["spend"] == {"value": None, "status": "NOT_FOUND"}


# ---- keys of several columns -------------------------------------------------------------


def test_an_entity_of_several_columns_is_one_key_online_and_offline(shop: Project) -> None:
    rows = [("eu", 1, JAN[6], 0), ("us", 1, JAN[6], 1), ("x|y\\z", 3, JAN[6], 2)]
    table = training_set(shop, "regional", entities(rows, ("region", "customer_id")))
    assert table.column("spend").to_pylist() == [50.0, None, 5.0]
    keys: list[Any] = [["eu", 1], ("us", 1), ["x|y\\z", 3], "x\\|y\\\\z|3", "eu|1"]
    found = online_features(shop, "regional", keys, now=JAN[6])
    assert [f["features"]["spend"]["value"] for f in found] == [50.0, None, 5.0, 5.0, 50.0]
    assert [f["key"] for f in found] == keys
    with pytest.raises(UsageError, match="has 1 part"):
        online_features(shop, "regional", [1], now=JAN[6])


# ---- refreshing the online store ----------------------------------------------------------


def test_the_online_store_is_refreshed_only_when_what_it_holds_changed(tmp_path: Path) -> None:
    root = feature_project(tmp_path)  # its run refreshed both views after the release
    assert sorted(held(root)) == ["customer_spend", "regional"]
    assert refreshed(root) == []  # the same snapshots: nothing to do
    before = held(root)
    write(root, "data/b.csv", "customer_id,region,ts,spend\n2,us,2026-01-09 00:00:00,70\n")
    ok(root, "run")  # a new data state of the model: a new product snapshot, refreshed
    assert refreshed(root) == []
    [found] = online_features(root, "customer_spend", [2], now=JAN[10])
    assert found["features"]["spend"] == {"value": 70.0, "status": "PRESENT"}
    after = held(root)
    assert after.keys() == before.keys() and all(after[v] != before[v] for v in after)
    # a changed view (its TTL) is refreshed; a removed one forgotten
    write(
        root,
        "models/clean/activity.yml",
        SIDECAR.replace("ttl: 2d", "ttl: 30d").split("  regional")[0],
    )
    assert refreshed(root) == ["customer_spend"]
    assert held(root) == {"customer_spend": after["customer_spend"]}
    with pytest.raises(StoreError, match="holds no feature view 'customer_spend' of dev yet"):
        online_features(root, "customer_spend", [1], env="dev", now=JAN[10])


def held(root: Path) -> dict[str, int]:
    """The product snapshot the online store holds of each view of prod."""
    store = OnlineStore.open(load_project(root))
    try:
        return {h.view: h.snapshot_id for h in store.held("prod")}
    finally:
        store.close()


def swaps_whole(root: Path) -> None:
    """The store of `root` replaces customer_spend's state while another connection reads:
    it sees the old state until the switch and the whole new one after; a replace that
    fails midway (the engine dies) changes nothing readers see."""
    writer, reader = OnlineStore.open(load_project(root)), OnlineStore.open(load_project(root))
    try:
        held = writer.current("prod", "customer_spend")
        assert held is not None
        old = reader.get("prod", "customer_spend", ["1", "2"])
        seen = []

        def batches(fail: bool) -> Iterator[pa.RecordBatch]:
            yield pa.record_batch({"_hw_key": ["1"], "_hw_record": ['[0, [1.0, "a"]]']})
            seen.append(reader.get("prod", "customer_spend", ["1", "2"]))
            if fail:
                raise RuntimeError("the engine died")
            yield pa.record_batch({"_hw_key": ["2"], "_hw_record": ['[1, [2.0, "b"]]']})

        assert writer.replace(held, batches(fail=False)) == 2
        new = reader.get("prod", "customer_spend", ["1", "2"])
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        assert new == {
            "1": (epoch, {"spend": 1.0, "region": "a"}),
            "2": (epoch + US, {"spend": 2.0, "region": "b"}),
        }
        with pytest.raises(RuntimeError):
            writer.replace(held, batches(fail=True))
        assert seen == [old, new]
        assert reader.get("prod", "customer_spend", ["1", "2"]) == new
    finally:
        writer.close()
        reader.close()


def test_a_state_is_swapped_in_whole_or_not_at_all(tmp_path: Path) -> None:
    root = feature_project(tmp_path)
    refreshed(root)
    swaps_whole(root)


# ---- Redis --------------------------------------------------------------------------------


def redis_server() -> str | None:
    """The redis-server binary, with the client package importable (None: not both)."""
    try:
        import redis  # noqa: F401
    except ImportError:
        return None
    return shutil.which("redis-server")


def require_redis() -> str:
    """Skip a test without Redis; under CI=true, where it must be installed, fail instead."""
    found = redis_server()
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("redis-server or the redis package is missing under CI=true")
    pytest.skip("redis-server (or the redis package) not installed")


@pytest.fixture
def redis_url() -> Iterator[str]:
    binary = require_redis()
    folder = Path(tempfile.mkdtemp(prefix="hw-redis-"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", ""],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.redis
def test_redis_holds_the_same_answers_as_sqlite(
    shop: Project, redis_url: str, tmp_path: Path
) -> None:
    root = feature_project(tmp_path, settings=f"online: {redis_url}\n")  # refreshed by the run
    assert refreshed(root) == []
    keys: list[Any] = [1, 2, 3, 404]
    for at in (JAN[5], JAN[7], JAN[7] + US):
        assert online_features(root, "customer_spend", keys, now=at) == online_features(
            shop, "customer_spend", keys, now=at
        )
    assert online_features(root, "regional", [["x|y\\z", 3]], now=JAN[9]) == online_features(
        shop, "regional", [["x|y\\z", 3]], now=JAN[9]
    )
    write(root, "data/b.csv", "customer_id,region,ts,spend\n2,us,2026-01-09 00:00:00,70\n")
    ok(root, "run")
    assert refreshed(root) == []
    [found] = online_features(root, "customer_spend", [2], now=JAN[10])
    assert found["features"]["spend"] == {"value": 70.0, "status": "PRESENT"}
    swaps_whole(root)


@pytest.mark.redis
def test_an_unreachable_redis_is_a_store_error_naming_the_setting(tmp_path: Path) -> None:
    require_redis()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])  # nothing listens there once closed
    write(tmp_path, "headwater.yml", f"name: t\nonline: redis://u:s3cret@127.0.0.1:{port}/0\n")
    with pytest.raises(StoreError, match=r"headwater\.yml: online") as caught:
        OnlineStore.open(load_project(tmp_path))
    assert "s3cret" not in str(caught.value)


# ---- the command line and bad input -------------------------------------------------------

runner = CliRunner()


def cli(root: Path, *args: str) -> Outcome:
    """`headwater features ARGS -p ROOT`, in process."""
    from headwater.cli.features import features as commands

    app = typer.Typer()
    app.add_typer(commands, name="features")
    result = runner.invoke(app, ["features", *args, "-p", str(root)], env={"COLUMNS": "100"})
    crashed = None if isinstance(result.exception, SystemExit) else result.exception
    return Outcome(result.exit_code, result.output, crashed)


def test_the_training_command_writes_a_file_or_shows_the_rows(
    shop: Project, tmp_path: Path
) -> None:
    labels = write(tmp_path, "labels.csv", "customer_id,at,label\n1,2026-01-02 00:00:00,1\n")
    out = tmp_path / "train.parquet"
    done = cli(
        shop.root,
        "training",
        str(labels),
        "--view",
        "customer_spend",
        "--time-column",
        "at",
        "--out",
        str(out),
    )
    assert done.code == 0, done
    assert "wrote 1 rows" in done.output
    assert pq.read_table(out).column("spend").to_pylist() == [10.0]
    shown = cli(
        shop.root,
        "training",
        str(labels),
        "--view",
        "customer_spend",
        "--time-column",
        "at",
        "--format",
        "json",
    )
    assert shown.code == 0, shown
    assert '"spend": 10.0' in shown.output


def test_the_list_command_shows_views_and_what_the_online_store_holds(shop: Project) -> None:
    done = cli(shop.root, "list", "--format", "json")
    assert done.code == 0, done
    import json

    listed = {v["view"]: v for v in json.loads(done.output)}
    assert listed["customer_spend"]["entity"] == ["customer_id"]
    assert listed["customer_spend"]["ttl"] == "2d"
    assert listed["regional"]["features"] == ["spend"]  # every other column, resolved
    assert listed["regional"]["online_rows"] == 3
    assert cli(shop.root, "list").code == 0


@pytest.mark.parametrize(
    ("header", "args", "names"),
    [
        (
            "customer,event_timestamp",
            ["--view", "customer_spend"],
            ["labels.csv", "'customer_id'", "did you mean 'customer'"],
        ),
        (
            "customer_id,time",
            ["--view", "customer_spend"],
            ["labels.csv", "'event_timestamp'", "--time-column"],
        ),
        (
            "customer_id,event_timestamp",
            ["--view", "customer_spent"],
            ["no feature view 'customer_spent'", "did you mean 'customer_spend'"],
        ),
        (
            "customer_id,event_timestamp,spend",
            ["--view", "customer_spend"],
            ["labels.csv", "'spend'", "rename"],
        ),
    ],
    ids=["missing-key", "missing-time", "unknown-view", "clashing-column"],
)
def test_bad_input_is_named_with_its_file_and_column(
    shop: Project, tmp_path: Path, header: str, args: list[str], names: list[str]
) -> None:
    values = {"customer": "1", "customer_id": "1", "spend": "3"}
    row = ",".join(values.get(name, "2026-01-02 00:00:00") for name in header.split(","))
    labels = write(tmp_path, "labels.csv", f"{header}\n{row}\n")
    assert_clean_error(cli(shop.root, "training", str(labels), *args), *names, code=2)


def test_a_key_of_another_type_and_a_missing_file_are_usage_errors(
    shop: Project, tmp_path: Path
) -> None:
    labels = write(tmp_path, "labels.csv", "customer_id,event_timestamp\nabc,2026-01-02 00:00:00\n")
    assert_clean_error(
        cli(shop.root, "training", str(labels), "--view", "customer_spend"), "labels.csv", code=2
    )
    # a value deep in the file that is not of the type its first rows gave the column
    good = "".join(f"{i % 3},2026-01-02 00:00:00\n" for i in range(80_000))
    late = write(tmp_path, "late.csv", f"customer_id,event_timestamp\n{good}x9,2026-01-03\n")
    outcome = cli(shop.root, "training", str(late), "--view", "customer_spend")
    assert_clean_error(outcome, "late.csv", "'x9'", code=2)
    missing = cli(shop.root, "training", str(tmp_path / "nope.csv"), "--view", "customer_spend")
    assert_clean_error(missing, "nope.csv", "no such entity file", code=2)


def test_a_view_naming_a_column_its_model_lacks_is_a_project_error(tmp_path: Path) -> None:
    root = feature_project(tmp_path)
    write(
        root, "models/clean/activity.yml", "features:\n  bad: {entity: customer, event_time: ts}\n"
    )
    labels = write(tmp_path, "labels.csv", "customer,event_timestamp\n1,2026-01-02 00:00:00\n")
    outcome = cli(root, "training", str(labels), "--view", "bad")
    assert_clean_error(
        outcome,
        "models/clean/activity.yml",
        "features.bad.entity",
        "did you mean 'customer_id'",
        code=3,
    )
    assert online.feature_views(load_project(root))["bad"].model == "clean.activity"


def test_online_features_over_http_with_their_status(tmp_path: Path) -> None:
    import httpx

    from tests.serve.test_vectors import serving

    root = feature_project(tmp_path)  # its run published the product and the online store
    with serving(root) as base:
        answer = httpx.get(
            f"{base}/v1/features/customer_spend", params=[("key", "1"), ("key", "404")]
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["release"] == 1 and answer.headers["x-headwater-release"] == "1"
        one, missing = body["results"]
        # Jan 5's value is long past its 2-day TTL now; the key without a row is not found
        assert one["features"]["spend"] == {"value": None, "status": "EXPIRED"}
        assert missing["features"]["spend"]["status"] == "NOT_FOUND"
        regional = httpx.get(f"{base}/v1/features/regional", params={"key": "eu|1"}).json()
        assert regional["results"][0]["features"]["spend"] == {"value": 50.0, "status": "PRESENT"}
        for params, status in (([], 400), ([("key", "1"), ("limit", "2")], 400)):
            refused = httpx.get(f"{base}/v1/features/customer_spend", params=params)
            assert refused.status_code == status and "error" in refused.json()
        assert httpx.get(f"{base}/v1/features/nope", params={"key": "1"}).status_code == 404
