"""Published data products, the API keys of the data API and its audit log.

A product is one data state of a served model — its name and data key — kept as one snapshot
of an Iceberg table in the lake (`products.<zone>__<table>`). An environment serves, of each
served model, the product of the data its pointer shows; a release serves the products of the
data its pointers held. Serving reads only these, never the warehouse file.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from headwater.zones.catalog.base import CatalogBase
from headwater.zones.catalog.schema import (
    api_keys,
    audit_log,
    env_pointers,
    frozen,
    model_versions,
    products,
    release_pointers,
    releases,
)


@dataclass(frozen=True)
class Product:
    """One published data state of a model."""

    name: str  # the model, e.g. marts.events_daily
    data_key: str
    fingerprint: str
    product: str  # the Iceberg table holding it, e.g. products.marts__events_daily__1a2b3c4d
    snapshot_id: int
    rows: int | None = None


@dataclass(frozen=True)
class Shown:
    """The data an environment's pointer shows: the table read, the version, its data key."""

    name: str
    physical: str
    fingerprint: str
    data_key: str | None


@dataclass(frozen=True)
class ApiKey:
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class Audited:
    """One audited request."""

    at: datetime
    actor: str | None
    role: str | None
    action: str
    subject: str | None
    status: int | None
    detail: dict[str, Any]


class ProductsStore(CatalogBase):
    """Which data states are published as products; API keys; the audit log."""

    def shown(self, env: str, names: Collection[str] | None = None) -> dict[str, Shown]:
        """What `env`'s pointers show: per model, its table and data key (a frozen copy's
        data key for a pointer at a copy)."""
        query = (
            sa.select(
                env_pointers.c.name,
                env_pointers.c.physical,
                env_pointers.c.fingerprint,
                sa.func.coalesce(model_versions.c.data_key, frozen.c.data_key),
            )
            .select_from(
                env_pointers.outerjoin(
                    model_versions,
                    sa.and_(
                        env_pointers.c.name == model_versions.c.name,
                        env_pointers.c.fingerprint == model_versions.c.fingerprint,
                        env_pointers.c.physical == model_versions.c.physical,
                    ),
                ).outerjoin(frozen, env_pointers.c.physical == frozen.c.copy)
            )
            .where(env_pointers.c.env == env)
        )
        if names is not None:
            query = query.where(env_pointers.c.name.in_(list(names)))
        with self.engine.connect() as conn:
            return {n: Shown(n, p, f, k) for n, p, f, k in conn.execute(query)}

    def products_of(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], Product]:
        """The published products of the data states `keys` ((name, data_key)) that have one."""
        wanted = {(n, k) for n, k in keys if k}
        if not wanted:
            return {}
        query = sa.select(products).where(products.c.name.in_(sorted({n for n, _ in wanted})))
        with self.engine.connect() as conn:
            found = [_product(r) for r in conn.execute(query)]
        return {(p.name, p.data_key): p for p in found if (p.name, p.data_key) in wanted}

    def product_at(self, name: str, snapshot_id: int) -> Product | None:
        """The product of `name` held in snapshot `snapshot_id`, if any."""
        query = sa.select(products).where(
            products.c.name == name, products.c.snapshot_id == snapshot_id
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _product(row)

    def record_product(self, product: Product, *, now: datetime) -> None:
        with self._tx() as conn:
            conn.execute(
                products.delete().where(
                    products.c.name == product.name, products.c.data_key == product.data_key
                )
            )
            conn.execute(products.insert().values(**product.__dict__, published_at=now))

    def served(self, env: str, names: Collection[str] | None = None) -> dict[str, Product | None]:
        """Per model `env` shows (of `names`, default all): the product of the data it shows
        (None: not published)."""
        shown = self.shown(env, names)
        found = self.products_of([(s.name, s.data_key) for s in shown.values() if s.data_key])
        return {n: found.get((n, s.data_key or "")) for n, s in shown.items()}

    def released_products(self, release_id: int) -> dict[str, Product | None]:
        """Per model of the release: the product of the data it held (None: not published)."""
        query = sa.select(release_pointers.c.name, release_pointers.c.data_key).where(
            release_pointers.c.release_id == release_id
        )
        with self.engine.connect() as conn:
            held = {n: k for n, k in conn.execute(query)}
        found = self.products_of([(n, k) for n, k in held.items() if k])
        return {n: found.get((n, k or "")) for n, k in held.items()}

    def latest_release(self, env: str) -> int | None:
        """The id of `env`'s newest release a crash did not abandon (a pending one is the
        release whose pointers the catalog holds, its views about to flip)."""
        query = sa.select(sa.func.max(releases.c.id)).where(
            releases.c.env == env, releases.c.state != "abandoned"
        )
        with self.engine.connect() as conn:
            found = conn.execute(query).scalar()
        return None if found is None else int(found)

    def release_env(self, release_id: int) -> tuple[str, str] | None:
        """(environment, state) of a release; None: no such release."""
        query = sa.select(releases.c.env, releases.c.state).where(releases.c.id == release_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else (str(row[0]), str(row[1]))

    def product_tables(self) -> dict[str, set[str]]:
        """Each product table → the data keys of the products it holds."""
        out: dict[str, set[str]] = {}
        with self.engine.connect() as conn:
            for table, key in conn.execute(sa.select(products.c.product, products.c.data_key)):
                out.setdefault(table, set()).add(key)
        return out

    def forget_products(self, tables: Collection[str]) -> None:
        """Forget the products held in the Iceberg `tables` (dropped from the lake)."""
        if tables:
            with self._tx() as conn:
                conn.execute(products.delete().where(products.c.product.in_(list(tables))))

    # ---- API keys --------------------------------------------------------------------------

    def add_api_key(self, name: str, role: str, sha256: str, *, now: datetime) -> None:
        """Record a key's hash (a name already used raises ValueError)."""
        with self._tx() as conn:
            if conn.execute(sa.select(api_keys.c.name).where(api_keys.c.name == name)).first():
                raise ValueError(f"an API key named {name!r} exists already")
            conn.execute(
                api_keys.insert().values(name=name, role=role, sha256=sha256, created_at=now)
            )

    def revoke_api_key(self, name: str, *, now: datetime) -> bool:
        """Revoke a key; False when no live key has that name."""
        with self._tx() as conn:
            done = conn.execute(
                api_keys.update()
                .where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            ).rowcount
        return bool(done)

    def api_keys(self) -> list[ApiKey]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(api_keys.c.name, api_keys.c.role, api_keys.c.created_at)
                .add_columns(api_keys.c.revoked_at)
                .order_by(api_keys.c.name)
            )
            return [ApiKey(*r) for r in rows]

    def key_hashes(self) -> dict[str, tuple[str, str]]:
        """SHA-256 of every live key → (its name, its role)."""
        query = sa.select(api_keys.c.sha256, api_keys.c.name, api_keys.c.role).where(
            api_keys.c.revoked_at.is_(None)
        )
        with self.engine.connect() as conn:
            return {h: (n, r) for h, n, r in conn.execute(query)}

    # ---- audit -----------------------------------------------------------------------------

    def audit(self, entries: Sequence[Audited]) -> None:
        """Append `entries` to the audit log in one transaction."""
        if not entries:
            return
        rows = [
            {
                "at": e.at,
                "actor": e.actor,
                "role": e.role,
                "action": e.action,
                "subject": e.subject,
                "status": e.status,
                "detail": self._text(json.dumps(e.detail, default=str)),
            }
            for e in entries
        ]
        with self._tx() as conn:
            conn.execute(audit_log.insert(), rows)

    def audited(
        self,
        *,
        limit: int = 100,
        subject: str | None = None,
        since: datetime | None = None,
        actions: Collection[str] = (),
    ) -> list[Audited]:
        """The newest audit entries first (`since`: at or after it; `actions`: these only)."""
        query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if subject is not None:
            query = query.where(audit_log.c.subject == subject)
        if since is not None:
            query = query.where(audit_log.c.at >= since)
        if actions:
            query = query.where(audit_log.c.action.in_(list(actions)))
        with self.engine.connect() as conn:
            rows = list(conn.execute(query))
        return [
            Audited(r.at, r.actor, r.role, r.action, r.subject, r.status, _json(r.detail))
            for r in rows
        ]


def _json(text: str | None) -> dict[str, Any]:
    return dict(json.loads(text)) if text else {}


def _product(row: Any) -> Product:
    return Product(
        row.name,
        row.data_key,
        row.fingerprint,
        row.product,
        int(row.snapshot_id),
        None if row.rows is None else int(row.rows),
    )
