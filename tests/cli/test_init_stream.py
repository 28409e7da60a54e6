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


def test_follow_takes_the_stream_contracts_and_names_a_wrong_one(tmp_path: Path) -> None:
    import pytest

    from headwater.errors import SpecError
    from headwater.orchestrate.follow import stream_contracts

    scaffold(tmp_path / "live", events=900, now=NOW, kafka="127.0.0.1:9092")
    project = load_project(tmp_path / "live")
    assert [c.name for c in stream_contracts(project)] == ["live_events"]
    with pytest.raises(SpecError, match=r"'orders' read\(s\) no stream"):
        stream_contracts(project, ["orders"])
    with pytest.raises(SpecError, match="no contract named 'nope'"):
        stream_contracts(project, ["nope"])
    scaffold(tmp_path / "plain", events=900, now=NOW)
    with pytest.raises(SpecError, match="no contract has `delivery: stream`"):
        stream_contracts(load_project(tmp_path / "plain"))
