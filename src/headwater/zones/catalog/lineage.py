"""Column lineage: one stored hop per row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from headwater.zones.catalog.base import CatalogBase
from headwater.zones.catalog.records import _LINEAGE_FIELDS, LineageRecord
from headwater.zones.catalog.schema import column_lineage


class LineageStore(CatalogBase):
    """Column lineage: one stored hop per row."""

    def replace_column_lineage(
        self, models: Sequence[str], records: Sequence[LineageRecord]
    ) -> None:
        """Replace what is stored for `models` by `records` (their rows), in one transaction."""
        with self._tx() as conn:
            if models:
                conn.execute(column_lineage.delete().where(column_lineage.c.model.in_(models)))
            if records:
                conn.execute(column_lineage.insert(), [r.__dict__ for r in records])

    def column_lineage(self) -> list[LineageRecord]:
        """Every stored hop, by model and output position."""
        query = column_lineage.select().order_by(
            column_lineage.c.model,
            column_lineage.c.position,
            column_lineage.c.upstream_table,
            column_lineage.c.upstream_column,
        )
        return self._lineage(query)

    def upstream_columns(self, table: str, column: str) -> list[LineageRecord]:
        """What `table.column` derives from, one hop up (nothing for a raw table)."""
        query = column_lineage.select().where(
            column_lineage.c.model == table, column_lineage.c.output_column == column
        )
        return self._lineage(
            query.order_by(column_lineage.c.upstream_table, column_lineage.c.upstream_column)
        )

    def downstream_columns(self, table: str, column: str) -> list[LineageRecord]:
        """The model columns that derive from `table.column`, one hop down."""
        query = column_lineage.select().where(
            column_lineage.c.upstream_table == table, column_lineage.c.upstream_column == column
        )
        return self._lineage(query.order_by(column_lineage.c.model, column_lineage.c.position))

    def _lineage(self, query: sa.Select[Any]) -> list[LineageRecord]:
        # positional rows: building records from row mappings costs twice as much at 5k rows
        query = query.with_only_columns(*(column_lineage.c[f] for f in _LINEAGE_FIELDS))
        with self.engine.connect() as conn:
            return [LineageRecord(*r) for r in conn.execute(query)]
