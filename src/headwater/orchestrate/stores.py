"""Open the three stores a project's settings name: catalog, lake and warehouse.

Opening is where a bad `catalog:`, `lake:` or `warehouse:` setting shows, so every failure
becomes one `StoreError` naming the line of `headwater.yml`, with every `${VAR}` value the
project refers to scrubbed out. Files are private while the stores are open (see `Privacy`).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlparse

from headwater.contracts.load import locate
from headwater.contracts.secrets import Secrets
from headwater.engine import Engine, open_engine, open_spark
from headwater.engine.base import S3_SCHEMES
from headwater.errors import HeadwaterError, Location, SpecError, StoreError
from headwater.project import SETTINGS_FILE, Project
from headwater.zones.catalog import Catalog, catalog_url
from headwater.zones.lake import Lake

T = TypeVar("T")
# schemes pyiceberg's file IO writes to (pyarrow or fsspec)
LAKE_SCHEMES = ("file", "s3", "s3a", "s3n", "gs", "gcs", "abfs", "abfss", "hdfs", "viewfs", "oss")
PRIVATE_UMASK = 0o077


@dataclass
class Stores:
    """The catalog database, the Iceberg lake and the warehouse engine of one project."""

    catalog: Catalog
    lake: Lake
    engine: Engine
    secrets: Secrets = field(default_factory=lambda: Secrets({}))
    privacy: Privacy | None = None

    @classmethod
    def open(cls, project: Project) -> Stores:
        """Open (creating them if need be) the stores `headwater.yml` names.

        Raises:
            StoreError: a store cannot be opened: `headwater.yml:<line>: <setting>: why`.
        """
        settings = project.settings
        secrets = project_secrets(project)
        privacy = Privacy.enter(private=settings.private)
        opened: list[Catalog | Engine] = []
        try:
            url = project_catalog_url(project, secrets)
            catalog = _opening(project, "catalog", secrets, lambda: _owned(project, url, secrets))
            opened.append(catalog)
            lake = project_lake(project, url, secrets)
            location = lake.warehouse
            path = _opening(project, "warehouse", secrets, lambda: _warehouse(project, secrets))
            engine = _opening(
                project, "warehouse", secrets, lambda: _engine(project, path, url, lake)
            )
            opened.append(engine)
        except BaseException:
            for store in reversed(opened):
                store.close()
            privacy.exit()
            raise
        privacy.tighten(_state_paths(project, url, location, str(path)))
        return cls(catalog, lake, engine, secrets, privacy)

    def close(self) -> None:
        try:
            self.engine.close()
            self.catalog.close()
        finally:
            if self.privacy is not None:
                self.privacy.exit()


@dataclass
class LakeStores:
    """The catalog and the lake without the warehouse: what a long-running stream worker
    holds, so that builds and `headwater sql` can open the warehouse while it runs."""

    catalog: Catalog
    lake: Lake
    secrets: Secrets
    privacy: Privacy

    @classmethod
    def open(cls, project: Project) -> LakeStores:
        """Open the catalog and the lake `headwater.yml` names (see `Stores.open`)."""
        secrets = project_secrets(project)
        privacy = Privacy.enter(private=project.settings.private)
        try:
            url = project_catalog_url(project, secrets)
            catalog = _opening(project, "catalog", secrets, lambda: _owned(project, url, secrets))
            try:
                lake = project_lake(project, url, secrets)
            except BaseException:
                catalog.close()
                raise
        except BaseException:
            privacy.exit()
            raise
        return cls(catalog, lake, secrets, privacy)

    def close(self) -> None:
        try:
            self.catalog.close()
        finally:
            self.privacy.exit()


PROJECT_FACT = "project"


def _owned(project: Project, url: str, secrets: Secrets) -> Catalog:
    """The catalog at `url`, claimed for `project` on first use: one project's plan, build or
    rollback never reads or moves another's pointers.

    Raises:
        StoreError: the catalog belongs to another project (another `name:`).
    """
    catalog = Catalog(url, scrub=secrets.scrub)
    name = project.settings.name
    try:
        owner = catalog.fact(PROJECT_FACT)
        if owner is None:
            catalog.set_fact(PROJECT_FACT, name)
            owner = catalog.fact(PROJECT_FACT)
        if owner != name:
            raise StoreError(
                f"the catalog belongs to project {owner!r}, not {name!r}: its environments, "
                "versions and releases are that project's; nothing was read or changed",
                hint=f"give this project its own `catalog:` (e.g. .headwater/catalog.db); if "
                f"you renamed the project, set `name: {owner}` back in headwater.yml",
            )
    except BaseException:
        catalog.close()
        raise
    return catalog


def pinned_columns(project: Project, url: str) -> dict[str, dict[str, str]]:
    """The columns pinned for each landed table whose contract declares none (inferred when
    it first landed, as a seed's are), from the lake whose catalog is at `url`."""
    undeclared = [c for c in project.contracts.values() if not c.columns]
    if not undeclared:
        return {}
    lake = project_lake(project, url)
    out = {}
    for contract in undeclared:
        pinned = lake.properties(contract.table).get(f"schema.{contract.schema_version}")
        if pinned:
            out[contract.table] = {c["name"]: c["type"] for c in json.loads(pinned)}
    return out


def project_lake(project: Project, url: str, secrets: Secrets | None = None) -> Lake:
    """The lake `headwater.yml` names (`lake:`, reached as `lake_storage:` says), whose
    Iceberg catalog is in the catalog database at `url`.

    Raises:
        StoreError: a storage the lake cannot use, or a folder that cannot hold it.
    """
    secrets = secrets or project_secrets(project)
    location = _opening(project, "lake", secrets, lambda: _lake_location(project, secrets))
    io: dict[str, str] = {}
    filesystem: dict[str, Any] = {}
    if location.split("://", 1)[0].lower() in S3_SCHEMES:
        where = "headwater.yml: lake_storage"
        storage = project.settings.lake_storage.model_copy(
            update={
                name: secrets.expand(value, where=where)
                for name, value in project.settings.lake_storage
                if isinstance(value, str)
            }
        ).resolved(os.environ)
        io, filesystem = storage.iceberg, storage.fsspec

    def opened() -> Lake:
        lake = Lake(url, location, project.root, io=io, filesystem=filesystem)
        lake.reach()
        return lake

    return _opening(project, "lake", secrets, opened)


def project_catalog_url(project: Project, secrets: Secrets | None = None) -> str:
    """The catalog URL of `headwater.yml`, with `${VAR}` (e.g. a password) expanded.

    Raises:
        StoreError: an unknown URL scheme, or a local path that cannot hold the database.
    """
    secrets = secrets or project_secrets(project)
    return _opening(project, "catalog", secrets, lambda: _catalog_url(project, secrets))


def _catalog_url(project: Project, secrets: Secrets) -> str:
    location = secrets.expand(project.settings.catalog, where="headwater.yml: catalog")
    if "://" in location:
        scheme = location.split("://", 1)[0]
        if scheme.split("+")[0] not in ("sqlite", "postgresql", "postgres"):
            raise Unusable(
                f"{scheme}:// is not a catalog database",
                "use a path (.headwater/catalog.db), sqlite:///… or postgresql://…",
            )
        return location.replace("postgres://", "postgresql://", 1)
    _local(project.root / location, folder=False, root=project.root, example="catalog.db")
    return catalog_url(location, project.root)


def project_secrets(project: Project) -> Secrets:
    """A `Secrets` that scrubs the value of every `${VAR}` the settings and contracts use."""
    secrets = Secrets(os.environ)
    settings = project.settings
    for text in (settings.catalog, settings.lake, settings.warehouse):
        secrets.learn(text)
    for text in _strings(settings.lake_storage.model_dump()):
        secrets.learn(text)
    for contract in project.contracts.values():
        for text in _strings(contract.connector.model_dump()):
            secrets.learn(text)
    for channel in settings.alerts:  # a webhook's token, in its URL or a header
        for text in _strings(channel.model_dump()):
            secrets.learn(text)
    return secrets


@dataclass
class Privacy:
    """Files and folders of the stores are created private (0600 and 0700), whatever the
    user's umask, unless `headwater.yml` says `private: false`.

    A restrictive umask while the stores are open is the one mechanism that reaches every
    writer: the lake's files are written by pyiceberg and by DuckDB's COPY, SQLite makes its
    WAL files, DuckDB its temporary folder; a chmod after the fact would leave a window and
    miss files written later. What existed before (a project run with an older headwater, the
    model cache written while loading) is tightened by `tighten` when the stores open.

    The umask belongs to the process, so several stores open at once (a server, tests) share
    one restriction: it starts with the first private open and the user's umask comes back
    with the last close.
    """

    private: bool
    entered: bool = False

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _open: ClassVar[int] = 0
    _previous: ClassVar[int] = 0

    @classmethod
    def enter(cls, *, private: bool) -> Privacy:
        if private:
            with cls._lock:
                if Privacy._open == 0:
                    Privacy._previous = os.umask(PRIVATE_UMASK)
                Privacy._open += 1
        return cls(private, entered=private)

    def exit(self) -> None:
        if not self.entered:
            return
        self.entered = False
        with self._lock:
            Privacy._open -= 1
            if Privacy._open == 0:
                os.umask(Privacy._previous)

    def tighten(self, paths: list[Path]) -> None:
        """Make the local store paths private: folders 0700, files 0600. A folder already
        0700 is trusted to hold private files (so a large lake is walked once, not per run)."""
        if not self.private:
            return
        for path in paths:
            _tighten(path)


def _tighten(path: Path) -> None:
    try:
        mode = path.lstat().st_mode
    except OSError:
        return
    if stat.S_ISREG(mode):
        _chmod(path, mode, 0o600)
    if not stat.S_ISDIR(mode):
        return  # symlinks and the rest are not ours
    trusted = stat.S_IMODE(mode) == 0o700
    _chmod(path, mode, 0o700)
    for child in path.iterdir():
        if not (trusted and stat.S_IMODE(child.lstat().st_mode) in (0o600, 0o700)):
            _tighten(child)


def _chmod(path: Path, mode: int, wanted: int) -> None:
    if stat.S_IMODE(mode) != wanted:
        # a path of another owner is not ours to change; the umask still guards new files
        with contextlib.suppress(OSError):
            path.chmod(wanted)


def _state_paths(project: Project, url: str, lake: str, warehouse: str) -> list[Path]:
    """The local paths the stores own: the state folder, the catalog and warehouse files
    (with their WAL files) and the lake folder."""
    paths = [project.root / ".headwater"]
    if url.startswith("sqlite:///"):
        database = Path(url.removeprefix("sqlite:///"))
        paths += [database.with_name(database.name + s) for s in ("", "-wal", "-shm")]
    if lake.startswith("file://"):
        paths.append(Path(urlparse(lake).path))
    if warehouse != ":memory:":
        paths += [Path(warehouse), Path(warehouse + ".wal")]
    return paths


def _lake_location(project: Project, secrets: Secrets) -> str:
    """The lake's location as a URI (a local folder as file://), checked."""
    location = secrets.expand(project.settings.lake, where="headwater.yml: lake")
    if "://" not in location:
        _local(project.root / location, folder=True, root=project.root)
        # not `as_uri()`: pyiceberg writes to a file URI's path as written, undecoded, so
        # `@`, `:` or a space in a folder name would become `%40`, `%3A`, `%20` on disk
        return "file://" + str((project.root / location).resolve())
    scheme = location.split("://", 1)[0].lower()
    if scheme not in LAKE_SCHEMES:
        raise Unusable(
            f"{scheme}:// is not a storage the lake can use",
            f"use a folder (.headwater/lake) or {', '.join(s + '://' for s in LAKE_SCHEMES[1:6])}",
        )
    return location


def _engine(project: Project, path: Path, catalog_url: str, lake: Lake) -> Engine:
    """The engine `headwater.yml` names, on the warehouse at `path` — or, for Spark, in the
    catalog at `catalog_url` beside the lake at `lake`."""
    try:
        if project.settings.engine == "spark":
            spark = project.settings.spark
            lake.prepare()
            return open_spark(
                catalog_url,
                lake.warehouse,
                master=spark.master,
                remote=spark.remote,
                conf=spark.conf,
                profiles=project.settings.defaults.profile,
                io=lake.io,
            )
        return open_engine(project.settings.engine, path, filesystems=lake.filesystems)
    except SpecError as err:
        err.where = err.where or _where(project, "engine")
        raise


def warehouse_engine(
    project: Project,
    *,
    read_only: bool = False,
    files_under: list[str | Path] | None = None,
    lock_wait: float | None = None,
) -> Engine:
    """The warehouse's engine opened on its own, without the other stores (`headwater sql`,
    `releases`): DuckDB's file as `open_engine` opens it (read-only and sandboxed as asked),
    or a Spark session over the project's catalog and lake. Spark has no read-only mode and
    no sandbox: `read_only` and `files_under` are for its caller to enforce (`headwater sql`
    refuses statements before they run)."""
    secrets = project_secrets(project)
    url = project_catalog_url(project, secrets)
    lake = project_lake(project, url, secrets)
    if project.settings.engine != "spark":
        return open_engine(
            project.settings.engine,
            project.root / project.settings.warehouse,
            read_only=read_only,
            files_under=files_under,
            lock_wait=lock_wait,
            filesystems=lake.filesystems,
        )
    return _opening(project, "engine", secrets, lambda: _engine(project, Path(), url, lake))


def _warehouse(project: Project, secrets: Secrets) -> Path:
    location = secrets.expand(project.settings.warehouse, where="headwater.yml: warehouse")
    if "://" in location:
        raise Unusable(
            f"{location.split('://', 1)[0]}:// is not a place for the warehouse",
            "the DuckDB warehouse is a local file, e.g. .headwater/warehouse.duckdb",
        )
    path = project.root / location
    _local(path, folder=False, root=project.root, example="warehouse.duckdb")
    return path


class Unusable(ValueError):
    """Why a store's location cannot be used, with what to do instead."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.hint = hint


def _local(path: Path, *, folder: bool, root: Path, example: str = "") -> None:
    """Check a local store path before a driver trips on it; create the folders it needs.

    Raises:
        Unusable: why the path cannot hold the store.
    """
    shown = _shown(path, root)
    if folder and path.exists() and not path.is_dir():
        raise Unusable(f"{shown} is a file, not a folder", "name a folder, e.g. .headwater/lake")
    if not folder and path.is_dir():
        raise Unusable(
            f"{shown} is a folder, not a file", f"name a file in it, e.g. {shown}/{example}"
        )
    where = path if folder else path.parent
    blocked = next((p for p in [where, *where.parents] if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise Unusable(
            f"cannot create the folder {_shown(where, root)}: {_shown(blocked, root)} "
            "is not a folder",
            "point it at a folder headwater can write, e.g. under .headwater/",
        )
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise Unusable(
            f"cannot create the folder {_shown(where, root)}: {err.strerror}",
            "point it at a folder headwater can write, e.g. under .headwater/",
        ) from None
    if not os.access(where, os.W_OK | os.X_OK):
        raise Unusable(
            f"cannot write in {_shown(where, root)}: permission denied",
            "point it at a folder headwater can write, or fix the folder's permissions",
        )


def _where(project: Project, setting: str) -> Location:
    return Location(SETTINGS_FILE, locate(project.root / SETTINGS_FILE, (setting,)), setting)


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _opening(project: Project, setting: str, secrets: Secrets, open_: Callable[[], T]) -> T:
    """`open_()`, with any failure turned into a `StoreError` at the setting's line."""
    where = _where(project, setting)
    try:
        return open_()
    except StoreError as err:  # StoreBusy stays what it is (exit 75: try again later)
        if err.where is not None:
            raise
        raise type(err)(err.message, where=where, hint=err.hint) from None
    except SpecError as err:
        if err.where is None:  # an unset ${VAR}
            raise SpecError(err.message, where=where, hint=err.hint) from None
        raise
    except HeadwaterError as err:
        hint = secrets.scrub(err.hint) if err.hint else _hint(setting)
        raise StoreError(secrets.scrub(err.message), where=where, hint=hint) from None
    except Unusable as err:
        raise StoreError(secrets.scrub(str(err)), where=where, hint=err.hint) from None
    except Exception as err:  # a driver's error: its reason is all a user can act on
        raise StoreError(
            secrets.scrub(f"cannot open the {setting}: {_reason(err)}"),
            where=where,
            hint=_hint(setting),
        ) from None


def _reason(err: Exception) -> str:
    """A driver error's own words, without SQLAlchemy's wrapping and links."""
    inner = getattr(err, "orig", None) or err
    text = str(inner).strip() or type(inner).__name__
    if type(err).__name__ == "NoSuchModuleError":
        text = "no database driver for this URL scheme"
    if isinstance(inner, OSError) and inner.strerror:
        text = f"{inner.strerror}: {inner.filename}" if inner.filename else inner.strerror
    return " ".join(text.split("\n")[0].split())


def _hint(setting: str) -> str:
    return {
        "catalog": "check the URL and that the database accepts connections, or use a path "
        "such as .headwater/catalog.db",
        "lake": "point `lake:` at a folder headwater can write, e.g. .headwater/lake",
        "warehouse": "point `warehouse:` at a DuckDB file headwater can write, "
        "e.g. .headwater/warehouse.duckdb",
    }[setting]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


@contextmanager
def scrubbed(stores: Stores) -> Iterator[None]:
    """Re-raise any headwater error with the project's secrets scrubbed from it."""
    try:
        yield
    except HeadwaterError as err:
        err.message = stores.secrets.scrub(err.message)
        err.hint = stores.secrets.scrub(err.hint) if err.hint else None
        err.args = (err.render(),)
        raise
