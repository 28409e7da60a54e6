"""Environments beside prod: `dev`, one per branch. A new one starts as a zero-copy copy of
prod's pointers (its views show prod's versions; no table is copied), a build in it builds
only the models whose version differs from what it shows — changed ones and what reads them
— and `promote` re-points another environment at its versions without running any model.

Raw data is shared: landing is prod's (an environment builds from the raw zone as it is).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime

from sqlglot import exp

from headwater.change.environments import Environment
from headwater.change.versions import PROD, physical_name, view_schema
from headwater.errors import UsageError
from headwater.orchestrate.build import environment_views, fingerprints
from headwater.orchestrate.stores import Stores
from headwater.project import Project
from headwater.zones.catalog import Catalog, ModelVersion


def fork(project: Project, stores: Stores, env: str, *, run_id: str, now: datetime) -> bool:
    """Start `env` as a copy of prod's pointers, if it has none yet; whether it did."""
    if env == PROD or stores.catalog.pointers(env):
        return False
    repoint(project, stores, PROD, env, run_id=run_id, now=now)
    return True


def changed(project: Project, catalog: Catalog, env: str) -> set[str]:
    """The models whose version `env` does not show: what a build in it builds (a changed
    model's fingerprint changes every fingerprint downstream, so what reads it is in too)."""
    pointers = catalog.pointers(env)
    return {
        name
        for name, fp in fingerprints(project).items()
        if pointers.get(name) != physical_name(name, fp)
    }


def promote(
    project: Project, stores: Stores, source: str, target: str, *, run_id: str, now: datetime
) -> list[str]:
    """Point `target` at every version `source` shows, at once (views in one warehouse
    transaction, pointers in one catalog transaction); no model runs. The models whose
    version changed in `target`.

    Raises:
        UsageError: `source` is not an environment, or is `target`.
    """
    known = environments(stores.catalog)
    if source not in known:
        close = difflib.get_close_matches(source, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known) or 'none'}"
        raise UsageError(f"no environment {source!r} to promote", hint=hint)
    if source == target:
        raise UsageError(f"cannot promote {source!r} to itself")
    before = stores.catalog.pointers(target)
    repoint(project, stores, source, target, run_id=run_id, now=now)
    after = stores.catalog.pointers(target)
    return sorted(n for n in set(before) | set(after) if before.get(n) != after.get(n))


def repoint(
    project: Project, stores: Stores, source: str, target: str, *, run_id: str, now: datetime
) -> None:
    """Make `target` show exactly what `source` shows."""
    pointers = stores.catalog.pointers(source)
    versions = {v.physical: v for v in stores.catalog.model_versions().values()}
    built: list[tuple[ModelVersion, None]] = [
        (versions[p], None) for p in pointers.values() if p in versions
    ]
    environment = Environment(stores.engine, stores.catalog, target)
    environment.withdraw(sorted(set(environment.pointers()) - set(pointers)))
    _schemas(project, stores, target)
    views = environment_views(project, pointers, stores.engine.dialect, target)
    environment.release(built, views, run_id=run_id, now=now)


def _schemas(project: Project, stores: Stores, env: str) -> None:
    for zone in {m.zone for m in project.models.values()}:
        create = exp.Create(this=exp.to_identifier(view_schema(zone, env), quoted=True))
        create.set("kind", "SCHEMA")
        create.set("exists", True)
        stores.engine.execute(create)


def environments(catalog: Catalog) -> list[str]:
    """Every environment with pointers, prod first."""
    names = catalog.environments()
    return sorted(names, key=lambda n: (n != PROD, n))


@dataclass(frozen=True)
class Difference:
    env: str
    models: int
    changed: list[str]  # shows another version than prod
    only_here: list[str]
    only_in_prod: list[str]


def differences(catalog: Catalog) -> list[Difference]:
    """What each environment shows that prod does not."""
    prod = catalog.pointers(PROD)
    out = []
    for env in environments(catalog):
        if env == PROD:
            continue
        mine = catalog.pointers(env)
        out.append(
            Difference(
                env,
                len(mine),
                sorted(n for n in mine if n in prod and mine[n] != prod[n]),
                sorted(set(mine) - set(prod)),
                sorted(set(prod) - set(mine)),
            )
        )
    return out
