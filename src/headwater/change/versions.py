"""Model versions and environments: fingerprints, physical table names, environment views.

A version is a physical table named by its fingerprint (`hw_marts.events_daily__a1b2c3d4e5f6`);
the fingerprint hashes the normalized SQL, the config that shapes the data, and the upstream
fingerprints, so formatting-only edits keep it and any upstream change moves it. An
environment is a set of pointers `logical name → physical table`, exposed as views.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from headwater.models import quote_table

PROD = "prod"


def fingerprint(sql_hash: str, kind: str, upstream: Mapping[str, str]) -> str:
    """Fingerprint of a model version from its SQL hash, kind and upstream fingerprints."""
    payload = json.dumps({"sql": sql_hash, "kind": kind, "up": dict(sorted(upstream.items()))})
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def physical_name(model: str, fp: str) -> str:
    """`marts.events_daily`, `a1b2…` → `hw_marts.events_daily__a1b2…`."""
    zone, name = model.split(".")
    return f"hw_{zone}.{name}__{fp}"


def view_schema(zone: str, env: str = PROD) -> str:
    """Where an environment's views of a zone live: `marts` in prod, `marts__dev` in dev."""
    return zone if env == PROD else f"{zone}__{env}"


def data_key(fp: str, inputs: Mapping[str, str]) -> str:
    """Identity of a version's data: its fingerprint plus what each input held when built."""
    payload = json.dumps({"fp": fp, "in": dict(sorted(inputs.items()))})
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def publish_view(model: str, physical: str, env: str = PROD, *, hide: str | None = None) -> str:
    """`CREATE OR REPLACE VIEW "marts"."events_daily" AS SELECT * FROM "hw_marts"."…"`.

    `hide` names a boolean column whose true rows the view leaves out (tombstones). Text,
    not an AST: it is made for every model built, and quoting is all it needs.
    """
    zone, name = model.split(".")
    view = quote_table(f"{view_schema(zone, env)}.{name}")
    sql = f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {quote_table(physical)}"
    if hide:
        sql += f" WHERE NOT COALESCE({quote_table(hide)}, FALSE)"
    return sql
