"""Raw batches held back from readers: a blocking contract rule failed on them."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from headwater.zones.catalog.base import CatalogBase
from headwater.zones.catalog.schema import held_batches


class HoldsStore(CatalogBase):
    """Raw batches held back from readers: a blocking contract rule failed on them."""

    def hold(self, table: str, batch_id: str, *, reason: str, now: datetime) -> None:
        with self._tx() as conn:
            conn.execute(
                held_batches.delete().where(
                    held_batches.c.table_name == table, held_batches.c.batch_id == batch_id
                )
            )
            conn.execute(
                held_batches.insert().values(
                    table_name=table, batch_id=batch_id, reason=self._scrub(reason), held_at=now
                )
            )

    def release(self, table: str, batch_id: str, *, now: datetime) -> None:
        with self._tx() as conn:
            conn.execute(
                held_batches.update()
                .where(held_batches.c.table_name == table, held_batches.c.batch_id == batch_id)
                .values(released_at=now)
            )

    def held(self, table: str) -> dict[str, str]:
        """Batch id → why it is held, for the batches of `table` readers must not see."""
        return self.held_all().get(table, {})

    def held_all(self) -> dict[str, dict[str, str]]:
        """Table → its held batches (batch id → why): one query for every raw table."""
        query = sa.select(
            held_batches.c.table_name, held_batches.c.batch_id, held_batches.c.reason
        ).where(held_batches.c.released_at.is_(None))
        out: dict[str, dict[str, str]] = {}
        with self.engine.connect() as conn:
            for table, batch, reason in conn.execute(query):
                out.setdefault(table, {})[batch] = reason
        return out

    def releases(self) -> dict[str, int]:
        """Table → how many of its batches were ever released (models that read a table
        built while a batch was held must take the released batch in)."""
        query = (
            sa.select(held_batches.c.table_name, sa.func.count())
            .where(held_batches.c.released_at.is_not(None))
            .group_by(held_batches.c.table_name)
        )
        with self.engine.connect() as conn:
            return {table: int(n) for table, n in conn.execute(query)}
