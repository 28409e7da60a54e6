"""The catalog site of `headwater docs`: one folder a browser opens from disk, no server, no
network. `catalog.js` carries the data (a script, so `file://` needs no fetch); `app.js`
renders it with the DOM's text nodes only, so no text of the data is ever read as markup.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

from headwater.errors import UsageError

ASSETS = Path(__file__).with_name("site_assets")
STATIC = ("index.html", "app.js", "style.css")
DATA = "catalog.js"
FILES = frozenset({*STATIC, DATA})
# what JSON leaves as it is and a script must not hold: `</script>`, `<!--`, and the two line
# separators older parsers end a statement at
ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def write_site(out: Path, data: dict[str, Any]) -> Path:
    """Write the site of `data` (`orchestrate.catalog_site.collect`) into the folder `out`,
    replacing the site written there before; returns the path of its `index.html`.

    The folder is written aside and moved into place, so a browser never sees half a site.

    Raises:
        UsageError: `out` is a file, or a folder holding files that are not a site's (it is
            never emptied: `--out .` must not wipe a project).

    Example:
        >>> write_site(Path("shop/.headwater/docs"), collect(project, now=now))
        PosixPath('shop/.headwater/docs/index.html')
    """
    out = Path(out)
    _check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = _aside(out, "new")
    staged.mkdir()  # with the user's umask, as the files in it
    try:
        for name in STATIC:
            shutil.copyfile(ASSETS / name, staged / name)
        (staged / DATA).write_text(catalog_script(data), encoding="utf-8")
        _swap(staged, out)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return out / "index.html"


def catalog_script(data: dict[str, Any]) -> str:
    """`data` as the script `catalog.js`: `window.HEADWATER_CATALOG = {…};`, with every
    character that could end the script or start markup escaped."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    for char, escaped in ESCAPES.items():
        text = text.replace(char, escaped)
    return f"window.HEADWATER_CATALOG = {text};\n"


def _check_replaceable(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file, not a folder", hint="name a folder for the site")
    if out.is_dir():
        others = sorted(p.name for p in out.iterdir() if p.name not in FILES)
        if others:
            raise UsageError(
                f"{out} holds files that are not the catalog site's ({', '.join(others[:3])}"
                f"{', …' if len(others) > 3 else ''}); headwater replaces only a site it wrote",
                hint="name a new or empty folder with --out",
            )


def _swap(staged: Path, out: Path) -> None:
    """Move the staged site to `out`; the old one (if any) leaves in one rename first."""
    if not out.exists():
        staged.rename(out)
        return
    old = _aside(out, "old")
    out.rename(old)
    try:
        staged.rename(out)
    except OSError:
        old.rename(out)  # put the old site back
        raise
    shutil.rmtree(old, ignore_errors=True)


def _aside(out: Path, what: str) -> Path:
    """A hidden sibling of `out` no other writer uses."""
    return out.with_name(f".{out.name}.{what}-{os.getpid()}-{secrets.token_hex(4)}")
