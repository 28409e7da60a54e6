"""On `engine: spark`, a model whose SQL Spark cannot run fails `headwater build` at load,
naming its file, line and function (issue #21, point 1) — before any session starts."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import sqlglot
from typer.testing import CliRunner

from headwater.cli.main import app
from headwater.engine.spark_sql import spark_functions, spark_nodes, untranslatable
from headwater.project import load_project
from tests.spark import require

runner = CliRunner()


def _spark_project(shop_template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    shutil.copytree(shop_template, root)
    settings = root / "headwater.yml"
    settings.write_text(re.sub(r"(?m)^engine:.*\n", "", settings.read_text()) + "engine: spark\n")
    return root


def test_an_untranslatable_function_fails_the_build_at_load(
    shop_template: Path, tmp_path: Path
) -> None:
    root = _spark_project(shop_template, tmp_path)
    (root / "models/marts/hourly.sql").write_text(
        "-- orders by the hour\n"
        "select\n"
        "    time_bucket(interval '1 hour', ordered_at) as hour,\n"
        "    count(*) as orders,\n"
        "    list_sum([amount, 1]) as padded\n"
        "from clean.orders\n"
        "group by 1\n"
    )
    result = runner.invoke(app, ["build", "-p", str(root)], env={"COLUMNS": "200"})
    assert result.exit_code != 0
    assert "models/marts/hourly.sql:3" in result.output
    assert "time_bucket() cannot run on Spark" in result.output
    assert "DATE_BIN" in result.output and "list_sum" in result.output  # the other one too
    assert not (root / ".headwater/catalog.db").exists()  # nothing opened, nothing built


def test_a_project_whose_models_translate_loads(shop_template: Path, tmp_path: Path) -> None:
    project = load_project(_spark_project(shop_template, tmp_path))  # every example model
    assert project.settings.engine == "spark" and project.models


@pytest.mark.parametrize(
    ("sql", "flagged"),
    [
        ("select list_sum(xs) from t", ["list_sum"]),  # passed through by name: no such
        ("select time_bucket(interval '1 day', ts) from t", ["time_bucket"]),  # → DATE_BIN
        ("select a, row_number() over (order by b) rn from t qualify rn = 1", []),  # rewritten
        ("select strftime(ts, '%Y'), date_trunc('day', ts), regexp_matches(s, 'x') from t", []),
        ("select string_agg(s, ','), arg_max(a, b), median(a) from t", []),
        ("select count(*) filter (where a > 1) from t", []),
    ],
)
def test_what_is_flagged(sql: str, flagged: list[str]) -> None:
    assert [u.name for u in untranslatable(sqlglot.parse_one(sql, read="duckdb"), sql)] == flagged


@pytest.mark.spark
def test_the_function_list_is_sparks_own() -> None:
    require()
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate()
    )
    try:
        live = {r[0].lower() for r in session.sql("SHOW FUNCTIONS").collect()}
    finally:
        session.stop()
    operators = {name for name in live if not name.replace("_", "").isalnum()}
    assert spark_functions() == live - operators


@pytest.mark.parametrize(
    ("duckdb", "spark"),
    [
        # a full match: RLIKE anchored at both ends (Spark has no REGEXP_FULL_MATCH)
        (
            "select regexp_full_match(email, '[^@]+@[^@]+') from t",
            "SELECT email RLIKE CONCAT('^(?:', '[^@]+@[^@]+', ')$') FROM t",
        ),
        # a sample of n rows of a table: no seed (sqlglot writes DuckDB's REPEATABLE as SEED)
        (
            "select * from t tablesample reservoir (1000 rows) repeatable (7)",
            "SELECT * FROM t TABLESAMPLE (1000 ROWS)",
        ),
        # ... of a query: Spark samples tables only (and its n rows are the first n)
        (
            "select a from (select a from t where b) "
            "using sample reservoir (10 rows) repeatable (7)",
            "SELECT a FROM (SELECT a FROM t WHERE b) LIMIT 10",
        ),
        # QUALIFY (Spark has none) of `*`: sqlglot's rewrite returned its window column too
        (
            "select * from t qualify row_number() over (partition by a order by b) = 1",
            "SELECT * EXCEPT (_hw_q0) FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY a ORDER "
            "BY b NULLS LAST) AS _hw_q0 FROM t) AS _hw_q WHERE _hw_q0 = 1",
        ),
        # ... on a column not selected: read beside the window, left out as well
        (
            "select a from t qualify rank() over (order by b) = 1 and b > 0",
            "SELECT * EXCEPT (_hw_q0, _hw_q1) FROM (SELECT a, RANK() OVER (ORDER BY b NULLS "
            "LAST) AS _hw_q0, b AS _hw_q1 FROM t) AS _hw_q WHERE _hw_q0 = 1 AND _hw_q1 > 0",
        ),
        # exact quantiles: one percentile_disc a fraction (sqlglot writes PERCENTILE_APPROX),
        # ranked as DuckDB ranks them; a date's over its days since the epoch
        (
            "select quantile_disc(x, [0.15, 0.5]) from t",
            "SELECT ARRAY(PERCENTILE_DISC(0.149999999999) WITHIN GROUP (ORDER BY x NULLS LAST), "
            "PERCENTILE_DISC(0.499999999999) WITHIN GROUP (ORDER BY x NULLS LAST)) FROM t",
        ),
        (
            "select quantile_disc(cast(d as date), 0.5) from t",
            "SELECT DATE_FROM_UNIX_DATE(CAST(PERCENTILE_DISC(0.499999999999) WITHIN GROUP "
            "(ORDER BY DATEDIFF(DAY, CAST('1970-01-01' AS DATE), CAST(d AS DATE)) NULLS LAST) "
            "AS INT)) FROM t",
        ),
    ],
)
def test_what_sqlglot_gets_wrong_is_rewritten_for_spark(duckdb: str, spark: str) -> None:
    tree = sqlglot.parse_one(duckdb, read="duckdb")
    assert tree.transform(spark_nodes).sql(dialect="spark") == spark
    assert untranslatable(tree, duckdb) == []  # and so the load does not refuse it


def test_a_views_comment_is_a_property_on_spark() -> None:
    """Spark has no COMMENT ON VIEW (the raw views' comment names the snapshot they show)."""
    comment = sqlglot.exp.Comment(
        this=sqlglot.exp.to_table("raw.orders"),
        kind="VIEW",
        expression=sqlglot.exp.Literal.string("3 -b1"),
    )
    assert comment.transform(spark_nodes).sql(dialect="spark") == (
        "ALTER VIEW raw.orders SET TBLPROPERTIES ('comment'='3 -b1')"
    )


def test_an_environments_views_are_replaced_side_by_side() -> None:
    """A flip's views are replaced a few at a time (each a commit of the catalog); a view
    named twice, and any other statement, wait for what came before."""
    from headwater.engine.spark import _batches

    view = "CREATE OR REPLACE VIEW `clean`.`{}` AS SELECT * FROM `hw_clean`.`{}__1`"
    a, b, c = (view.format(n, n) for n in "abc")
    marker = "DELETE FROM headwater.releases WHERE env = 'prod'"
    assert _batches([a, b, c, marker, "INSERT INTO t VALUES (1)"]) == [
        [a, b, c],
        [marker],
        ["INSERT INTO t VALUES (1)"],
    ]
    assert _batches([a, b, a, marker, c]) == [[a, b], [a], [marker], [c]]
    assert _batches(["CREATE VIEW x.y AS SELECT 1", a]) == [["CREATE VIEW x.y AS SELECT 1"], [a]]


def test_a_session_without_a_jvm_here_keeps_no_comments() -> None:
    """On Spark Connect a view's comment cannot be read back (the catalog is asked through
    the JVM): the raw views are then made again each run, with no comment written."""
    from types import SimpleNamespace

    from headwater.engine.spark import SparkEngine

    connect = SparkEngine(session=SimpleNamespace())  # type: ignore[arg-type]
    classic = SparkEngine(session=SimpleNamespace(_jvm=object()))  # type: ignore[arg-type]
    assert (connect.capabilities.comments, classic.capabilities.comments) == (False, True)
    assert connect.capabilities.column_stats and connect.stored("raw") is None
