"""Nothing to do costs nothing: a `headwater build` answered from the state the last one left.

A build decides that every model is up to date from what it reads: the project's files, the
catalog (the lake's current metadata files, held batches, model versions, intervals, the
environment's pointers) and the warehouse (the views and tables the versions live in). None
of them depends on the clock — an `incremental_by_time` model's intervals follow its data.
So when a whole-project build ends with every model published, this module writes a *stamp*:
a digest of all of those inputs as the build left them, and what a build with nothing to do
would report. The next `headwater build` computes the same digest — the project's files
hashed, the catalog's rows read with `sqlite3`, the warehouse file's size and time — and, if
it is unchanged, answers from the stamp without importing the engine, SQL parsing, Iceberg or
SQLAlchemy. Anything else (a file edited, a batch landed, a view dropped by hand, another
headwater, a catalog on PostgreSQL, `${VAR}` in headwater.yml) means the whole build runs.

The digest of the project's files is taken before the build loads them, so a file edited
while the build runs is seen as changed next time. A build answered from the stamp is not a
run: it records nothing (`headwater status` lists the runs that did work or checked).

This module imports the standard library only; the stamp lives beside the parse cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

STAMP = Path(".headwater", "cache", "uptodate.json")
FORMAT = 1
SETTINGS_FILE = "headwater.yml"
# what load_project reads, besides headwater.yml (hidden files and Python caches aside)
PROJECT_FOLDERS = ("contracts", "models", "seeds")
# the catalog tables a build's decisions read; runs, tasks and check results are history
CATALOG_QUERIES = (
    "select * from iceberg_tables order by 1, 2, 3",
    "select table_name, batch_id, released_at from hw_held_batches order by 1, 2",
    "select * from hw_env_pointers order by 1, 2",
    "select name, fingerprint, physical, kind, data_key, inputs, rows from hw_model_versions "
    "order by 1, 2",
    'select name, fingerprint, start, "end" from hw_intervals order by 1, 2, 3, 4',
    "select max(version) from hw_schema",
)


def project_key(root: Path) -> str | None:
    """Digest of the files a build loads and of the code that decides; None when a build of
    this project cannot be answered from a stamp (its settings read the environment)."""
    settings = root / SETTINGS_FILE
    try:
        text = settings.read_bytes()
    except OSError:
        return None
    if b"${" in text:  # where the catalog or warehouse is may change with the environment
        return None
    digest = hashlib.sha256(text)
    for folder in PROJECT_FOLDERS:
        for path in _files(root / folder):
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            try:
                digest.update(hashlib.sha256(path.read_bytes()).digest())
            except OSError:
                return None
    digest.update(_code_key().encode())
    return digest.hexdigest()


def state_key(catalog: Path, warehouse: Path) -> str | None:
    """Digest of the catalog rows a build decides from and of the warehouse file as the last
    writer left it (None: unreadable, so not answerable)."""
    digest = hashlib.sha256()
    for path in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
        try:
            found = path.stat()
            digest.update(
                f"{path.name}:{found.st_size}:{found.st_mtime_ns}:{found.st_ino}".encode()
            )
        except FileNotFoundError:
            digest.update(f"{path.name}:-".encode())
        except OSError:
            return None
    try:
        conn = sqlite3.connect(f"{catalog.as_uri()}?mode=ro", uri=True, timeout=0.2)
    except (sqlite3.Error, ValueError):
        return None
    try:
        for query in CATALOG_QUERIES:
            rows = conn.execute(query).fetchall()
            digest.update(json.dumps(rows, default=str).encode())
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return digest.hexdigest()


def answer(root: Path) -> dict[str, Any] | None:
    """What the last build stamped, when nothing it decided from has changed since: the report
    of a build with nothing to do. None: build."""
    try:
        stamp = json.loads((root / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stamp, dict) or stamp.get("format") != FORMAT:
        return None
    if stamp.get("root") != str(root):  # a copied or moved project: its own state decides
        return None
    if stamp.get("project") != project_key(root):
        return None
    catalog, warehouse = Path(stamp["catalog"]), Path(stamp["warehouse"])
    if stamp.get("state") != state_key(catalog, warehouse):
        return None
    report: dict[str, Any] = stamp["report"]
    return report


def write(
    root: Path,
    project: str,
    *,
    catalog: str,
    warehouse: Path,
    report: dict[str, Any],
    private: bool = True,
) -> bool:
    """Stamp the state a whole-project build left (call once its stores are closed).

    `project`: the project key taken before the build loaded the project; `catalog`: the
    catalog's URL (only a SQLite file can be stamped); `report`: what a build with nothing to
    do reports; `private`: the file is 0600 whatever the umask, as the stores are. Returns
    whether a stamp was written."""
    forget(root)
    if not catalog.startswith("sqlite:///"):
        return False
    catalog_path = Path(catalog.removeprefix("sqlite:///")).resolve()
    state = state_key(catalog_path, warehouse.resolve())
    if state is None:
        return False
    stamp = {
        "format": FORMAT,
        "root": str(root),
        "project": project,
        "catalog": str(catalog_path),
        "warehouse": str(warehouse.resolve()),
        "state": state,
        "report": report,
    }
    path = root / STAMP
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{os.getpid()}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    with os.fdopen(os.open(temporary, flags, 0o600 if private else 0o666), "w") as out:
        if private:
            os.fchmod(out.fileno(), 0o600)
        out.write(json.dumps(stamp))
    temporary.replace(path)
    return True


def forget(root: Path) -> None:
    """Remove the stamp (a build that did not publish everything leaves none)."""
    (root / STAMP).unlink(missing_ok=True)


def _files(folder: Path) -> list[Path]:
    """The files under `folder` a project load may read, in a stable order."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        out += [Path(dirpath, f) for f in sorted(filenames) if not f.startswith(".")]
    return out


def _code_key() -> str:
    """The code that decides: this Python, every package installed beside headwater by name
    and version (their folders' names, e.g. `sqlglot-30.3.1.dist-info`: an upgrade changes
    them), and headwater's own files by size and time (an edit of a checkout changes them)."""
    parts = [sys.version, sys.prefix]
    for folder in sorted({p for p in sys.path if p.endswith("site-packages")}):
        with contextlib.suppress(OSError):
            parts += sorted(os.listdir(folder))
    for path in _files(Path(__file__).resolve().parents[1]):
        found = path.stat()
        parts.append(f"{path}:{found.st_size}:{found.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
