"""`headwater init --kafka`: the example project with its optional stream source, which the
default project (and so `make demo`) does not have."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from headwater.cli.scaffold import scaffold
from headwater.project import load_project

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def test_the_stream_source_is_added_only_when_asked(tmp_path: Path) -> None:
    # a small --events still gets every deliberate defect (it once raised IndexError)
    assert scaffold(tmp_path / "plain", events=100, now=NOW)["events"] == 900
    assert "live_events" not in load_project(tmp_path / "plain").contracts

    scaffold(tmp_path / "live", events=2000, now=NOW, kafka="127.0.0.1:9092")
    contract = load_project(tmp_path / "live").contracts["live_events"]
    assert contract.delivery.value == "stream"
    assert contract.connector.kind == "kafka"
    assert contract.connector.brokers == "127.0.0.1:9092"
    assert contract.connector.topics == ["shop.events"]
