"""Column lineage: every output column of every model → the upstream columns it derives from."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from headwater.models import Model, parse_model
from headwater.models.lineage import ROWS, Lineage, Upstream, trace
from headwater.orchestrate.lineage import column_tree, raw_schema, record_lineage
from headwater.project import Project, load_project
from headwater.zones.catalog import Catalog

RAW = {
    "raw.t": {"a": "bigint", "b": "bigint", "c": "varchar", "_hw_ingested_at": "timestamptz"},
    "raw.u": {"a": "bigint", "d": "bigint"},
}


def models(tmp_path: Path, **sql: str) -> dict[str, Model]:
    """Parse `zone__name="select …"` pairs as model files `models/zone/name.sql`."""
    out = {}
    for key, text in sql.items():
        zone, name = key.split("__")
        path = tmp_path / "models" / zone / f"{name}.sql"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        model = parse_model(path, root=tmp_path)
        out[model.name] = model
    return out


def up(*names: str) -> tuple[Upstream, ...]:
    """`up("raw.t.a", "raw.u.*")` → sorted Upstream tuples, as lineage stores them."""
    return tuple(sorted(Upstream(*n.rsplit(".", 1)) for n in names))


def chain(lineage: Lineage, table: str, column: str) -> set[str]:
    """Every column `table.column` derives from, hop after hop, down to raw tables."""
    seen: set[str] = set()
    stack = [(table, column)]
    while stack:
        t, c = stack.pop()
        model = lineage.models.get(t)
        for u in model.columns.get(c, ()) if model else ():
            if str(u) not in seen:
                seen.add(str(u))
                stack.append((u.table, u.column))
    return seen


@pytest.fixture(scope="module")
def example(shop_template: Path) -> tuple[Project, Lineage]:
    project = load_project(shop_template)
    return project, trace(project.models, raw_schema(project), order=project.dag.order)


# the example project


def test_every_example_model_is_traced_without_issues(example: tuple[Project, Lineage]) -> None:
    project, lineage = example
    assert lineage.issues == []
    assert set(lineage.models) == set(project.models)
    assert lineage.models["marts.customer_orders"].outputs == [
        "customer_id",
        "country",
        "orders",
        "revenue",
        "first_order_at",
        "last_order_at",
    ]


def test_revenue_comes_from_amount_and_the_status_of_its_filter(
    example: tuple[Project, Lineage],
) -> None:
    _, lineage = example
    revenue = lineage.models["marts.customer_orders"].columns["revenue"]
    assert revenue == up("clean.orders.amount", "clean.orders.status")
    assert chain(lineage, "marts.customer_orders", "revenue") == {
        "clean.orders.amount",
        "clean.orders.status",
        "raw.orders.amount",
        "raw.orders.status",
    }


def test_count_star_derives_from_the_rows_and_reaches_raw_columns_through_clean(
    example: tuple[Project, Lineage],
) -> None:
    _, lineage = example
    assert lineage.models["marts.events_daily"].columns["event_count"] == up("clean.events.*")
    reached = chain(lineage, "marts.events_daily", "event_count")
    # clean.events keeps known event types (WHERE) and one row per event_id (QUALIFY)
    assert {
        "clean.events.*",
        "raw.events.*",
        "raw.events.event_type",
        "raw.events.event_id",
        "raw.events._hw_ingested_at",
    } <= reached
    assert "raw.events.page" not in reached


def test_a_models_rows_derive_from_its_filters_grouping_and_joins(
    example: tuple[Project, Lineage],
) -> None:
    _, lineage = example
    rows = lineage.models["marts.customer_orders"].columns[ROWS]
    assert rows == up(
        "clean.customers.*",
        "clean.customers.customer_id",
        "clean.customers.country",
        "clean.orders.*",
        "clean.orders.customer_id",
    )
    assert lineage.models["marts.revenue_daily"].columns["orders"] == up("clean.orders.*")


def test_columns_of_a_model_read_by_another_model(example: tuple[Project, Lineage]) -> None:
    _, lineage = example
    funnel = lineage.models["marts.funnel_daily"].columns
    assert funnel["page_views"] == up(
        "marts.events_daily.event_count", "marts.events_daily.event_type"
    )
    assert "raw.events.occurred_at" in chain(lineage, "marts.funnel_daily", "day")


def test_tracing_again_reuses_what_is_known(example: tuple[Project, Lineage]) -> None:
    """A second trace with the first one's results traces nothing again (its speed is
    measured in bench/lineage, not asserted here)."""
    project, _ = example
    schema = raw_schema(project)
    lineage = trace(project.models, schema, order=project.dag.order)
    assert sorted(lineage.traced) == sorted(project.models)
    again = trace(project.models, schema, order=project.dag.order, known=lineage.models)
    assert again.traced == [] and again.models == lineage.models


# queries written for the test


def test_select_star_expands_to_the_columns_of_what_it_reads(tmp_path: Path) -> None:
    found = trace(
        models(
            tmp_path,
            clean__t="select * from raw.t",
            marts__m="select x.* exclude (c) from clean.t as x",
        ),
        RAW,
    )
    assert found.models["clean.t"].outputs == ["a", "b", "c", "_hw_ingested_at"]
    assert found.models["marts.m"].outputs == ["a", "b", "_hw_ingested_at"]
    assert found.models["marts.m"].columns["b"] == up("clean.t.b")


def test_ctes_windows_unions_and_subqueries(tmp_path: Path) -> None:
    found = trace(
        models(
            tmp_path,
            x__cte="with w as (select a, b + 1 as bb from raw.t where c = 'x') "
            "select w.*, lag(bb) over (partition by a order by bb) as prev, 1 as one from w",
            x__uni="select a, b from raw.t union all select a, d from raw.u",
            x__sub="select t.a, (select max(u.d) from raw.u as u where u.a = t.a) as top "
            "from raw.t as t where t.b in (select u.d from raw.u as u)",
            x__mix="select count(*) + sum(b) as mixed from raw.t",
        ),
        RAW,
    )
    assert found.issues == []
    cte = found.models["x.cte"].columns
    assert cte["bb"] == up("raw.t.b")
    assert cte["prev"] == up("raw.t.a", "raw.t.b")
    assert cte["one"] == up("raw.t.*")  # reads no column: derives from the rows
    assert cte[ROWS] == up("raw.t.*", "raw.t.c")
    assert found.models["x.uni"].columns["b"] == up("raw.t.b", "raw.u.d")
    sub = found.models["x.sub"].columns
    assert sub["top"] == up("raw.u.d")
    assert sub[ROWS] == up("raw.t.*", "raw.t.b", "raw.u.*", "raw.u.d")  # not the value's u.a
    assert found.models["x.mix"].columns["mixed"] == up("raw.t.*", "raw.t.b")


def test_a_model_that_cannot_be_traced_is_reported_by_file_and_skipped(tmp_path: Path) -> None:
    found = trace(
        models(
            tmp_path,
            x__bad="select * from raw.t as x join raw.u as x on true",
            x__after="select b.* from x.bad as b",
            x__fine="select a from raw.u",
        ),
        RAW,
    )
    assert [e.render() for e in found.issues] == [
        "models/x/bad.sql: column lineage cannot be traced: Alias already used: x",
        "models/x/after.sql: column lineage: cannot expand `*`, the columns of x.bad are unknown",
    ]
    assert set(found.models) == {"x.after", "x.fine"}
    assert found.models["x.fine"].columns["a"] == up("raw.u.a")


def test_a_column_of_no_known_table_is_reported_and_left_out(tmp_path: Path) -> None:
    found = trace(
        models(
            tmp_path, x__m="select t.b, nope, t.b + 1 from raw.t as t join raw.u as u on u.a = t.a"
        ),
        RAW,
    )
    assert [e.render() for e in found.issues] == [
        "models/x/m.sql: column lineage of 'nope': cannot tell which table 'nope' comes from",
        "models/x/m.sql: column lineage: 't.b + 1' has no name of its own, so the warehouse and "
        "the lineage name it differently; name it with AS",
    ]
    assert found.models["x.m"].outputs == ["b", "_col_2"]


def test_unchanged_models_are_reused_and_changed_columns_retrace_downstream(
    tmp_path: Path,
) -> None:
    first = models(
        tmp_path,
        clean__t="select a, b from raw.t",
        marts__m="select * from clean.t",
        marts__n="select sum(a) as s from clean.t",
    )
    before = trace(first, RAW)
    assert sorted(before.traced) == ["clean.t", "marts.m", "marts.n"]
    second = {**first, **models(tmp_path, clean__t="select a, b, c from raw.t")}
    after = trace(second, RAW, known=before.models)
    # clean.t changed; marts.m and marts.n read its columns, which changed too
    assert sorted(after.traced) == ["clean.t", "marts.m", "marts.n"]
    assert after.models["marts.m"].outputs == ["a", "b", "c"]
    assert trace(second, RAW, known=after.models).traced == []


# stored in the catalog


@pytest.fixture
def stored(shop_template: Path, tmp_path: Path) -> Iterator[tuple[Project, Catalog, Lineage]]:
    root = tmp_path / "shop"
    shutil.copytree(shop_template, root, ignore=shutil.ignore_patterns("data"))
    project = load_project(root)
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    yield project, catalog, record_lineage(project, catalog)
    catalog.close()


def test_lineage_is_stored_one_hop_per_row(stored: tuple[Project, Catalog, Lineage]) -> None:
    _, catalog, _ = stored
    hops = catalog.upstream_columns("marts.customer_orders", "revenue")
    assert [(h.upstream_table, h.upstream_column) for h in hops] == [
        ("clean.orders", "amount"),
        ("clean.orders", "status"),
    ]
    down = catalog.downstream_columns("raw.orders", "amount")
    assert [(h.model, h.output_column) for h in down] == [("clean.orders", "amount")]


def test_recording_again_traces_nothing_that_did_not_change(
    stored: tuple[Project, Catalog, Lineage],
) -> None:
    project, catalog, first = stored
    assert sorted(first.traced) == sorted(project.models)
    again = record_lineage(project, catalog)
    assert again.traced == [] and again.models == first.models


def test_a_removed_model_leaves_no_stale_lineage(
    stored: tuple[Project, Catalog, Lineage],
) -> None:
    project, catalog, _ = stored
    (project.root / "models/marts/funnel_daily.sql").unlink()
    record_lineage(load_project(project.root), catalog)
    assert catalog.upstream_columns("marts.funnel_daily", "day") == []
    assert {r.model for r in catalog.column_lineage()} == set(project.models) - {
        "marts.funnel_daily"
    }


def test_the_chain_of_a_column_down_to_raw(stored: tuple[Project, Catalog, Lineage]) -> None:
    project, catalog, _ = stored
    tree = column_tree(catalog, "marts.funnel_daily", "purchases", project)
    leaves = {f"{n.table}.{n.column}" for n in tree.walk() if not n.children}
    assert leaves == {
        "raw.events.*",
        "raw.events._hw_ingested_at",
        "raw.events.event_id",
        "raw.events.event_type",
    }
    assert all(n.raw for n in tree.walk() if not n.children)


def test_hashes_cuts_and_counts_take_identity_away_on_every_path(tmp_path: Path) -> None:
    found = trace(
        models(
            tmp_path,
            clean__c="select id, sha256(email) as h, email, phone from raw.c",
            marts__m="select h, count(distinct email) as n, max(email) as top, "
            "right(phone, 4) as last4, left(phone, 9) as prefix, "
            "sha256(email) || email as both_ways, count(sha256(email)) as hashed_count "
            "from clean.c group by h",
        ),
        {"raw.c": {"id": "bigint", "email": "varchar", "phone": "varchar"}},
    )
    clean, marts = found.models["clean.c"], found.models["marts.m"]
    assert clean.effects["h"][Upstream("raw.c", "email")].kind == "pseudonymous"
    assert "email" not in clean.effects  # passed through: keeps its identity
    effects = marts.effects
    assert effects["n"][Upstream("clean.c", "email")].kind == "dropped"
    assert effects["n"][Upstream("clean.c", "email")].via == "COUNT(DISTINCT c.email)"
    assert "top" not in effects  # max() returns one of the values
    assert effects["last4"][Upstream("clean.c", "phone")].kind == "pseudonymous"
    assert "prefix" not in effects  # nine characters of a phone number identify it
    assert "both_ways" not in effects  # one use keeps it, so the column does
    assert effects["hashed_count"][Upstream("clean.c", "email")].kind == "dropped"
