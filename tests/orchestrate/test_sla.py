"""Freshness SLAs alert even when nothing runs: a missed deadline opens one incident, sent
once to the project's webhook and log, and resolved once when fresh data lands."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from headwater.orchestrate import Stores, run
from headwater.orchestrate.scheduler import Scheduler
from headwater.orchestrate.sla import freshness
from headwater.orchestrate.stores import LakeStores
from headwater.project import load_project
from tests.badinput.harness import write
from tests.webhook import Receiver

ORDERS = """\
source: shop.orders
schema_version: "1"
delivery: batch
privacy_level: internal
connector: {{kind: files, path: "data/*.csv", format: csv}}
columns:
  - {{name: id, type: bigint, nullable: false}}
sla: {sla}
"""


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make(root: Path, sla: str, url: str) -> Path:
    write(root, "headwater.yml", f"name: shop\nalerts: [{{kind: webhook, url: '{url}'}}]\n")
    write(root, "contracts/orders.yml", ORDERS.format(sla=sla))
    return root


def land(root: Path, name: str, now: datetime) -> None:
    """Another process lands a file (as `headwater ingest` would), at the clock `now`."""
    write(root, f"data/{name}.csv", f"id\n{len(name)}\n")
    project = load_project(root)
    stores = Stores.open(project)
    try:
        assert run(project, stores, now=now, stages=("ingest",)).ok
    finally:
        stores.close()


def test_a_missed_deadline_alerts_once_with_no_run_and_resolves_when_data_lands(
    tmp_path: Path,
) -> None:
    with Receiver() as hook:
        root = make(tmp_path, '{fresh_by: "06:00 Europe/Berlin"}', hook.url)
        land(root, "first", datetime(2026, 12, 9, 10, 0, tzinfo=UTC))
        clock = Clock(datetime(2026, 12, 10, 4, 30, tzinfo=UTC))  # 05:30 in Berlin
        project = load_project(root)
        stores = LakeStores.open(project)
        try:
            scheduler = Scheduler(project, stores, clock=clock)
            assert not scheduler.jobs  # nothing is scheduled: no run at all
            assert scheduler.tick().checked.opened == []  # type: ignore[union-attr]
            assert hook.bodies == []  # today's deadline has not come yet
            for minutes in (31, 45, 120, 300):  # past 06:00 Berlin, checked again and again
                clock.now = datetime(2026, 12, 10, 4, 30, tzinfo=UTC) + timedelta(minutes=minutes)
                tick = scheduler.tick()
                assert not tick.runs
            assert [b["event"] for b in hook.bodies] == ["open"]
            opened = hook.bodies[0]
            assert opened["kind"] == "sla_freshness" and opened["subject"] == "raw.orders"
            assert opened["project"] == "shop" and opened["severity"] == "error"
            assert "raw.orders must be updated each day by 06:00 Europe/Berlin" in opened["message"]
            assert "last updated 2026-12-09 10:00 UTC" in opened["message"]
            land(root, "second", datetime(2026, 12, 10, 9, 40, tzinfo=UTC))
            clock.now = datetime(2026, 12, 10, 9, 45, tzinfo=UTC)
            assert scheduler.tick().checked.resolved == ["sla:raw.orders"]  # type: ignore[union-attr]
            scheduler.tick()
        finally:
            stores.close()
        assert [b["event"] for b in hook.bodies] == ["open", "resolved"]
        resolved = hook.bodies[1]
        assert resolved["alert_id"] == opened["alert_id"]
        assert "fresh again (updated 2026-12-10 09:40 UTC)" in resolved["message"]
    logged = (root / ".headwater/alerts.log").read_text().splitlines()
    assert [json.loads(line)["event"] for line in logged] == ["open", "resolved"]


def test_an_event_a_webhook_refused_is_sent_again_on_the_next_check(tmp_path: Path) -> None:
    with Receiver() as hook:
        root = make(tmp_path, "{max_age: 1h}", hook.url)
        land(root, "first", datetime(2026, 12, 9, 10, 0, tzinfo=UTC))
        hook.failing = 1
        clock = Clock(datetime(2026, 12, 9, 12, 0, tzinfo=UTC))
        project = load_project(root)
        stores = LakeStores.open(project)
        try:
            scheduler = Scheduler(project, stores, clock=clock)
            first = scheduler.tick().checked
            assert first is not None and first.opened == ["sla:raw.orders"]
            assert first.undelivered and "HTTP 503" in first.undelivered[0]
            assert hook.bodies == []
            clock.now += timedelta(minutes=1)
            assert scheduler.tick().checked.undelivered == []  # type: ignore[union-attr]
            clock.now += timedelta(minutes=1)
            scheduler.tick()
        finally:
            stores.close()
        assert [b["event"] for b in hook.bodies] == ["open"]
        assert "raw.orders is 2h 0m old; its sla allows 1h" in hook.bodies[0]["message"]


@pytest.mark.parametrize(
    ("sla", "landed", "now", "late"),
    [
        ("{max_age: 2h}", "2026-12-10T08:00", "2026-12-10T09:59", False),
        ("{max_age: 2h}", "2026-12-10T08:00", "2026-12-10T10:01", True),
        ('{fresh_by: "06:00"}', "2026-12-09T23:00", "2026-12-10T05:59", False),
        ('{fresh_by: "06:00"}', "2026-12-09T23:00", "2026-12-10T06:00", True),
        ('{fresh_by: "06:00"}', "2026-12-10T00:01", "2026-12-10T06:00", False),
        # Berlin is UTC+1 in December: its midnight is 23:00 UTC the day before
        ('{fresh_by: "06:00 Europe/Berlin"}', "2026-12-09T23:30", "2026-12-10T05:30", False),
        ('{fresh_by: "06:00 Europe/Berlin"}', "2026-12-09T22:30", "2026-12-10T05:30", True),
    ],
)
def test_freshness_is_judged_against_the_sla(
    tmp_path: Path, sla: str, landed: str, now: str, late: bool
) -> None:
    root = make(tmp_path, sla, "http://127.0.0.1:9/unused")
    land(root, "one", datetime.fromisoformat(landed).replace(tzinfo=UTC))
    project = load_project(root)
    stores = LakeStores.open(project)
    try:
        [state] = freshness(
            project, stores.catalog, stores.lake, datetime.fromisoformat(now).replace(tzinfo=UTC)
        )
    finally:
        stores.close()
    assert state.late is late, state.why
    assert state.updated_at == datetime.fromisoformat(landed).replace(tzinfo=UTC)


def test_a_table_never_landed_is_late_once_its_deadline_passes(tmp_path: Path) -> None:
    root = make(tmp_path, "{max_age: 2h}", "http://127.0.0.1:9/unused")
    project = load_project(root)
    stores = LakeStores.open(project)
    try:
        [state] = freshness(project, stores.catalog, stores.lake, datetime.now(UTC))
    finally:
        stores.close()
    assert state.late
    assert "raw.orders has never been updated; its sla allows at most 2h" in state.why


def test_a_run_past_the_project_s_max_duration_alerts_until_it_ends(tmp_path: Path) -> None:
    import os
    import socket

    from headwater.zones.catalog.schema import leases

    with Receiver() as hook:
        root = make(tmp_path, "{max_age: 1000d}", hook.url)
        settings = root / "headwater.yml"
        settings.write_text(settings.read_text() + "sla: {max_duration: 1h}\n")
        land(root, "first", datetime.now(UTC))
        project = load_project(root)
        stores = LakeStores.open(project)
        try:
            started = datetime.now(UTC) - timedelta(hours=2)
            with stores.catalog.engine.begin() as conn:  # a live run (this process) since 2h
                conn.execute(
                    leases.insert().values(
                        name="run",
                        token="long",
                        host=socket.gethostname(),
                        pid=os.getpid(),
                        command="backfill",
                        acquired_at=started,
                        heartbeat_at=datetime.now(UTC),
                    )
                )
            scheduler = Scheduler(project, stores, clock=lambda: datetime.now(UTC))
            assert scheduler.tick().checked.opened == ["run:long"]  # type: ignore[union-attr]
            scheduler.tick()
            stores.catalog.release_lease("run", "long")
            assert scheduler.tick().checked.resolved == ["run:long"]  # type: ignore[union-attr]
        finally:
            stores.close()
    assert [b["event"] for b in hook.bodies] == ["open", "resolved"]
    assert hook.bodies[0]["kind"] == "sla_run_duration"
    assert "past the project's max_duration 1h: `headwater backfill`" in hook.bodies[0]["message"]


def test_a_webhook_that_was_down_gets_the_open_before_the_resolve(tmp_path: Path) -> None:
    with Receiver() as hook:
        root = make(tmp_path, "{max_age: 1h}", hook.url)
        land(root, "first", datetime(2026, 12, 9, 10, 0, tzinfo=UTC))
        # down for the open, for the landing run's retry, and again on the next check
        hook.failing = 3
        clock = Clock(datetime(2026, 12, 9, 12, 0, tzinfo=UTC))
        project = load_project(root)
        stores = LakeStores.open(project)
        try:
            scheduler = Scheduler(project, stores, clock=clock)
            scheduler.tick()  # opened; not delivered
            land(root, "second", datetime(2026, 12, 9, 12, 5, tzinfo=UTC))
            clock.now = datetime(2026, 12, 9, 12, 10, tzinfo=UTC)
            scheduler.tick()  # resolved; the open is refused again, so the resolve waits
            assert hook.bodies == []
            clock.now += timedelta(minutes=1)  # the third refusal waits 2 minutes
            scheduler.tick()
            assert hook.bodies == []
            clock.now += timedelta(minutes=1)
            scheduler.tick()
        finally:
            stores.close()
        assert [b["event"] for b in hook.bodies] == ["open", "resolved"]


def test_a_webhook_s_secrets_come_from_the_environment_and_are_never_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_PATH", "hook-s3cr3t-path")
    monkeypatch.setenv("HOOK_TOKEN", "t0k3n-value")
    with Receiver() as hook:
        base = hook.url.rsplit("/", 1)[0]
        write(
            tmp_path,
            "headwater.yml",
            "name: shop\nalerts:\n  - kind: webhook\n"
            f"    url: '{base}/${{HOOK_PATH}}'\n"
            "    headers: {Authorization: 'Bearer ${HOOK_TOKEN}'}\n",
        )
        write(tmp_path, "contracts/orders.yml", ORDERS.format(sla="{max_age: 1h}"))
        project = load_project(tmp_path)
        stores = LakeStores.open(project)
        try:
            Scheduler(project, stores, clock=lambda: datetime.now(UTC)).tick()
            stored = json.dumps(stores.catalog.alert_history(), default=str)
        finally:
            stores.close()
        [(path, headers)] = hook.requests
    assert path == "/hook-s3cr3t-path" and headers["Authorization"] == "Bearer t0k3n-value"
    log = (tmp_path / ".headwater/alerts.log").read_text()
    catalog = (tmp_path / ".headwater/catalog.db").read_bytes()
    for secret in ("hook-s3cr3t-path", "t0k3n-value"):
        assert secret not in log and secret not in stored and secret.encode() not in catalog
