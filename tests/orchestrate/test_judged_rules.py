"""Drift and anomaly rules in real runs: each batch is profiled as it lands, drift compares
it with the batch before (or a window of them), and an anomaly rule judges its row count
against the history of the batches before it, by weekday."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from headwater.orchestrate import Stores, run
from headwater.orchestrate.report import RunReport
from headwater.project import load_project
from tests.badinput.harness import write

ORDERS = """\
source: shop.orders
schema_version: "1"
delivery: batch
privacy_level: internal
connector: {kind: files, path: "data/*.csv", format: csv}
columns:
  - {name: id, type: bigint, nullable: false}
  - {name: amount, type: double}
  - {name: status, type: string}
rules:
  - {name: amount_drift, type: drift, target: amount, severity: warn}
  - {name: amount_ks, type: drift, target: amount, method: ks, severity: warn}
  - {name: status_drift, type: drift, target: status, reference: 3d, severity: warn}
  - {name: rows_usual, type: anomaly, metric: rows, target: "*", severity: warn}
  - {name: mean_usual, type: anomaly, metric: mean, target: amount, severity: warn}
"""
MONDAY = datetime(2026, 9, 7, 6, 0, tzinfo=UTC)


def _land(root: Path, day: int, rows: int, *, shift: float = 0.0, status: str = "") -> RunReport:
    rng = random.Random(day)
    statuses = ["paid", "paid", "shipped", "lost"]
    lines = ["id,amount,status"]
    for i in range(rows):
        amount = rng.gauss(100 + shift, 15)
        lines.append(f"{day * 100_000 + i},{amount:.2f},{status or rng.choice(statuses)}")
    write(root, f"data/day{day:03d}.csv", "\n".join(lines) + "\n")
    project = load_project(root)
    stores = Stores.open(project)
    try:
        return run(project, stores, now=MONDAY + timedelta(days=day), stages=("ingest",))
    finally:
        stores.close()


def _results(report: RunReport) -> dict[str, tuple[bool, float | None, str]]:
    return {c.rule.name: (c.passed, c.metric, c.sql.splitlines()[0]) for c in report.checks}


def test_drift_compares_a_batch_with_the_one_before(engine: str, tmp_path: Path) -> None:
    """On every conformance engine (the batch's scan, profile and drift queries run there;
    the anomaly rules' judge reads the history those leave)."""
    write(tmp_path, "headwater.yml", "name: shop\n")
    write(tmp_path, "contracts/orders.yml", ORDERS)
    first = _results(_land(tmp_path, 0, 2000))
    assert first["amount_drift"][0] and "nothing to compare with yet" in first["amount_drift"][2]
    assert first["rows_usual"][0] and "too few to judge yet" in first["rows_usual"][2]
    assert first["mean_usual"][0] and "too few to judge yet" in first["mean_usual"][2]

    same = _results(_land(tmp_path, 1, 2000))
    assert same["amount_drift"][0] and same["amount_ks"][0]
    assert same["amount_drift"][1] is not None and same["amount_drift"][1] < 0.1

    moved = _results(_land(tmp_path, 2, 2000, shift=30))  # two spreads up
    passed, psi, said = moved["amount_drift"]
    assert not passed and psi is not None and psi > 0.2
    assert "PSI" in said and "amount" in said
    assert not moved["amount_ks"][0]
    # statuses unchanged against the three days before
    assert moved["status_drift"][0]

    lost = _results(_land(tmp_path, 3, 2000, status="lost"))
    assert not lost["status_drift"][0]


def test_an_anomaly_rule_flags_a_batch_far_from_its_weekdays_history(tmp_path: Path) -> None:
    write(tmp_path, "headwater.yml", "name: shop\n")
    write(tmp_path, "contracts/orders.yml", ORDERS)
    weekday, weekend = 300, 120
    verdicts = []
    for day in range(28):  # four weeks: weekends are quieter, and that is normal
        usual = weekend if (MONDAY + timedelta(days=day)).weekday() >= 5 else weekday
        rows = usual + (day * 7) % 11  # a little noise
        verdicts.append(_results(_land(tmp_path, day, rows))["rows_usual"])
    warming = [v for v in verdicts if "too few to judge yet" in v[2]]
    assert warming and verdicts.index(warming[-1]) < 21
    judged = verdicts[len(warming) :]
    assert judged and all(passed for passed, _, _ in judged), judged  # weekends included

    tuesday = 29  # a Tuesday with a fifth of its usual rows
    assert (MONDAY + timedelta(days=tuesday)).weekday() == 1
    passed, rows, said = _results(_land(tmp_path, tuesday, 60))["rows_usual"]
    assert not passed and rows == 60
    assert "rows 60 vs expected" in said and "Tuesday" in said
