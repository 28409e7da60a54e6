"""Ingestion (band 2): connectors yield Arrow batches; `land` conforms and commits them to raw."""

from headwater.ingest.land import Landed, ingest, with_columns

__all__ = ["Landed", "ingest", "with_columns"]
