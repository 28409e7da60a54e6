"""Releases: immutable sets of an environment's pointers, and frozen copies of released data.

A release is written in the catalog transaction that moves the environment's pointers, as
pending; the warehouse's views flip with a marker of the release in one warehouse
transaction; then the release is done. A crash between the two is settled on the next start
(`orchestrate.environments.recover`): the marker tells whether the warehouse shows the
release (it is done) or not (the pointers are put back, and it is abandoned), so the log
never disagrees with what readers saw. A version written in place after
a release pinned its data (an incremental model's next run) is first copied aside: the
release then reads the copy (`hw_frozen`), so a rollback restores exactly what it showed.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from headwater.zones.catalog.base import CatalogBase
from headwater.zones.catalog.schema import (
    catalog_facts,
    env_pointers,
    frozen,
    intervals,
    model_versions,
    release_pointers,
    releases,
)


@dataclass(frozen=True)
class Pointer:
    """What a release showed of one model: its version, and the data it held then."""

    name: str
    physical: str  # the table read: the version's own, or a frozen copy of it
    fingerprint: str
    data_key: str | None = None
    rows: int | None = None
    raw: dict[str, int] = field(default_factory=dict)  # raw table → Iceberg snapshot id


@dataclass(frozen=True)
class Release:
    id: int
    env: str
    kind: str  # apply | promote | rollback | run
    created_at: datetime
    created_by: str
    run_id: str | None
    code_version: str | None
    note: str | None
    changed: dict[str, list[str]]  # added, removed, changed (another version), refreshed (data)
    checks: dict[str, Any]
    pointers: dict[str, Pointer]
    state: str = "done"  # or pending: written, its views not yet known to have flipped


@dataclass(frozen=True)
class NewRelease:
    """What the writer of a release knows beyond the pointers: who, why, from which code."""

    kind: str
    created_by: str
    code_version: str | None = None
    note: str | None = None
    checks: dict[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # model → its snapshots


def point(
    conn: sa.Connection, env: str, pointers: Sequence[tuple[str, str, str]], now: datetime
) -> None:
    """Insert `env`'s pointers (name, physical, fingerprint) in `conn`'s transaction."""
    if pointers:
        conn.execute(
            env_pointers.insert(),
            [
                {"env": env, "name": n, "physical": p, "fingerprint": f, "updated_at": now}
                for n, p, f in pointers
            ],
        )


class ReleasesStore(CatalogBase):
    """The release log, frozen copies, and the facts of the catalog itself."""

    def write_release(
        self,
        conn: sa.Connection,
        env: str,
        new: NewRelease,
        *,
        run_id: str,
        now: datetime,
        undo: Mapping[str, tuple[str, str] | None] | None = None,
    ) -> int:
        """Record `env`'s pointers as they stand in `conn`'s transaction as a new release;
        its id. Called inside the transaction that moved them; with `undo` (each moved
        pointer as it was before) the release is pending until `finish_release`."""
        join = env_pointers.outerjoin(
            model_versions,
            sa.and_(
                env_pointers.c.name == model_versions.c.name,
                env_pointers.c.fingerprint == model_versions.c.fingerprint,
                env_pointers.c.physical == model_versions.c.physical,
            ),
        )
        query = (
            sa.select(
                env_pointers.c.name,
                env_pointers.c.physical,
                env_pointers.c.fingerprint,
                model_versions.c.data_key,
                model_versions.c.rows,
            )
            .select_from(join)
            .where(env_pointers.c.env == env)
        )
        copies = {
            r.copy: (r.data_key, r.rows)
            for r in conn.execute(sa.select(frozen.c.copy, frozen.c.data_key, frozen.c.rows))
        }
        previous = self._latest(conn, env)
        before = previous.pointers if previous else {}
        current: dict[str, Pointer] = {}
        for name, physical, fp, key, rows in conn.execute(query):
            if key is None and physical in copies:
                key, rows = copies[physical]
            raw = dict(new.raw.get(name) or {})
            was = before.get(name)
            if not raw and was and (was.physical, was.data_key) == (physical, key):
                raw = was.raw
            current[name] = Pointer(name, physical, fp, key, rows, raw)
        changed = {
            "added": sorted(set(current) - set(before)),
            "removed": sorted(set(before) - set(current)),
            "changed": sorted(
                n
                for n in current
                if n in before and before[n].fingerprint != current[n].fingerprint
            ),
            "refreshed": sorted(
                n
                for n in current
                if n in before
                and before[n].fingerprint == current[n].fingerprint
                and (before[n].physical, before[n].data_key)
                != (current[n].physical, current[n].data_key)
            ),
        }
        inserted = conn.execute(
            releases.insert().values(
                env=env,
                kind=new.kind,
                created_at=now,
                created_by=new.created_by,
                run_id=run_id,
                code_version=new.code_version,
                note=self._text(new.note),
                changed=json.dumps(changed),
                checks=json.dumps(new.checks, default=str),
                state="done" if undo is None else "pending",
                undo=None if undo is None else json.dumps(undo),
            )
        ).inserted_primary_key
        assert inserted is not None
        release_id = int(inserted[0])
        if current:
            conn.execute(
                release_pointers.insert(),
                [
                    {
                        "release_id": release_id,
                        "name": p.name,
                        "physical": p.physical,
                        "fingerprint": p.fingerprint,
                        "data_key": p.data_key,
                        "rows": p.rows,
                        "raw": json.dumps(p.raw) if p.raw else None,
                    }
                    for p in current.values()
                ],
            )
        return int(release_id)

    def restore_release(
        self,
        env: str,
        pointers: Sequence[Pointer],
        new: NewRelease,
        *,
        run_id: str,
        now: datetime,
    ) -> int:
        """Make `env` point at exactly `pointers` and record that as a new, pending release,
        in one transaction (a rollback: no version is recorded or rebuilt)."""
        with self._tx() as conn:
            undo = self.pointers_before(conn, env, None)
            for p in pointers:
                undo.setdefault(p.name, None)
            conn.execute(env_pointers.delete().where(env_pointers.c.env == env))
            point(conn, env, [(p.name, p.physical, p.fingerprint) for p in pointers], now)
            raw = {p.name: p.raw for p in pointers if p.raw}
            return self.write_release(
                conn,
                env,
                NewRelease(**{**new.__dict__, "raw": raw}),
                run_id=run_id,
                now=now,
                undo=undo,
            )

    def pointers_before(
        self, conn: sa.Connection, env: str, names: Collection[str] | None
    ) -> dict[str, tuple[str, str] | None]:
        """`env`'s pointers of `names` (all, if None) as they stand: a pending release's undo."""
        query = sa.select(
            env_pointers.c.name, env_pointers.c.physical, env_pointers.c.fingerprint
        ).where(env_pointers.c.env == env)
        found: dict[str, tuple[str, str] | None] = {
            n: (p, f) for n, p, f in conn.execute(query) if names is None or n in names
        }
        for name in names or ():
            found.setdefault(name, None)
        return found

    def pending_releases(self) -> list[tuple[int, str, dict[str, list[str] | None]]]:
        """(id, env, undo) of every release a crash left pending."""
        query = sa.select(releases.c.id, releases.c.env, releases.c.undo).where(
            releases.c.state == "pending"
        )
        with self.engine.connect() as conn:
            return [(i, e, json.loads(u or "{}")) for i, e, u in conn.execute(query)]

    def finish_release(self, release_id: int) -> None:
        """The warehouse shows the release: it is done."""
        with self._tx() as conn:
            conn.execute(
                releases.update().where(releases.c.id == release_id).values(state="done", undo=None)
            )

    def abandon_release(
        self, release_id: int, env: str, undo: Mapping[str, list[str] | None], *, now: datetime
    ) -> None:
        """The warehouse never showed the release: put `env`'s pointers back as they were
        and mark it abandoned, in one transaction."""
        with self._tx() as conn:
            if undo:
                conn.execute(
                    env_pointers.delete().where(
                        env_pointers.c.env == env, env_pointers.c.name.in_(list(undo))
                    )
                )
                point(conn, env, [(n, p[0], p[1]) for n, p in undo.items() if p], now)
            conn.execute(
                releases.update()
                .where(releases.c.id == release_id)
                .values(state="abandoned", undo=None)
            )

    def release_log(
        self, env: str | None = None, *, limit: int | None = None, pending: bool = False
    ) -> list[Release]:
        """Releases, newest first (of `env` only, if given), with their pointers; `pending`:
        with those a crash left pending too."""
        states = ["done", "pending"] if pending else ["done"]
        query = (
            sa.select(releases).where(releases.c.state.in_(states)).order_by(releases.c.id.desc())
        )
        if env is not None:
            query = query.where(releases.c.env == env)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            rows = list(conn.execute(query))
            return self._with_pointers(conn, rows)

    def release_by_id(self, release_id: int) -> Release | None:
        with self.engine.connect() as conn:
            query = sa.select(releases).where(
                releases.c.id == release_id, releases.c.state == "done"
            )
            rows = list(conn.execute(query))
            found = self._with_pointers(conn, rows)
        return found[0] if found else None

    def release_heads(self) -> list[tuple[int, str, datetime]]:
        """(id, env, created_at) of every release, newest first: what retention looks at."""
        query = (
            sa.select(releases.c.id, releases.c.env, releases.c.created_at)
            .where(releases.c.state == "done")
            .order_by(releases.c.id.desc())
        )
        with self.engine.connect() as conn:
            return [(i, e, at) for i, e, at in conn.execute(query)]

    def released_data(self, release_ids: Collection[int]) -> set[tuple[str, str | None]]:
        """(physical, data_key) of every pointer of the given releases."""
        if not release_ids:
            return set()
        query = (
            sa.select(release_pointers.c.physical, release_pointers.c.data_key)
            .where(release_pointers.c.release_id.in_(list(release_ids)))
            .distinct()
        )
        with self.engine.connect() as conn:
            return {(p, k) for p, k in conn.execute(query)}

    def frozen_copies(self) -> dict[tuple[str, str], tuple[str, int | None]]:
        """(physical, data_key) → (the copy's table, its rows)."""
        with self.engine.connect() as conn:
            return {
                (r.physical, r.data_key): (r.copy, r.rows) for r in conn.execute(sa.select(frozen))
            }

    def record_frozen(
        self, physical: str, data_key: str, copy: str, rows: int | None, *, now: datetime
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                frozen.delete().where(frozen.c.physical == physical, frozen.c.data_key == data_key)
            )
            conn.execute(
                frozen.insert().values(
                    physical=physical, data_key=data_key, copy=copy, rows=rows, created_at=now
                )
            )

    def forget_tables(self, tables: Collection[str]) -> None:
        """Forget the versions and frozen copies stored in `tables` (the janitor dropped
        them), with the done intervals of those versions."""
        if not tables:
            return
        names = list(tables)
        with self._tx() as conn:
            keys = list(
                conn.execute(
                    sa.select(model_versions.c.name, model_versions.c.fingerprint).where(
                        model_versions.c.physical.in_(names)
                    )
                )
            )
            if keys:
                conn.execute(
                    intervals.delete().where(
                        intervals.c.name == sa.bindparam("n"),
                        intervals.c.fingerprint == sa.bindparam("f"),
                    ),
                    [{"n": n, "f": f} for n, f in keys],
                )
            conn.execute(model_versions.delete().where(model_versions.c.physical.in_(names)))
            conn.execute(frozen.delete().where(frozen.c.copy.in_(names)))

    def fact(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(catalog_facts.c.value).where(catalog_facts.c.key == key)
            ).scalar()
        return None if found is None else str(found)

    def put_fact(self, key: str, value: str) -> None:
        """Record `key` as `value`, over what it held."""
        with self._tx() as conn:
            conn.execute(catalog_facts.delete().where(catalog_facts.c.key == key))
            conn.execute(catalog_facts.insert().values(key=key, value=value))

    def set_fact(self, key: str, value: str) -> None:
        """Record `key` once; a second writer's value loses (the first one stands)."""
        with self._tx() as conn:
            if conn.execute(
                sa.select(catalog_facts.c.key).where(catalog_facts.c.key == key)
            ).first():
                return
            conn.execute(catalog_facts.insert().values(key=key, value=value))

    def _latest(self, conn: sa.Connection, env: str) -> Release | None:
        query = (
            sa.select(releases)
            .where(releases.c.env == env, releases.c.state == "done")
            .order_by(releases.c.id.desc())
            .limit(1)
        )
        found = self._with_pointers(conn, list(conn.execute(query)))
        return found[0] if found else None

    def _with_pointers(self, conn: sa.Connection, rows: Sequence[Any]) -> list[Release]:
        if not rows:
            return []
        ids = [r.id for r in rows]
        pointers: dict[int, dict[str, Pointer]] = {i: {} for i in ids}
        query = sa.select(release_pointers).where(release_pointers.c.release_id.in_(ids))
        for p in conn.execute(query):
            pointers[p.release_id][p.name] = Pointer(
                p.name, p.physical, p.fingerprint, p.data_key, p.rows, json.loads(p.raw or "{}")
            )
        return [
            Release(
                r.id,
                r.env,
                r.kind,
                r.created_at,
                r.created_by,
                r.run_id,
                r.code_version,
                r.note,
                json.loads(r.changed),
                json.loads(r.checks),
                pointers[r.id],
                r.state,
            )
            for r in rows
        ]
