"""The parse cache: SQL models and contracts whose files are unchanged are not parsed again.

One file, `.headwater/cache/models.pickle`, maps each model file to the hash of its `.sql` and
`.yml` and to the parsed model, with the query's AST pickled apart and unpacked on first use;
and each contract file to its hash and the validated contract. An unchanged project therefore
loads without parsing SQL or YAML, and without loading sqlglot's dialects.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import pydantic
import sqlglot
from sqlglot import exp

from headwater import __version__
from headwater.contracts import specs
from headwater.contracts.load import load_spec
from headwater.models import parse, renderer
from headwater.models.parse import Model, parse_model

FILE = "models.pickle"
_DIGEST = 32  # bytes of a sha256

# a file's content key: the hash of the file and of its sidecar (None: no sidecar)
Key = tuple[bytes, bytes | None]
# size and mtime of the file and its sidecar: when they match, the content is not read again
Stat = tuple[tuple[int, int] | None, tuple[int, int] | None]
# one model file: (key, the Model's fields but `query`, its sql_hash, the pickled AST, stat);
# one contract file: (key, the Contract, "", b"", stat)
Entry = tuple[Key, Any, str, bytes, Stat | None]
# a file modified this recently may change again within the clock's granularity and keep
# its stat: its stat is not trusted (git's "racily clean" rule)
_RACY_SECONDS = 2.0


class ModelCache:
    """The parsed models of one project, by file content. Use it as a context manager:

        with ModelCache.open(root / ".headwater" / "cache") as cache:
            model = cache.parse(root / "models" / "clean" / "orders.sql", root=root)

    Leaving the block writes the cache if anything changed. After a complete load it holds
    the files parsed in it (removed models are dropped); after an error it also keeps the
    entries of the files the load did not reach.
    """

    def __init__(self, file: Path, entries: dict[str, Entry]) -> None:
        self.file = file
        self._old = entries
        self._new: dict[str, Entry] = {}
        self._changed = False

    @classmethod
    def open(cls, folder: Path) -> ModelCache:
        """The cache in `folder`; empty if it is missing, unreadable, corrupt or out of date."""
        file = folder / FILE
        return cls(file, _read(file))

    def parse(self, path: Path, *, root: Path) -> Model:
        """`parse_model(path, root=root)`, from the cache when the model's files are unchanged.

        A file with an error raises as `parse_model` does and is never cached.
        """
        shown = str(path.relative_to(root))
        files = (path, path.with_suffix(".yml"))
        try:
            entry, key, stat = self._lookup(shown, files, dict)
        except OSError:
            return parse_model(path, root=root)  # the parser reports an unreadable file
        if entry is not None:
            return _model(entry)
        model = parse_model(path, root=root)
        self._store(shown, _entry(key, model, stat))
        return model

    def contract(self, path: Path, *, root: Path, name: str) -> specs.Contract:
        """`load_spec(Contract, path, …)`, from the cache when the file is unchanged."""
        shown = str(path.relative_to(root))
        try:
            entry, key, stat = self._lookup(shown, (path, None), specs.Contract)
        except OSError:
            entry, key, stat = None, (b"", None), None  # the loader reports it
        if entry is not None:
            return entry[1]  # type: ignore[no-any-return]
        contract = load_spec(specs.Contract, path, root=root, extra={"name": name, "zone": "raw"})
        self._store(shown, (key, contract, "", b"", stat))
        return contract

    def _lookup(
        self, shown: str, files: tuple[Path, Path | None], payload: type
    ) -> tuple[Entry | None, Key, Stat | None]:
        """The cached entry of `files` if they are unchanged (else None), their key and stat.

        Unchanged size and mtime settle it without reading; otherwise the files are hashed.
        """
        stat = _stat(files)
        entry = self._old.get(shown)
        if entry is None or not isinstance(entry[1], payload):
            return None, _key(files), stat
        if stat is not None and entry[4] == stat:
            self._new[shown] = entry
            return entry, entry[0], stat
        key = _key(files)
        if entry[0] != key:
            return None, key, stat
        self._store(shown, (*entry[:4], stat))  # the same content: remember its stat now
        return entry, key, stat

    def _store(self, shown: str, entry: Entry) -> None:
        self._new[shown] = entry
        self._changed = True

    def save(self, *, complete: bool) -> None:
        """Write the cache if it changed; `complete`: every model file was parsed."""
        entries = self._new if complete else {**self._old, **self._new}
        if self._changed or entries.keys() != self._old.keys():
            _write(self.file, entries)

    def __enter__(self) -> ModelCache:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.save(complete=kind is None)


def _key(files: tuple[Path, Path | None]) -> Key:
    """Hash of the file and of its sidecar (None when it has none); raises OSError."""
    main, sidecar = files
    digest = hashlib.sha256(main.read_bytes()).digest()
    try:
        side = hashlib.sha256(sidecar.read_bytes()).digest() if sidecar else None
    except FileNotFoundError:
        side = None
    return digest, side


def _stat(files: tuple[Path, Path | None]) -> Stat | None:
    """Size and mtime of the file and its sidecar; None when one is missing, unreadable or
    modified too recently for its stat to be trusted."""
    now = time.time()
    out: list[tuple[int, int] | None] = []
    for file in files:
        try:
            info = file.stat() if file else None
        except FileNotFoundError:
            info = None
        except OSError:
            return None
        if info is not None and now - info.st_mtime < _RACY_SECONDS:
            return None
        out.append((info.st_size, info.st_mtime_ns) if info else None)
    return out[0], out[1]


def _entry(key: Key, model: Model, stat: Stat | None) -> Entry:
    fields = {
        f.name: getattr(model, f.name) for f in dataclasses.fields(Model) if f.name != "query"
    }
    ast = pickle.dumps(model.query, protocol=pickle.HIGHEST_PROTOCOL)
    return key, fields, model.sql_hash, ast, stat


def _model(entry: Entry) -> Model:
    _, fields, sql_hash, ast, _ = entry
    model = Model(**fields, query=functools.partial(_unpickle_query, ast))
    # fill in the cached_property: computing it would unpack the AST
    model.__dict__["sql_hash"] = sql_hash
    return model


def _unpickle_query(ast: bytes) -> exp.Query:
    query = pickle.loads(ast)
    assert isinstance(query, exp.Query)
    return query


def _read(file: Path) -> dict[str, Entry]:
    """The entries of `file`, or none: a cache is never worth an error."""
    try:
        data = file.read_bytes()
    except OSError:
        return {}
    salt, check, payload = data[:_DIGEST], data[_DIGEST : 2 * _DIGEST], data[2 * _DIGEST :]
    # the checksum catches a torn or damaged file before pickle reads it
    if salt != _salt() or hashlib.sha256(payload).digest() != check:
        return {}
    try:
        entries = pickle.loads(payload)
    except Exception:  # a cache written by other code: anything can fail, all of it is ignored
        return {}
    return entries if isinstance(entries, dict) else {}


def _write(file: Path, entries: dict[str, Entry]) -> None:
    """Write atomically (temporary file, then rename); a folder we cannot write is no error.

    The cache's folder is made only inside an existing one: `.headwater/` is the state folder
    a run creates, and loading a project that was never run (`headwater test`) leaves no trace.
    """
    try:
        payload = pickle.dumps(entries, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # a field that does not pickle costs the cache, never the load
        return
    data = _salt() + hashlib.sha256(payload).digest() + payload
    try:
        file.parent.mkdir(exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.")
    except OSError:
        return
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, file)
    except OSError:
        Path(temporary).unlink(missing_ok=True)


@functools.cache
def _salt() -> bytes:
    """What a cached model depends on besides its files: versions, and the parser's own code.

    The code is hashed too: in a development install the version stays while the parser
    and the spec classes change, and a model parsed by other code must be parsed again.
    """
    digest = hashlib.sha256()
    versions = (__version__, getattr(sqlglot, "__version__", ""), pydantic.VERSION, sys.version)
    digest.update(repr(versions).encode())
    package = Path(specs.__file__).parent
    ours = [Path(parse.__file__), Path(renderer.__file__), Path(__file__)]
    for source in [*ours, *sorted(package.glob("*.py"))]:
        try:
            digest.update(source.read_bytes())
        except OSError:
            digest.update(str(source).encode())
    return digest.digest()
