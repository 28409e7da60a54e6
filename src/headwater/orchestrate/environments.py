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

from headwater.change import online, products
from headwater.change.environments import Environment
from headwater.change.releases import code_version, restorable, who
from headwater.change.versions import PROD, fingerprints, physical_name, view_schema
from headwater.errors import UsageError
from headwater.orchestrate.build import environment_views
from headwater.orchestrate.stores import Stores
from headwater.project import Project
from headwater.zones.catalog import Catalog, NewRelease, Pointer, Release
from headwater.zones.catalog.products import Shown


def fork(
    project: Project,
    stores: Stores,
    env: str,
    *,
    run_id: str,
    now: datetime,
    source: str = PROD,
) -> bool:
    """Start `env` as a copy of `source`'s pointers, if it has none yet; whether it did."""
    if env == source or stores.catalog.pointers(env):
        return False
    repoint(project, stores, source, env, run_id=run_id, now=now, kind="fork")
    return True


def changed(project: Project, catalog: Catalog, env: str) -> set[str]:
    """The models whose version `env` does not show: what a build in it builds (a changed
    model's fingerprint changes every fingerprint downstream, so what reads it is in too) —
    and the forward-only models whose query changed (their one version changes in place)."""
    pointers = catalog.pointers(env)
    out = {
        name
        for name, fp in fingerprints(project).items()
        if pointers.get(name) != physical_name(name, fp)
    }
    forward = [n for n, m in project.models.items() if m.config.forward_only and n not in out]
    if forward:
        versions = {v.physical: v for v in catalog.model_versions().values()}
        for name in forward:
            shown = versions.get(pointers.get(name, ""))
            if shown is not None and shown.sql != project.models[name].normalized_sql:
                out.add(name)
    return out


def promote(
    project: Project, stores: Stores, source: str, target: str, *, run_id: str, now: datetime
) -> list[str]:
    """Point `target` at every version `source` shows, at once (views in one warehouse
    transaction, pointers in one catalog transaction); no model runs. The models whose
    version changed in `target`.

    Raises:
        UsageError: `source` is not an environment, or is `target`.
    """
    recover(stores, now=now)
    known = environments(stores.catalog)
    if source not in known:
        close = difflib.get_close_matches(source, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known) or 'none'}"
        raise UsageError(f"no environment {source!r} to promote", hint=hint)
    if source == target:
        raise UsageError(f"cannot promote {source!r} to itself")
    before = stores.catalog.pointers(target)
    repoint(project, stores, source, target, run_id=run_id, now=now, kind="promote")
    after = stores.catalog.pointers(target)
    return sorted(n for n in set(before) | set(after) if before.get(n) != after.get(n))


def repoint(
    project: Project,
    stores: Stores,
    source: str,
    target: str,
    *,
    run_id: str,
    now: datetime,
    kind: str,
    note: str | None = None,
) -> int:
    """Make `target` show exactly what `source` shows; the release that records it."""
    note = note or f"{kind} from {source}"
    pointers = stores.catalog.pointer_rows(source)
    return _show(project, stores, target, pointers, kind=kind, note=note, run_id=run_id, now=now)


@dataclass(frozen=True)
class RolledBack:
    target: Release  # the release restored
    release: int  # the release the rollback wrote
    changed: list[str]  # models whose data or version changed


def rollback(
    project: Project,
    stores: Stores,
    release_id: int | None,
    env: str,
    *,
    run_id: str,
    now: datetime,
) -> RolledBack:
    """Point `env` at exactly what an earlier release showed (by default, the release
    before its newest), its data included: every view swaps at once, no model runs.

    Raises:
        UsageError: no such release, one of another environment, or one past the retention
            horizon (nothing is changed).
    """
    catalog = stores.catalog
    recover(stores, now=now)
    if release_id is None:
        log = catalog.release_log(env, limit=2)
        if len(log) < 2:
            raise UsageError(
                f"{env!r} has {'one release' if log else 'no release'}: nothing to roll back to",
                hint="see `headwater releases`",
            )
        wanted = log[1]
    else:
        found = catalog.release_by_id(release_id)
        if found is None:
            known = [str(r.id) for r in catalog.release_log(env, limit=10)]
            raise UsageError(
                f"there is no release {release_id}",
                hint=f"the newest of {env!r}: {', '.join(known) or 'none'} (`headwater releases`)",
            )
        if found.env != env:
            raise UsageError(
                f"release {release_id} is of {found.env!r}, not {env!r}",
                hint=f"use --env {found.env}, or promote that environment instead",
            )
        wanted = found
    existing = set(stores.engine.objects())
    restored = restorable(
        catalog,
        wanted,
        catalog.model_versions(),
        existing,
        project.settings.releases,
        now=now,
    )
    before = catalog.pointers(env)
    pointers = list(restored.tables.values())
    note = f"rollback to {wanted.id}"
    new = _show(project, stores, env, pointers, kind="rollback", note=note, run_id=run_id, now=now)
    after = {p.name: p.physical for p in pointers}
    moved = sorted(n for n in set(before) | set(after) if before.get(n) != after.get(n))
    return RolledBack(wanted, new, moved)


def _show(
    project: Project,
    stores: Stores,
    env: str,
    pointers: list[Pointer],
    *,
    kind: str,
    note: str,
    run_id: str,
    now: datetime,
) -> int:
    """Record `pointers` as `env`'s and as a new, pending release in one catalog
    transaction; swap the views to them (dropping those of models not among them) with the
    release's marker in one warehouse transaction; then the release is done."""
    shown = {p.name: p.physical for p in pointers}
    gone = sorted(set(stores.catalog.pointers(env)) - set(shown))
    _schemas(project, stores, env)
    dialect = stores.engine.dialect
    statements = [drop.sql(dialect=dialect) for drop in _drops(gone, env)]
    statements += environment_views(project, shown, dialect, env)
    new = NewRelease(
        kind=kind, created_by=who(), code_version=code_version(project.root), note=note
    )
    if any(m.sidecar.published for m in project.models.values()):
        states = {p.name: Shown(p.name, p.physical, p.fingerprint, p.data_key) for p in pointers}
        products.publish(project, stores.engine, stores.lake, stores.catalog, states, now=now)
    release = stores.catalog.restore_release(env, pointers, new, run_id=run_id, now=now)
    Environment(stores.engine, stores.catalog, env).flip(statements, release)
    stores.catalog.finish_release(release)
    if any(m.sidecar.features for m in project.models.values()):
        online.refresh(project, stores.engine, stores.lake, stores.catalog, env, now=now)
    return release


def recover(stores: Stores, *, now: datetime) -> list[str]:
    """Settle the releases a crash left pending (between the catalog's write and the
    warehouse's flip): done if the warehouse shows them, else their pointers are put back;
    what was settled, in words. Run under the lease, before anything reads the pointers."""
    notes = []
    for release, env, undo in stores.catalog.pending_releases():
        if Environment(stores.engine, stores.catalog, env).shown_release() == release:
            stores.catalog.finish_release(release)
            notes.append(
                f"release {release} of {env}, interrupted after its views flipped, is done"
            )
        else:
            stores.catalog.abandon_release(release, env, undo, now=now)
            notes.append(
                f"release {release} of {env} was interrupted before its views flipped: "
                f"abandoned, {env} shows what it showed before"
            )
    return notes


def _drops(models: list[str], env: str) -> list[exp.Drop]:
    out = []
    for name in models:
        zone, short = name.split(".")
        for view in (short, f"{short}__quarantine"):
            target = exp.table_(view, view_schema(zone, env), quoted=True)
            out.append(exp.Drop(tables=[target], kind="VIEW", exists=True))
    return out


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
