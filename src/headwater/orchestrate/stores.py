"""Open the three stores a project's settings name: catalog, lake and warehouse."""

from __future__ import annotations

from dataclasses import dataclass

from headwater.engine.duckdb import DuckDBEngine
from headwater.errors import SpecError
from headwater.project import Project
from headwater.zones.catalog import Catalog, catalog_url
from headwater.zones.lake import Lake


@dataclass
class Stores:
    """The catalog database, the Iceberg lake and the warehouse engine of one project."""

    catalog: Catalog
    lake: Lake
    engine: DuckDBEngine

    @classmethod
    def open(cls, project: Project) -> Stores:
        settings = project.settings
        if settings.engine != "duckdb":
            raise SpecError(
                f"engine {settings.engine!r} is not available in this version",
                hint="use `engine: duckdb` (Spark and PostgreSQL engines come later)",
            )
        url = catalog_url(settings.catalog, project.root)
        engine = DuckDBEngine(project.root / settings.warehouse)
        return cls(Catalog(url), Lake(url, settings.lake, project.root), engine)

    def close(self) -> None:
        self.engine.close()
        self.catalog.close()
