"""Open the three stores a project's settings name: catalog, lake and warehouse."""

from __future__ import annotations

import os
from dataclasses import dataclass

from headwater.contracts.secrets import Secrets
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
        url = project_catalog_url(project)
        lake = Secrets(os.environ).expand(settings.lake, where="headwater.yml: lake")
        engine = DuckDBEngine(project.root / settings.warehouse)
        return cls(Catalog(url), Lake(url, lake, project.root), engine)

    def close(self) -> None:
        self.engine.close()
        self.catalog.close()


def project_catalog_url(project: Project) -> str:
    """The catalog URL of `headwater.yml`, with `${VAR}` (e.g. a password) expanded."""
    location = Secrets(os.environ).expand(project.settings.catalog, where="headwater.yml: catalog")
    return catalog_url(location, project.root)
