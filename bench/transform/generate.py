"""Generate a deterministic DAG of realistic models over the example project's clean tables.

Each model is a SQL template with placeholder tables (`_a`, `_b`, `_c`) and bound values
(`:name`), parsed once by sqlglot and bound on the AST, never formatted as text. A template
turns inputs of known shapes (event rows, daily counts, customer profiles, ...) into an
output shape, so every generated query reads columns its inputs really have.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlglot
import yaml
from sqlglot import exp

ZONE = "bench"
BASE = {"clean.events": "events", "clean.orders": "orders", "clean.customers": "customers"}
EVENT_TYPES = ["page_view", "search", "add_to_cart", "checkout", "purchase"]
STATUSES = ["placed", "paid", "shipped", "delivered", "cancelled", "refunded"]
COUNTRIES = ["DE", "FR", "GB", "NL", "US", "ES", "IT", "SE"]


@dataclass(frozen=True)
class Template:
    """One kind of model: input shapes → output shape, its SQL, and how likely it is picked."""

    name: str
    inputs: tuple[str, ...]
    output: str
    sql: str
    weight: float
    grain: tuple[str, ...] = ()
    params: tuple[str, ...] = ()


@dataclass(frozen=True)
class GeneratedModel:
    name: str  # short name inside the bench zone
    template: str
    reads: tuple[str, ...]  # zone.name of each input
    query: exp.Query
    grain: tuple[str, ...]

    def text(self) -> str:
        header = {"kind": "table", "description": f"bench: {self.template} over "
                  + ", ".join(self.reads)}
        if self.grain:
            header["grain"] = list(self.grain)
        return ("/* headwater\n" + yaml.safe_dump(header, sort_keys=False) + "*/\n"
                + self.query.sql(dialect="duckdb", pretty=True) + "\n")


TEMPLATES = [
    # row-level: filters and semi-joins that keep their input's shape
    Template("events_of_types", ("events",), "events", weight=2, params=("types",), sql="""
        select e.* from _a as e where e.event_type in (:types)"""),
    Template("events_on_product_pages", ("events",), "events", weight=1, sql="""
        select e.* from _a as e where e.page like '/product/%'"""),
    Template("events_last_30d", ("events",), "events", weight=1, sql="""
        select e.* from _a as e
        where e.occurred_at >= (select max(x.occurred_at) - interval 30 day from _a as x)"""),
    Template("events_of_customers", ("events", "customers"), "events", weight=2, sql="""
        select e.* from _a as e join _b as c on c.customer_id = e.customer_id"""),
    Template("orders_in_status", ("orders",), "orders", weight=2, params=("statuses",), sql="""
        select o.* from _a as o where o.status in (:statuses)"""),
    Template("orders_in_currency", ("orders",), "orders", weight=1, params=("currency",), sql="""
        select o.* from _a as o where o.currency = :currency"""),
    Template("orders_of_customers", ("orders", "customers"), "orders", weight=2, sql="""
        select o.* from _a as o where o.customer_id in (select c.customer_id from _b as c)"""),
    Template("customers_in_countries", ("customers",), "customers", weight=2,
             params=("countries",), sql="""
        select c.* from _a as c where c.country in (:countries)"""),
    # aggregations of rows
    Template("daily_events", ("events",), "daily_events", weight=5, grain=("day", "event_type"),
             sql="""
        select cast(e.occurred_at as date) as day, e.event_type, count(*) as events,
               count(distinct e.session_id) as sessions
        from _a as e group by 1, 2"""),
    Template("daily_revenue", ("orders",), "daily_revenue", weight=4, grain=("day", "currency"),
             sql="""
        select cast(o.ordered_at as date) as day, o.currency, count(*) as orders,
               sum(o.amount) as revenue
        from _a as o where o.status not in ('cancelled', 'refunded') group by 1, 2"""),
    Template("customer_activity", ("events",), "customer_activity", weight=3,
             grain=("customer_id",), sql="""
        select e.customer_id, count(*) as events, count(distinct e.session_id) as sessions,
               min(e.occurred_at) as first_seen, max(e.occurred_at) as last_seen
        from _a as e where e.customer_id is not null group by 1"""),
    Template("customer_revenue", ("orders",), "customer_revenue", weight=4,
             grain=("customer_id",), sql="""
        select o.customer_id, count(*) as orders,
               coalesce(sum(o.amount) filter (where o.status not in ('cancelled', 'refunded')),
                        0) as revenue,
               min(o.ordered_at) as first_order_at, max(o.ordered_at) as last_order_at
        from _a as o group by 1"""),
    Template("sessions", ("events",), "sessions", weight=2, grain=("session_id",), sql="""
        select e.session_id, max(e.customer_id) as customer_id,
               min(e.occurred_at) as started_at, max(e.occurred_at) as ended_at,
               count(*) as events, bool_or(e.event_type = 'purchase') as converted
        from _a as e group by 1"""),
    Template("converted_sessions", ("sessions",), "sessions", weight=1, sql="""
        select s.* from _a as s where s.converted"""),
    Template("session_rollup", ("sessions",), "customer_activity", weight=2,
             grain=("customer_id",), sql="""
        select s.customer_id, sum(s.events) as events, count(*) as sessions,
               min(s.started_at) as first_seen, max(s.ended_at) as last_seen
        from _a as s where s.customer_id is not null group by 1"""),
    # aggregates of aggregates, windows and joins between models
    Template("rolling_daily_events", ("daily_events",), "daily_events", weight=4,
             grain=("day", "event_type"), sql="""
        select d.day, d.event_type, d.events, d.sessions,
               avg(d.events) over (partition by d.event_type order by d.day
                                   rows between 6 preceding and current row) as events_7d_avg,
               d.events - lag(d.events) over (partition by d.event_type order by d.day)
                 as events_change
        from _a as d"""),
    Template("merged_daily_events", ("daily_events", "daily_events"), "daily_events", weight=2,
             grain=("day", "event_type"), sql="""
        select u.day, u.event_type, sum(u.events) as events, sum(u.sessions) as sessions
        from (select a.day, a.event_type, a.events, a.sessions from _a as a
              union all
              select b.day, b.event_type, b.events, b.sessions from _b as b) as u
        group by 1, 2"""),
    Template("rolling_daily_revenue", ("daily_revenue",), "daily_revenue", weight=3,
             grain=("day", "currency"), sql="""
        select r.day, r.currency, r.orders, r.revenue,
               sum(r.revenue) over (partition by r.currency order by r.day
                                    rows between 27 preceding and current row) as revenue_28d,
               sum(r.revenue) over (partition by r.currency order by r.day) as revenue_to_date
        from _a as r"""),
    Template("active_buyers", ("customer_activity", "customer_revenue"), "customer_activity",
             weight=2, params=("min_revenue",), sql="""
        select a.* from _a as a
        where a.customer_id in (select r.customer_id from _b as r where r.revenue >= :min_revenue)
        """),
    Template("customer_profile", ("customers", "customer_activity", "customer_revenue"),
             "customer_profile", weight=5, grain=("customer_id",), sql="""
        select c.customer_id, c.country, coalesce(a.events, 0) as events,
               coalesce(a.sessions, 0) as sessions, coalesce(r.orders, 0) as orders,
               coalesce(r.revenue, 0) as revenue
        from _a as c
        left join _b as a on a.customer_id = c.customer_id
        left join _c as r on r.customer_id = c.customer_id"""),
    Template("top_customers", ("customer_profile",), "customer_profile", weight=2,
             grain=("customer_id",), params=("top",), sql="""
        select p.customer_id, p.country, p.events, p.sessions, p.orders, p.revenue
        from _a as p
        qualify row_number() over (partition by p.country
                                   order by p.revenue desc, p.customer_id) <= :top"""),
    Template("country_kpi", ("customer_profile",), "country_kpi", weight=3, grain=("country",),
             sql="""
        select p.country, count(*) as customers, sum(p.events) as events,
               sum(p.orders) as orders, sum(p.revenue) as revenue
        from _a as p group by 1"""),
    Template("country_ranking", ("country_kpi",), "country_kpi", weight=2, grain=("country",),
             sql="""
        select k.country, k.customers, k.events, k.orders, k.revenue,
               rank() over (order by k.revenue desc) as revenue_rank,
               k.revenue / nullif(sum(k.revenue) over (), 0) as revenue_share
        from _a as k"""),
    Template("segments", ("customer_profile",), "segments", weight=2,
             grain=("segment", "country"), params=("high",), sql="""
        select case when p.revenue >= :high then 'high'
                    when p.revenue > 0 then 'paying'
                    when p.events > 0 then 'browsing'
                    else 'dormant' end as segment,
               p.country, count(*) as customers, sum(p.revenue) as revenue
        from _a as p group by 1, 2"""),
    Template("cohorts", ("customers", "customer_revenue"), "cohorts", weight=2,
             grain=("cohort", "country"), sql="""
        select date_trunc('month', c.signed_up_at) as cohort, c.country,
               count(*) as customers, count(r.customer_id) as buyers,
               coalesce(sum(r.revenue), 0) as revenue
        from _a as c left join _b as r on r.customer_id = c.customer_id
        group by 1, 2"""),
    Template("daily_kpi", ("daily_events", "daily_revenue"), "daily_kpi", weight=4,
             grain=("day",), sql="""
        with ev as (select d.day, sum(d.events) as events, sum(d.sessions) as sessions
                    from _a as d group by 1),
             rev as (select r.day, sum(r.orders) as orders, sum(r.revenue) as revenue
                     from _b as r group by 1)
        select ev.day, ev.events, ev.sessions, coalesce(rev.orders, 0) as orders,
               coalesce(rev.revenue, 0) as revenue
        from ev left join rev on rev.day = ev.day"""),
    Template("rolling_daily_kpi", ("daily_kpi",), "daily_kpi", weight=3, grain=("day",), sql="""
        select k.day, k.events, k.sessions, k.orders, k.revenue,
               k.orders / nullif(k.sessions, 0) as conversion,
               sum(k.revenue) over (order by k.day rows between 6 preceding and current row)
                 as revenue_7d
        from _a as k"""),
    Template("daily_funnel", ("daily_events",), "daily_funnel", weight=3, grain=("day",), sql="""
        select d.day,
               sum(d.events) filter (where d.event_type = 'page_view') as page_views,
               sum(d.events) filter (where d.event_type = 'search') as searches,
               sum(d.events) filter (where d.event_type = 'add_to_cart') as carts,
               sum(d.events) filter (where d.event_type = 'checkout') as checkouts,
               sum(d.events) filter (where d.event_type = 'purchase') as purchases
        from _a as d group by 1"""),
    Template("funnel_rates", ("daily_funnel",), "daily_funnel", weight=2, grain=("day",), sql="""
        select f.day, f.page_views, f.searches, f.carts, f.checkouts, f.purchases,
               f.carts / nullif(f.page_views, 0) as cart_rate,
               f.purchases / nullif(f.checkouts, 0) as checkout_rate,
               avg(f.purchases) over (order by f.day rows between 6 preceding and current row)
                 as purchases_7d_avg
        from _a as f"""),
]
PLACEHOLDER_TABLES = ("_a", "_b", "_c")


def generate(count: int, *, seed: int = 42) -> list[GeneratedModel]:
    """`count` models, each reading 1–3 clean tables or earlier models, the same for a seed."""
    rng = random.Random(seed)
    parsed = {t.name: sqlglot.parse_one(t.sql, dialect="duckdb") for t in TEMPLATES}
    by_shape: dict[str, list[str]] = {}
    for table, shape in BASE.items():
        by_shape.setdefault(shape, []).append(table)
    width = max(3, len(str(count)))
    models: list[GeneratedModel] = []
    seen: set[tuple[Any, ...]] = set()
    while len(models) < count:
        template = _pick_template(rng, by_shape)
        reads = tuple(_pick_input(rng, by_shape[shape]) for shape in template.inputs)
        params = {p: _pick_param(rng, p) for p in template.params}
        key = (template.name, reads, repr(sorted(params.items())))
        if key in seen or len(set(reads)) < len(reads):
            continue
        seen.add(key)
        name = f"{template.name}_{len(models):0{width}d}"
        query = bind(parsed[template.name], dict(zip(PLACEHOLDER_TABLES, reads, strict=False)),
                     params)
        models.append(GeneratedModel(name, template.name, reads, query, template.grain))
        by_shape.setdefault(template.output, []).append(f"{ZONE}.{name}")
    return models


def write(models: Sequence[GeneratedModel], project: Path) -> None:
    """Write the models into `project/models/bench/`, replacing what was there."""
    folder = project / "models" / ZONE
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.sql"):
        old.unlink()
    for model in models:
        (folder / f"{model.name}.sql").write_text(model.text(), encoding="utf-8")


def bind(template: exp.Expression, tables: Mapping[str, str],
         params: Mapping[str, Any]) -> exp.Query:
    """Put real tables in place of `_a`/`_b`/`_c` and literals in place of `:name`."""
    query = template.copy()
    for table in list(query.find_all(exp.Table)):
        if not table.db and table.name in tables:
            target = exp.to_table(tables[table.name])
            target.set("alias", table.args.get("alias"))
            table.replace(target)
    for placeholder in list(query.find_all(exp.Placeholder)):
        value = params[placeholder.name]
        if isinstance(value, list) and isinstance(placeholder.parent, exp.In):
            placeholder.parent.set("expressions", [exp.convert(v) for v in value])
        else:
            placeholder.replace(exp.convert(value))
    assert isinstance(query, exp.Query)
    return query


def _pick_template(rng: random.Random, by_shape: Mapping[str, list[str]]) -> Template:
    ready = [t for t in TEMPLATES if all(
        len(by_shape.get(s, ())) >= t.inputs.count(s) for s in t.inputs)]
    return rng.choices(ready, weights=[t.weight for t in ready])[0]


def _pick_input(rng: random.Random, tables: list[str]) -> str:
    # lean on recent tables so the DAG grows deep as well as wide
    if rng.random() < 0.6:
        return rng.choice(tables[-6:])
    return rng.choice(tables)


def _pick_param(rng: random.Random, name: str) -> Any:
    if name == "types":
        return sorted(rng.sample(EVENT_TYPES, rng.randint(1, 3)))
    if name == "statuses":
        return sorted(rng.sample(STATUSES, rng.randint(1, 4)))
    if name == "countries":
        return sorted(rng.sample(COUNTRIES, rng.randint(1, 4)))
    if name == "currency":
        return rng.choice(["EUR", "USD", "GBP"])
    if name == "min_revenue":
        return rng.choice([0, 50, 100, 250, 500])
    if name == "top":
        return rng.choice([10, 25, 50, 100])
    if name == "high":
        return rng.choice([500, 1000, 2500])
    raise KeyError(name)
