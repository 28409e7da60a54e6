"""Drift statistics computed in SQL equal scipy's (and numpy's, for PSI) on seeded data."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from headwater.engine.dialect import parse_one
from headwater.engine.duckdb import DuckDBEngine
from headwater.errors import SpecError
from headwater.quality.drift import Relation, chi2_p_value, drift, ks_p_value
from tests.engines import ENGINES, SPARK, make_engine, text_statements

TIGHT = 1e-9
EMPTY_SHARE = 1e-4  # PSI's share of an empty bin (Evidently's), as drift.py documents
UNSEEN_ROWS = 0.5  # chi2: a category the reference lacks counts as half a row there
CUR = Relation("raw.events", parse_one("_hw_batch_id = 'b2'"))
REF = Relation("raw.events", parse_one("_hw_batch_id = 'b1'"))


@pytest.fixture(params=[*ENGINES, SPARK])
def engine(request: pytest.FixtureRequest) -> Iterator[DuckDBEngine]:
    """An empty `raw` zone on every conformance engine; drift must send only ASTs."""
    log: list[object] = []
    engine = make_engine(request.param, log)
    engine.execute("create schema raw")
    yield engine
    engine.close()
    made = [s for s in text_statements(log) if not s.startswith(("create ", "drop "))]
    assert not made, made[:3]


def load(
    engine: DuckDBEngine, reference: Sequence[Any], current: Sequence[Any], kind: str = "DOUBLE"
) -> None:
    """raw.events: the reference as batch b1, the current rows as batch b2 (None: NULL)."""
    batch = ["b1"] * len(reference) + ["b2"] * len(current)
    engine.register("_events", pa.table({"_hw_batch_id": batch, "x": [*reference, *current]}))
    engine.execute(
        parse_one(f"create table raw.events as select _hw_batch_id, x::{kind} as x from _events")
    )
    engine.unregister("_events")


def quantiles(reference: np.ndarray, bins: int) -> np.ndarray:
    """The exact inverted-CDF quantiles i/bins: the value at position ceil(n*i/bins) of the
    sorted reference (numpy's `inverted_cdf` computes n*i/bins in floats: 0.15*6000 is
    900.0000000000001 to it, so it takes the 901st)."""
    ordered, n = np.sort(reference), len(reference)
    return np.array([ordered[-(-n * i // bins) - 1] for i in range(1, bins)])


def numpy_psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """PSI as a person writes it in numpy: edges at the reference's exact quantiles, bins
    (e_{i-1}, e_i], empty shares as EMPTY_SHARE."""
    edges = np.unique(quantiles(reference, bins))
    r = np.bincount(np.searchsorted(edges, reference), minlength=len(edges) + 1) / len(reference)
    c = np.bincount(np.searchsorted(edges, current), minlength=len(edges) + 1) / len(current)
    r, c = np.where(r == 0, EMPTY_SHARE, r), np.where(c == 0, EMPTY_SHARE, c)
    return float(np.sum((c - r) * np.log(c / r)))


def counts(reference: Sequence[str], current: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    keys = sorted(set(reference) | set(current))
    r = np.array([list(reference).count(k) for k in keys], dtype=float)
    c = np.array([list(current).count(k) for k in keys], dtype=float)
    return r, c


# --- PSI --------------------------------------------------------------------------------


def test_psi_of_shifted_normals_equals_numpy_and_fails(engine: DuckDBEngine) -> None:
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(50, 10, 5000), rng.normal(58, 12, 4000)
    load(engine, ref, cur)
    result = drift(engine, "x", "DOUBLE", CUR, REF)
    assert result.method == "psi"
    assert result.statistic == pytest.approx(numpy_psi(ref, cur), abs=TIGHT)
    assert result.statistic > 0.2 and not result.passed
    assert (result.reference_rows, result.current_rows) == (5000, 4000)
    assert [b.upper for b in result.bins[:-1]] == quantiles(ref, 10).tolist()
    assert result.bins[0].lower is None and result.bins[-1].upper is None
    assert sum(b.reference for b in result.bins) == pytest.approx(1)
    assert sum(b.current for b in result.bins) == pytest.approx(1)
    assert result.explanation.startswith("PSI ")
    assert "over 10 bins of x (threshold 0.2)" in result.explanation
    assert "share of > " in result.explanation and "rose" in result.explanation


def test_psi_of_one_distribution_is_small_and_passes(engine: DuckDBEngine) -> None:
    rng = np.random.default_rng(2)
    ref, cur = rng.normal(0, 1, 6000), rng.normal(0, 1, 6000)
    load(engine, ref, cur)
    result = drift(engine, "x", "DOUBLE", CUR, REF, bins=20)
    assert result.statistic == pytest.approx(numpy_psi(ref, cur, 20), abs=TIGHT)
    assert result.statistic < 0.02 and result.passed
    assert len(result.bins) == 20


def test_psi_with_ties_merges_repeated_edges_and_fills_empty_bins(engine: DuckDBEngine) -> None:
    rng = np.random.default_rng(3)
    # few distinct values: several deciles fall on one value; the current rows sit high,
    # so low bins are empty on their side (EMPTY_SHARE)
    ref = rng.choice([1, 2, 3, 4, 5], 3000, p=[0.5, 0.3, 0.1, 0.05, 0.05]).astype(float)
    cur = rng.choice([4, 5, 9], 1000).astype(float)
    load(engine, ref, cur)
    result = drift(engine, "x", "DOUBLE", CUR, REF)
    assert result.statistic == pytest.approx(numpy_psi(ref, cur), abs=TIGHT)
    uppers = [b.upper for b in result.bins]
    assert uppers == [1.0, 2.0, 3.0, None]  # ten bins asked, four distinct
    assert [b.current for b in result.bins][:3] == [0, 0, 0]


def test_psi_on_decimals_and_integers(engine: DuckDBEngine) -> None:
    rng = np.random.default_rng(4)
    ref = np.round(rng.gamma(2, 30, 4000), 2)
    cur = np.round(rng.gamma(2, 35, 3000), 2)
    load(engine, ref, cur, "DECIMAL(12,2)")
    result = drift(engine, "x", "DECIMAL(12,2)", CUR, REF)
    assert result.statistic == pytest.approx(numpy_psi(ref, cur), abs=TIGHT)
    whole = drift(engine, "x", "BIGINT", CUR, REF)  # the type string picks the method only
    assert whole.method == "psi"


def test_nulls_are_ignored(engine: DuckDBEngine) -> None:
    rng = np.random.default_rng(5)
    ref, cur = rng.normal(0, 1, 2000), rng.normal(0.5, 1, 2000)
    load(engine, [*ref, None, None], [None, *cur, None])
    for method in ("psi", "ks"):
        result = drift(engine, "x", "DOUBLE", CUR, REF, method=method)
        assert (result.reference_rows, result.current_rows) == (2000, 2000)
    assert drift(engine, "x", "DOUBLE", CUR, REF).statistic == pytest.approx(
        numpy_psi(ref, cur), abs=TIGHT
    )
    ks = drift(engine, "x", "DOUBLE", CUR, REF, method="ks")
    assert ks.statistic == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=TIGHT)


def test_two_tables_and_dates(engine: DuckDBEngine) -> None:
    rng = np.random.default_rng(6)
    ref = rng.integers(0, 365, 3000)
    cur = rng.integers(30, 400, 2500)
    for name, days in (("old", ref), ("new", cur)):
        engine.register("_d", pa.table({"day": days.astype("int32")}))
        engine.execute(
            parse_one(f"create table raw.{name} as select date '2026-01-01' + day as day from _d")
        )
        engine.unregister("_d")
    old, new = Relation("raw.old"), Relation("raw.new")
    psi = drift(engine, "day", "DATE", new, old)
    assert psi.statistic == pytest.approx(numpy_psi(ref, cur), abs=TIGHT)
    ks = drift(engine, "day", "DATE", new, old, method="ks")
    assert ks.statistic == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=TIGHT)
    assert "2026-" in ks.explanation


# --- KS ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shift", "n", "m"), [(0.0, 3000, 2500), (0.03, 4000, 3000), (0.05, 5000, 2000)]
)
def test_ks_equals_scipy_where_verdicts_are_made(
    engine: DuckDBEngine, shift: float, n: int, m: int
) -> None:
    rng = np.random.default_rng(7)
    ref, cur = rng.normal(0, 1, n), rng.normal(shift, 1, m)
    load(engine, ref, cur)
    result = drift(engine, "x", "DOUBLE", CUR, REF, method="ks")
    theirs = stats.ks_2samp(ref, cur, method="asymp")
    assert result.statistic == pytest.approx(theirs.statistic, abs=TIGHT)
    assert 0.025 < theirs.pvalue < 0.99  # Pelz-Good's range in scipy too
    assert result.p_value == pytest.approx(theirs.pvalue, abs=1e-12)
    assert result.passed == bool(theirs.pvalue >= 0.05)
    (point,) = result.bins
    assert abs(point.reference - point.current) == pytest.approx(result.statistic, abs=TIGHT)


def test_ks_counts_ties_as_scipy(engine: DuckDBEngine) -> None:
    rng = np.random.default_rng(8)
    ref = rng.integers(0, 12, 4000).astype(float)
    cur = rng.choice(13, 3500, p=np.array([1] * 12 + [0.3]) / 12.3).astype(float)
    load(engine, ref, cur)
    result = drift(engine, "x", "DOUBLE", CUR, REF, method="ks")
    theirs = stats.ks_2samp(ref, cur, method="asymp")
    assert result.statistic == pytest.approx(theirs.statistic, abs=TIGHT)
    assert result.p_value == pytest.approx(theirs.pvalue, abs=1e-12)
    assert 0.025 < theirs.pvalue < 0.05 and not result.passed
    assert "KS D " in result.explanation and "fails below 0.05" in result.explanation


def test_ks_p_value_matches_scipy_asymp() -> None:
    """The pure-Python p-value against scipy's, over sizes and statistics: exact to 1e-12
    where a verdict is made, close in the tail and for small samples (see ks_p_value)."""
    sizes = [(300, 200, 35), (500, 400, 35), (1500, 1000, 35), (20_000, 5000, 35)]
    for n, m, points in [*sizes, (250_000, 1_000_000, 6)]:  # scipy is slow at large N
        big = round(n * m / (n + m))
        for z in np.linspace(0.1, 3.5, points):
            d = float(z / math.sqrt(big))
            theirs = float(stats.kstwo.sf(d, big))
            ours = ks_p_value(d, n, m)
            if big <= 140:
                assert ours == pytest.approx(theirs, abs=0.002), (n, m, z)
            elif big * d * d >= 2.2:  # the tail
                close = (0.02 if big >= 1000 else 0.15) if theirs >= 1e-6 else 0.5
                assert ours == pytest.approx(theirs, rel=close), (n, m, z)
            elif big <= 100_000 and big * d**1.5 <= 1.4:  # scipy's Durbin matrix: p > 0.9
                assert ours == pytest.approx(theirs, abs=1e-5), (n, m, z)
            else:
                assert ours == pytest.approx(theirs, abs=1e-12), (n, m, z)
    assert ks_p_value(0.0, 10, 10) == 1.0 and ks_p_value(1.0, 10, 10) == 0.0


# --- JS and chi-square ------------------------------------------------------------------


def categorical_fixture() -> tuple[list[str], list[str]]:
    """A reference without 'e' and a current without 'd' (a category new, one gone)."""
    rng = np.random.default_rng(9)
    ref = rng.choice(["a", "b", "c", "d"], 3000, p=[0.4, 0.3, 0.2, 0.1]).tolist()
    cur = rng.choice(["a", "b", "c", "e"], 2000, p=[0.3, 0.3, 0.3, 0.1]).tolist()
    return ref, cur


def test_js_equals_scipy_base_2(engine: DuckDBEngine) -> None:
    ref, cur = categorical_fixture()
    load(engine, ref, cur, "VARCHAR")
    result = drift(engine, "x", "VARCHAR", CUR, REF)
    assert result.method == "js"
    r, c = counts(ref, cur)
    assert result.statistic == pytest.approx(jensenshannon(r, c, base=2), abs=TIGHT)
    assert not result.passed and result.p_value is None
    keys = ["a", "b", "c", "d", "e"]  # detailed by their shares of both sides, largest first
    order = sorted(range(5), key=lambda i: -(r[i] / r.sum() + c[i] / c.sum()))
    assert [b.label for b in result.bins] == [repr(keys[i]) for i in order]
    new = next(b for b in result.bins if b.label == "'e'")
    assert new.reference == 0 and new.current == c[-1] / 2000
    assert "1 category is new" in result.explanation


def test_js_of_one_distribution_passes(engine: DuckDBEngine) -> None:
    rng = np.random.default_rng(10)
    ref = rng.choice(["x", "y", "z"], 5000, p=[0.5, 0.3, 0.2]).tolist()
    cur = rng.choice(["x", "y", "z"], 5000, p=[0.5, 0.3, 0.2]).tolist()
    load(engine, ref, cur, "VARCHAR")
    result = drift(engine, "x", "VARCHAR", CUR, REF)
    r, c = counts(ref, cur)
    assert result.statistic == pytest.approx(jensenshannon(r, c, base=2), abs=TIGHT)
    assert result.statistic < 0.05 and result.passed


def test_chi2_equals_scipy_against_reference_shares(engine: DuckDBEngine) -> None:
    rng = np.random.default_rng(11)
    ref = rng.choice(["a", "b", "c"], 4000, p=[0.5, 0.3, 0.2]).tolist()
    cur = rng.choice(["a", "b", "c"], 1500, p=[0.47, 0.33, 0.2]).tolist()
    load(engine, ref, cur, "VARCHAR")
    result = drift(engine, "x", "VARCHAR", CUR, REF, method="chi2")
    r, c = counts(ref, cur)
    theirs = stats.chisquare(c, r / r.sum() * c.sum())
    assert result.statistic == pytest.approx(theirs.statistic, abs=TIGHT)
    assert result.p_value == pytest.approx(theirs.pvalue, abs=TIGHT)
    assert 0.001 < theirs.pvalue < 0.5
    assert result.passed == bool(theirs.pvalue >= 0.05)
    assert "2 df" in result.explanation


def test_chi2_counts_unseen_categories_as_half_a_row(engine: DuckDBEngine) -> None:
    ref, cur = categorical_fixture()
    load(engine, ref, cur, "VARCHAR")
    result = drift(engine, "x", "VARCHAR", CUR, REF, method="chi2")
    r, c = counts(ref, cur)
    seen = np.where(r == 0, UNSEEN_ROWS, r)
    theirs = stats.chisquare(c, seen / seen.sum() * c.sum())
    assert math.isfinite(result.statistic)
    assert result.statistic == pytest.approx(theirs.statistic, rel=TIGHT)
    assert result.p_value == pytest.approx(theirs.pvalue, abs=TIGHT)
    assert not result.passed


def test_many_categories_detail_the_top_20_and_count_all(engine: DuckDBEngine) -> None:
    rng = np.random.default_rng(12)
    names = [f"c{i:02}" for i in range(40)]
    weights = np.linspace(2, 1, 40) / np.linspace(2, 1, 40).sum()
    ref = rng.choice(names, 8000, p=weights).tolist()
    cur = rng.choice(names[:35], 6000).tolist()
    load(engine, ref, cur, "VARCHAR")
    r, c = counts(ref, cur)
    for method in ("js", "chi2"):
        result = drift(engine, "x", "VARCHAR", CUR, REF, method=method)
        assert len(result.bins) == 21 and result.bins[-1].label == "other"
        assert sum(b.reference for b in result.bins) == pytest.approx(1)
        assert sum(b.current for b in result.bins) == pytest.approx(1)
    js = drift(engine, "x", "VARCHAR", CUR, REF, method="js")
    assert js.statistic == pytest.approx(jensenshannon(r, c, base=2), abs=TIGHT)
    chi2 = drift(engine, "x", "VARCHAR", CUR, REF, method="chi2")
    theirs = stats.chisquare(c, r / r.sum() * c.sum())
    assert chi2.statistic == pytest.approx(theirs.statistic, rel=TIGHT)
    assert "39 df" in chi2.explanation


def test_booleans_are_categories(engine: DuckDBEngine) -> None:
    load(engine, [True] * 70 + [False] * 30, [True] * 40 + [False] * 60, "BOOLEAN")
    result = drift(engine, "x", "BOOLEAN", CUR, REF)
    assert result.method == "js"
    assert result.statistic == pytest.approx(jensenshannon([70, 30], [40, 60], base=2), abs=TIGHT)
    assert {b.label for b in result.bins} == {"True", "False"}


def test_chi2_p_value_matches_scipy() -> None:
    for df in (1, 2, 5, 19, 100, 999):
        for x in (0.01, 0.5, df * 0.5, df, df + 3 * math.sqrt(2 * df), df * 3 + 50):
            assert chi2_p_value(x, df) == pytest.approx(stats.chi2.sf(x, df), abs=1e-11)
    assert chi2_p_value(3.0, 0) == 1.0


# --- empty sides and wrong columns ------------------------------------------------------


@pytest.mark.parametrize("method", ["psi", "ks", "js", "chi2"])
@pytest.mark.parametrize("empty", ["reference", "current"])
def test_an_empty_side_passes_with_nothing_to_compare(
    engine: DuckDBEngine, method: str, empty: str
) -> None:
    values = [1.0, 2.0, 2.0, 3.0]
    nulls = [None, None]
    load(engine, nulls if empty == "reference" else values, nulls if empty == "current" else values)
    result = drift(engine, "x", "DOUBLE", CUR, REF, method=method)  # type: ignore[arg-type]
    assert result.passed and result.statistic == 0 and result.bins == ()
    assert result.explanation.startswith("nothing to compare")
    assert empty in result.explanation
    none = Relation("raw.events", parse_one("_hw_batch_id = 'b9'"))
    assert drift(engine, "x", "DOUBLE", none, none, method=method).passed  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kind", ["STRUCT(a INTEGER)", "INTEGER[]", "MAP(VARCHAR, INTEGER)", "BLOB"]
)
def test_a_column_fitting_no_method_is_a_spec_error(kind: str) -> None:
    with pytest.raises(SpecError, match=r"drift on payload: its type .* neither") as err:
        drift(DuckDBEngine(), "payload", kind, CUR, REF)
    assert "method: psi or ks" in str(err.value)


def test_a_numeric_method_on_text_says_what_to_write() -> None:
    with pytest.raises(SpecError, match="method ks needs numbers, and status is VARCHAR") as err:
        drift(DuckDBEngine(), "status", "VARCHAR", CUR, REF, method="ks")
    assert "method: js or method: chi2" in str(err.value)


def test_thresholds_default_per_method_and_can_be_set(engine: DuckDBEngine) -> None:
    rng = np.random.default_rng(13)
    ref, cur = rng.normal(0, 1, 3000), rng.normal(0.25, 1, 3000)
    load(engine, ref, cur)
    psi = drift(engine, "x", "DOUBLE", CUR, REF)
    assert psi.threshold == 0.2 and psi.passed
    # psi and js fail above the threshold, ks and chi2 when p is below it
    for factor, passes in ((0.999, False), (1.0, True), (1.001, True)):
        at = drift(engine, "x", "DOUBLE", CUR, REF, threshold=psi.statistic * factor)
        assert at.passed is passes and at.statistic == psi.statistic
    ks = drift(engine, "x", "DOUBLE", CUR, REF, method="ks")
    assert ks.threshold == 0.05 and ks.p_value is not None and not ks.passed
    for factor, passes in ((1.001, False), (1.0, True), (0.999, True)):
        at = drift(engine, "x", "DOUBLE", CUR, REF, method="ks", threshold=ks.p_value * factor)
        assert at.passed is passes


def test_categorical_thresholds(engine: DuckDBEngine) -> None:
    ref, cur = categorical_fixture()
    load(engine, ref, cur, "VARCHAR")
    js = drift(engine, "x", "VARCHAR", CUR, REF)
    assert js.threshold == 0.1
    for factor, passes in ((0.999, False), (1.0, True), (1.001, True)):
        at = drift(engine, "x", "VARCHAR", CUR, REF, threshold=js.statistic * factor)
        assert at.passed is passes
    rng = np.random.default_rng(11)
    pairs = rng.choice(["a", "b"], 400).tolist()
    engine.execute("drop table raw.events")
    load(engine, pairs[:200], pairs[200:], "VARCHAR")  # one distribution again
    chi2 = drift(engine, "x", "VARCHAR", CUR, REF, method="chi2")
    assert chi2.threshold == 0.05 and chi2.p_value is not None and chi2.passed
    for factor, passes in ((1.001, False), (1.0, True), (0.999, True)):
        limit = chi2.p_value * factor
        assert (
            drift(engine, "x", "VARCHAR", CUR, REF, method="chi2", threshold=limit).passed is passes
        )
