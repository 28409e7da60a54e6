"""Generate a deterministic DAG of realistic models over the example project's clean tables.

Each model comes from a template of templates.yml: SQL with placeholder tables (`_a`, `_b`,
`_c`) and values (`:name`), parsed once by sqlglot and bound on the AST, never formatted as
text. A template turns inputs of known shapes (event rows, daily counts, customer profiles,
...) into an output shape, so every generated query reads columns its inputs really have.
A template may set the model's `kind` (default `table`) and `time_column`; the interval bounds
`:start` and `:end` of an `incremental_by_time` model stay parameters, bound by headwater.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlglot
import yaml
from sqlglot import exp

ZONE = "bench"
BOUNDS = ("start", "end")  # interval parameters headwater binds itself, never drawn here
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
    kind: str = "table"
    time_column: str | None = None  # incremental_by_time: the column an interval owns


@dataclass(frozen=True)
class GeneratedModel:
    name: str  # short name inside the bench zone
    template: str
    reads: tuple[str, ...]  # zone.name of each input
    query: exp.Query
    grain: tuple[str, ...]
    kind: str = "table"
    time_column: str | None = None

    def text(self) -> str:
        header: dict[str, Any] = {"kind": self.kind}
        if self.time_column:
            header["time_column"] = self.time_column
        header["description"] = f"bench: {self.template} over " + ", ".join(self.reads)
        if self.grain:
            header["grain"] = list(self.grain)
        return (
            "/* headwater\n"
            + yaml.safe_dump(header, sort_keys=False)
            + "*/\n"
            + self.query.sql(dialect="duckdb", pretty=True)
            + "\n"
        )


def load_templates(path: Path) -> list[Template]:
    """The templates of a YAML file like templates.yml."""
    return [
        Template(
            name=t["name"],
            inputs=tuple(t["reads"]),
            output=t["gives"],
            sql=t["sql"],
            weight=t["weight"],
            grain=tuple(t.get("grain", ())),
            params=tuple(t.get("params", ())),
            kind=t.get("kind", "incremental_by_time" if t.get("time_column") else "table"),
            time_column=t.get("time_column"),
        )
        for t in yaml.safe_load(path.read_text("utf-8"))
    ]


TEMPLATES = load_templates(Path(__file__).parent / "templates.yml")
PLACEHOLDER_TABLES = ("_a", "_b", "_c")


def generate(
    count: int,
    *,
    seed: int = 42,
    templates: Sequence[Template] = TEMPLATES,
    base: Mapping[str, str] = BASE,
) -> list[GeneratedModel]:
    """`count` models, each reading 1 to 3 `base` tables or earlier models, the same for a seed.

    `base` maps each table the DAG starts from to its shape.
    """
    rng = random.Random(seed)
    parsed = {t.name: sqlglot.parse_one(t.sql, dialect="duckdb") for t in templates}
    by_shape: dict[str, list[str]] = {}
    for table, shape in base.items():
        by_shape.setdefault(shape, []).append(table)
    width = max(3, len(str(count)))
    models: list[GeneratedModel] = []
    seen: set[tuple[Any, ...]] = set()
    for _ in range(1000 * count):
        if len(models) == count:
            break
        template = _pick_template(rng, templates, by_shape)
        reads = tuple(_pick_input(rng, by_shape[shape]) for shape in template.inputs)
        params = {p: _pick_param(rng, p) for p in template.params}
        key = (template.name, reads, repr(sorted(params.items())))
        if key in seen or len(set(reads)) < len(reads):
            continue
        seen.add(key)
        name = f"{template.name}_{len(models):0{width}d}"
        query = bind(
            parsed[template.name], dict(zip(PLACEHOLDER_TABLES, reads, strict=False)), params
        )
        models.append(
            GeneratedModel(
                name,
                template.name,
                reads,
                query,
                template.grain,
                template.kind,
                template.time_column,
            )
        )
        by_shape.setdefault(template.output, []).append(f"{ZONE}.{name}")
    if len(models) < count:
        raise RuntimeError(f"only {len(models)} distinct models could be drawn")
    return models


def write(models: Sequence[GeneratedModel], project: Path) -> None:
    """Write the models into `project/models/bench/`, replacing what was there."""
    folder = project / "models" / ZONE
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.sql"):
        old.unlink()
    for model in models:
        (folder / f"{model.name}.sql").write_text(model.text(), encoding="utf-8")


def bind(
    template: exp.Expression, tables: Mapping[str, str], params: Mapping[str, Any]
) -> exp.Query:
    """Put real tables in place of `_a`/`_b`/`_c` and literals in place of `:name`.

    `:start` and `:end` stay: they are the interval bounds headwater binds on each run.
    """
    query = template.copy()
    for table in list(query.find_all(exp.Table)):
        if not table.db and table.name in tables:
            target = exp.to_table(tables[table.name])
            target.set("alias", table.args.get("alias"))
            table.replace(target)
    for placeholder in list(query.find_all(exp.Placeholder)):
        if placeholder.name in BOUNDS:
            continue
        value = params[placeholder.name]
        if isinstance(value, list) and isinstance(placeholder.parent, exp.In):
            placeholder.parent.set("expressions", [exp.convert(v) for v in value])
        else:
            placeholder.replace(exp.convert(value))
    assert isinstance(query, exp.Query)
    return query


def _pick_template(
    rng: random.Random, templates: Sequence[Template], by_shape: Mapping[str, list[str]]
) -> Template:
    ready = [
        t for t in templates if all(len(by_shape.get(s, ())) >= t.inputs.count(s) for s in t.inputs)
    ]
    return rng.choices(ready, weights=[t.weight for t in ready])[0]


def _pick_input(rng: random.Random, tables: list[str]) -> str:
    # lean on recent tables so the DAG grows deep as well as wide
    if rng.random() < 0.6:
        return rng.choice(tables[-6:])
    return rng.choice(tables)


def _pick_param(rng: random.Random, name: str) -> Any:
    return PARAMS[name](rng)


PARAMS: dict[str, Callable[[random.Random], Any]] = {
    "types": lambda rng: sorted(rng.sample(EVENT_TYPES, rng.randint(1, 2))),
    "statuses": lambda rng: sorted(rng.sample(STATUSES, rng.randint(1, 4))),
    "countries": lambda rng: sorted(rng.sample(COUNTRIES, rng.randint(1, 4))),
    "currency": lambda rng: rng.choice(["EUR", "USD", "GBP"]),
    "min_revenue": lambda rng: rng.choice([0, 50, 100, 250, 500]),
    "top": lambda rng: rng.choice([10, 25, 50, 100]),
    "high": lambda rng: rng.choice([500, 1000, 2500]),
}
