"""Model versions, their done intervals, and the environments that point at them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from headwater.zones.catalog.records import ModelVersion
from headwater.zones.catalog.releases import NewRelease, Pointer, ReleasesStore, point
from headwater.zones.catalog.schema import env_pointers, intervals, model_versions


class VersionsStore(ReleasesStore):
    """Model versions, their done intervals, and the environments that point at them."""

    def model_versions(self) -> dict[tuple[str, str], ModelVersion]:
        """Every recorded version by (name, fingerprint): one query per run, not per model."""
        with self.engine.connect() as conn:
            rows = conn.execute(model_versions.select())
            return {(v.name, v.fingerprint): v for v in (_version_of(r._mapping) for r in rows)}

    def all_intervals(self) -> dict[tuple[str, str], list[tuple[datetime, datetime]]]:
        """The done ranges of every incremental version, by (name, fingerprint): one query
        per build, not one per model."""
        query = sa.select(
            intervals.c.name, intervals.c.fingerprint, intervals.c.start, intervals.c.end
        ).order_by(intervals.c.name, intervals.c.fingerprint, intervals.c.start)
        out: dict[tuple[str, str], list[tuple[datetime, datetime]]] = {}
        with self.engine.connect() as conn:
            for name, fp, lo, hi in conn.execute(query):
                out.setdefault((name, fp), []).append((lo, hi))
        return out

    def published_rows(self, env: str) -> dict[str, int | None]:
        """Rows of the version each model of `env` points at, as recorded when it was built."""
        join = env_pointers.join(
            model_versions,
            sa.and_(
                env_pointers.c.name == model_versions.c.name,
                env_pointers.c.fingerprint == model_versions.c.fingerprint,
            ),
        )
        query = (
            sa.select(env_pointers.c.name, model_versions.c.rows)
            .select_from(join)
            .where(env_pointers.c.env == env)
        )
        with self.engine.connect() as conn:
            return {name: rows for name, rows in conn.execute(query)}

    def publish_all(
        self,
        built: Sequence[tuple[ModelVersion, Sequence[tuple[datetime, datetime]] | None]],
        *,
        env: str,
        run_id: str,
        now: datetime,
        release: NewRelease | None = None,
    ) -> int | None:
        """Record built versions with their done intervals and point `env` at them, in ONE
        catalog transaction (per-model transactions would queue on SQLite's write lock) —
        with `release`, the one that records the environment's pointers as a new, pending
        release (its id is returned; `finish_release` once the warehouse shows it)."""
        if not built and release is None:
            return None
        names = [v.name for v, _ in built]
        keys = [(v.name, v.fingerprint) for v, _ in built]
        incremental = [(v.name, v.fingerprint) for v, done in built if done is not None]
        # deletes by key run as one executemany each, not one statement per model
        with self._tx() as conn:
            # a release stays pending until the warehouse shows it; its undo puts back
            # the pointers this transaction moves, should it never
            undo = None if release is None else self.pointers_before(conn, env, names)
            if not built and release is not None:  # the pointers stand; they are released
                return self.write_release(conn, env, release, run_id=run_id, now=now, undo=undo)
            if incremental:
                conn.execute(
                    intervals.delete().where(
                        intervals.c.name == sa.bindparam("n"),
                        intervals.c.fingerprint == sa.bindparam("f"),
                    ),
                    [{"n": name, "f": fp} for name, fp in incremental],
                )
            done_rows = [
                {"name": v.name, "fingerprint": v.fingerprint, "start": lo, "end": hi}
                for v, done in built
                for lo, hi in done or []
            ]
            if done_rows:
                conn.execute(intervals.insert(), done_rows)
            conn.execute(
                model_versions.delete().where(
                    model_versions.c.name == sa.bindparam("n"),
                    model_versions.c.fingerprint == sa.bindparam("f"),
                ),
                [{"n": name, "f": fp} for name, fp in keys],
            )
            conn.execute(
                model_versions.insert(),
                [
                    {
                        **v.__dict__,
                        "inputs": json.dumps(v.inputs),
                        "built_at": now,
                        "run_id": run_id,
                    }
                    for v, _ in built
                ],
            )
            conn.execute(
                env_pointers.delete().where(
                    env_pointers.c.env == env, env_pointers.c.name.in_(names)
                )
            )
            point(conn, env, [(v.name, v.physical, v.fingerprint) for v, _ in built], now)
            if release is None:
                return None
            return self.write_release(conn, env, release, run_id=run_id, now=now, undo=undo)

    def pointers(self, env: str) -> dict[str, str]:
        """Logical name → physical table for every model of `env`."""
        query = sa.select(env_pointers.c.name, env_pointers.c.physical).where(
            env_pointers.c.env == env
        )
        with self.engine.connect() as conn:
            return {name: physical for name, physical in conn.execute(query)}

    def pointer_rows(self, env: str) -> list[Pointer]:
        """The pointers of `env` with the fingerprint of each version."""
        query = sa.select(
            env_pointers.c.name, env_pointers.c.physical, env_pointers.c.fingerprint
        ).where(env_pointers.c.env == env)
        with self.engine.connect() as conn:
            return [Pointer(n, p, f) for n, p, f in conn.execute(query)]

    def environments(self) -> list[str]:
        """Every environment that points at something."""
        with self.engine.connect() as conn:
            return [e for (e,) in conn.execute(sa.select(env_pointers.c.env).distinct())]

    def unpublish(self, names: Sequence[str], *, env: str) -> None:
        """Remove the pointers of `names` from `env` (models removed from the project)."""
        if names:
            with self._tx() as conn:
                conn.execute(
                    env_pointers.delete().where(
                        env_pointers.c.env == env, env_pointers.c.name.in_(list(names))
                    )
                )


def _version_of(m: Any) -> ModelVersion:
    return ModelVersion(
        m["name"],
        m["fingerprint"],
        m["physical"],
        m["kind"],
        m["data_key"],
        m["rows"],
        json.loads(m["inputs"]) if m["inputs"] else {},
        m.get("sql"),
        m.get("meta"),
    )
