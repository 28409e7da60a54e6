"""A task is tried again on an error a retry may fix, as `defaults.retries` and
`defaults.timeout` allow, and never on any other."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from headwater.errors import SourceError, SpecError, TransientSourceError
from headwater.orchestrate.retry import Retrying
from tests.badinput.harness import hw, write
from tests.httpapi import Api


class Clock:
    """Time that passes only when the retrier sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def failing(*errors: Exception) -> tuple[list[int], object]:
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return "landed"

    return calls, attempt


def test_a_retryable_error_is_tried_again_with_growing_waits() -> None:
    clock = Clock()
    calls, attempt = failing(TransientSourceError("503"), TransientSourceError("timeout"))
    retrying = Retrying(3, 3600, sleep=clock.sleep, clock=lambda: clock.now)
    assert retrying.call(attempt) == "landed"  # type: ignore[arg-type]
    assert len(calls) == 3 and [e.message for e in retrying.failures] == ["503", "timeout"]
    first, second = clock.waits
    assert 0.5 <= first <= 1.5 and 1.0 <= second <= 3.0


def test_any_other_error_is_not_retried() -> None:
    clock = Clock()
    calls, attempt = failing(SourceError("no such file"), SpecError("bad"))
    with pytest.raises(SourceError):
        Retrying(5, 3600, sleep=clock.sleep, clock=lambda: clock.now).call(attempt)  # type: ignore[arg-type]
    assert len(calls) == 1 and clock.waits == []


def test_retries_and_time_run_out() -> None:
    clock = Clock()
    calls, attempt = failing(*[TransientSourceError(f"#{i}") for i in range(10)])
    with pytest.raises(TransientSourceError, match="#2"):
        Retrying(2, 3600, sleep=clock.sleep, clock=lambda: clock.now).call(attempt)  # type: ignore[arg-type]
    assert len(calls) == 3
    clock = Clock()
    calls, attempt = failing(*[TransientSourceError(f"#{i}") for i in range(10)])
    with pytest.raises(TransientSourceError):  # the next wait would pass the 5 s budget
        Retrying(10, 5, sleep=clock.sleep, clock=lambda: clock.now).call(attempt)  # type: ignore[arg-type]
    assert clock.now <= 5 and len(calls) < 10


CONTRACT = """\
source: shop_api.orders
schema_version: "1"
delivery: batch
privacy_level: internal
connector:
  kind: http
  url: {url}/cursor/orders
  records: data
  pagination: {{kind: cursor, path: meta.next, param: cursor}}
  retries: 0
columns:
  - {{name: id, type: bigint, nullable: false}}
  - {{name: updated_at, type: timestamptz}}
"""
T0 = datetime(2026, 10, 1, tzinfo=UTC)


@pytest.mark.parametrize("retries", [0, 1])
def test_a_run_lands_an_api_that_failed_once_when_the_project_allows_a_retry(
    tmp_path: Path, retries: int
) -> None:
    records = [{"id": i, "updated_at": (T0 + timedelta(hours=i)).isoformat()} for i in range(5)]
    with Api(records) as api:
        api.fail(503, times=1)  # the connector itself retries nothing (retries: 0)
        write(tmp_path, "headwater.yml", f"name: shop\ndefaults: {{retries: {retries}}}\n")
        write(tmp_path, "contracts/orders.yml", CONTRACT.format(url=api.url))
        outcome = hw(tmp_path, "ingest")
    if retries:
        assert outcome.code == 0, outcome
        flat = " ".join(outcome.output.split())
        assert "5 rows" in flat and "landed on attempt 2, after:" in flat and "503" in flat
    else:
        assert outcome.code == 1 and "503" in outcome.output, outcome


def test_a_contract_s_own_retries_win_over_the_project_default(tmp_path: Path) -> None:
    records = [{"id": i, "updated_at": (T0 + timedelta(hours=i)).isoformat()} for i in range(3)]
    with Api(records) as api:
        api.fail(503, times=1)
        write(tmp_path, "headwater.yml", "name: shop\ndefaults: {retries: 0}\n")
        write(tmp_path, "contracts/orders.yml", CONTRACT.format(url=api.url) + "retries: 1\n")
        outcome = hw(tmp_path, "ingest")
    assert outcome.code == 0, outcome
    assert "landed on attempt 2" in " ".join(outcome.output.split())


def test_a_bad_contract_timeout_names_the_field(tmp_path: Path) -> None:
    write(tmp_path, "headwater.yml", "name: shop\n")
    write(
        tmp_path,
        "contracts/orders.yml",
        CONTRACT.format(url="http://127.0.0.1:9") + "timeout: soon\n",
    )
    outcome = hw(tmp_path, "ingest")
    assert outcome.code == 3 and "orders.yml" in outcome.output and "timeout" in outcome.output, (
        outcome
    )
