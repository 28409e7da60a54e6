"""Every model kind the incremental property test does not build, on every conformance
engine (DuckDB, the recording engines, Spark): a view, an ephemeral model inlined into a
table, and a Python model — Arrow in on DuckDB, the engine's own DataFrames in on Spark —
each compared row by row with what the SQL says by hand. (incremental_by_time,
incremental_by_key, append and scd2: tests/orchestrate/test_incremental_property.py.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from sqlglot import exp

from headwater.orchestrate import Stores, run
from headwater.project import load_project

NOW = datetime(2026, 11, 1, tzinfo=UTC)
EVENTS = [("e1", "a", 10), ("e2", "b", 20), ("e3", "a", -5), ("e4", "c", 7), ("e5", "a", 3)]

FILES = {
    "headwater.yml": "name: kinds\n",
    "contracts/events.yml": """
source: test.events
schema_version: "1"
delivery: batch
privacy_level: internal
connector: {kind: files, path: "data/*.jsonl"}
primary_key: [event_id]
columns:
  - {name: event_id, type: varchar, nullable: false}
  - {name: kind, type: varchar}
  - {name: amount, type: integer}
""",
    "models/clean/signed.sql": """/* headwater
kind: ephemeral
*/
select event_id, upper(kind) as kind, amount, amount >= 0 as positive from raw.events
""",
    "models/marts/by_kind.sql": """/* headwater
kind: table
*/
select kind, count(*) as events, sum(amount) as total from clean.signed group by kind
""",
    "models/marts/positive.sql": """/* headwater
kind: view
*/
select event_id, amount from clean.signed where positive
""",
    # portable: Arrow in and out on DuckDB; a Spark DataFrame in and out on Spark
    "models/marts/doubled.py": '''
import pyarrow as pa
import pyarrow.compute as pc


def model(marts__by_kind):
    """Each kind's total, doubled."""
    if isinstance(marts__by_kind, pa.Table):
        return pa.table(
            {
                "kind": marts__by_kind["kind"],
                "doubled": pc.multiply(pc.cast(marts__by_kind["total"], pa.int64()), 2),
                "given": ["arrow"] * marts__by_kind.num_rows,
            }
        )
    from pyspark.sql import functions as F

    return marts__by_kind.select(
        "kind", (F.col("total") * 2).alias("doubled"), F.lit("spark").alias("given")
    )
''',
}


def _project(root: Path) -> Path:
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    lines = [json.dumps({"event_id": e, "kind": k, "amount": a}) for e, k, a in EVENTS]
    (root / "data").mkdir()
    (root / "data/events.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_view_table_ephemeral_and_python_models(engine: str, tmp_path: Path) -> None:
    project = load_project(_project(tmp_path / "p"))
    stores = Stores.open(project)
    try:
        report = run(project, stores, now=NOW)
        python = report.models["marts.doubled"]
        if engine == "minimal":  # an engine that takes no Arrow data refuses it, and says so
            assert python.status == "failed" and "cannot take Arrow data" in (python.error or "")
        else:
            assert report.ok, [(n, o.error) for n, o in report.models.items() if o.error]
        assert "clean.signed" not in stores.engine.objects()  # inlined, never made

        def rows(model: str) -> list[tuple[object, ...]]:
            table = stores.engine.read(exp.select(exp.Star()).from_(exp.to_table(model)))
            return sorted(tuple(r.values()) for r in table.to_pylist())

        assert rows("marts.by_kind") == [("A", 3, 8), ("B", 1, 20), ("C", 1, 7)]
        assert rows("marts.positive") == [("e1", 10), ("e2", 20), ("e4", 7), ("e5", 3)]
        statuses = {n: o.status for n, o in report.models.items()}
        assert statuses == {
            "clean.signed": "inlined",
            "marts.by_kind": "built",
            "marts.positive": "built",
            "marts.doubled": "failed" if engine == "minimal" else "built",
        }
        if engine != "minimal":
            given = "spark" if engine == "spark" else "arrow"  # a DataFrame stays on Spark
            assert rows("marts.doubled") == [("A", 16, given), ("B", 40, given), ("C", 14, given)]
    finally:
        stores.close()
