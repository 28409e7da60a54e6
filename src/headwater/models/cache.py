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
from pathlib import Path
from types import TracebackType
from typing import Any

import pydantic
import sqlglot
from sqlglot import exp

from headwater import __version__
from headwater.contracts import specs
from headwater.contracts.load import load_spec
from headwater.models import parse
from headwater.models.parse import Model, parse_model

FILE = "models.pickle"
_DIGEST = 32  # bytes of a sha256

# a file's content key: the hash of the file and of its sidecar (None: no sidecar)
Key = tuple[bytes, bytes | None]
# one model file: (key, the Model's fields but `query`, its sql_hash, the pickled AST);
# one contract file: (key, the Contract, "", b"")
Entry = tuple[Key, Any, str, bytes]


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
        self._parsed = False

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
        try:
            key = _key(path)
        except OSError:
            return parse_model(path, root=root)  # the parser reports an unreadable file
        entry = self._old.get(shown)
        if entry is not None and entry[0] == key and isinstance(entry[1], dict):
            self._new[shown] = entry
            return _model(entry)
        model = parse_model(path, root=root)
        self._new[shown] = _entry(key, model)
        self._parsed = True
        return model

    def contract(self, path: Path, *, root: Path, name: str) -> specs.Contract:
        """`load_spec(Contract, path, …)`, from the cache when the file is unchanged."""
        shown = str(path.relative_to(root))
        try:
            key: Key = (hashlib.sha256(path.read_bytes()).digest(), None)
        except OSError:
            key = (b"", None)  # the loader reports an unreadable file
        entry = self._old.get(shown)
        if entry is not None and entry[0] == key and isinstance(entry[1], specs.Contract):
            self._new[shown] = entry
            return entry[1]
        contract = load_spec(specs.Contract, path, root=root, extra={"name": name})
        self._new[shown] = (key, contract, "", b"")
        self._parsed = True
        return contract

    def save(self, *, complete: bool) -> None:
        """Write the cache if it changed; `complete`: every model file was parsed."""
        entries = self._new if complete else {**self._old, **self._new}
        if self._parsed or entries.keys() != self._old.keys():
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


def _key(path: Path) -> Key:
    sql = hashlib.sha256(path.read_bytes()).digest()
    try:
        sidecar: bytes | None = hashlib.sha256(path.with_suffix(".yml").read_bytes()).digest()
    except FileNotFoundError:
        sidecar = None
    return sql, sidecar


def _entry(key: Key, model: Model) -> Entry:
    fields = {
        f.name: getattr(model, f.name) for f in dataclasses.fields(Model) if f.name != "query"
    }
    ast = pickle.dumps(model.query, protocol=pickle.HIGHEST_PROTOCOL)
    return key, fields, model.sql_hash, ast


def _model(entry: Entry) -> Model:
    _, fields, sql_hash, ast = entry
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
    for source in [Path(parse.__file__), Path(__file__), *sorted(package.glob("*.py"))]:
        try:
            digest.update(source.read_bytes())
        except OSError:
            digest.update(str(source).encode())
    return digest.digest()
