"""Python models, for what SQL cannot say: `models/<zone>/<name>.py` defining `model(...)`.

The function's parameters name the tables it reads (`clean__orders` is `clean.orders`), so
dependencies are declared once, by the signature. It receives each as an Arrow table and
returns Arrow (a `pa.Table`, a record batch reader, or anything with `.to_arrow_table()`).

    def model(clean__orders):
        '''Orders per weekday, in Python.'''
        ...
        return pa.table({...})
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlglot import exp

from headwater.contracts import ModelConfig, ModelSidecar
from headwater.contracts.load import load_spec
from headwater.errors import Location, ModelError, UserCodeError
from headwater.models.parse import Model, Ref, audit_refs, model_name, read_text

ENTRY = "model"


def parse_python_model(path: Path, *, root: Path) -> Model:
    """Import `path` and read its `model` function's signature as the model's dependencies."""
    shown = str(path.relative_to(root))
    read_text(path, shown)  # a file that is not UTF-8 is refused with the line of the byte
    function = _load_function(path, shown)
    line = inspect.getsourcelines(function)[1]
    refs = []
    for name in inspect.signature(function).parameters:
        zone, sep, table = name.partition("__")
        if not sep or not zone or not table:
            raise ModelError(
                f"parameter {name!r} does not name a table",
                where=Location(shown, line),
                hint="name each parameter after the table it reads: clean__orders is clean.orders",
            )
        refs.append(Ref(f"{zone}.{table}", line))
    sidecar_file = path.with_suffix(".yml")
    sidecar = (
        load_spec(ModelSidecar, sidecar_file, root=root)
        if sidecar_file.exists()
        else ModelSidecar()
    )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    name = model_name(path, root)
    return Model(
        name=name,
        path=shown,
        config=ModelConfig(description=inspect.getdoc(function)),
        query=exp.select(exp.Star()).from_("_hw_python"),  # stands in for SQL-only tooling
        refs=tuple(refs),
        sidecar=sidecar,
        sidecar_path=str(sidecar_file.relative_to(root)) if sidecar_file.exists() else None,
        function=function,
        source_hash=digest,
        audit_refs=audit_refs(sidecar, name),
    )


def call(model: Model, inputs: Mapping[str, Any], *, native: type | None = None) -> Any:
    """Run the user's function on its inputs (Arrow tables, or an engine's DataFrames); its
    failures are reported as the user's. What it returns as Arrow, or as it is if it is a
    `native` DataFrame (the engine's own, which the engine takes back)."""
    assert model.function is not None
    arguments = {f"{ref.name.replace('.', '__')}": inputs[ref.name] for ref in model.refs}
    try:
        result = model.function(**arguments)
    except (Exception, SystemExit) as err:  # the user's code: anything can happen, all theirs
        raise UserCodeError(
            _raised("the model", err),
            where=Location(model.path, _user_line(err, model.path)),
            hint="traceback (most recent call last):\n" + _user_traceback(err, model.path),
        ) from err
    if native is not None and isinstance(result, native):
        return result
    return _as_arrow(result, model)


def _as_arrow(result: Any, model: Model) -> pa.Table:
    if isinstance(result, pa.Table):
        return result
    if isinstance(result, pa.RecordBatchReader):
        return result.read_all()
    for method in ("to_arrow_table", "arrow"):
        if callable(getattr(result, method, None)):
            table = getattr(result, method)()
            return table.read_all() if isinstance(table, pa.RecordBatchReader) else table
    raise UserCodeError(
        f"the model returned {type(result).__name__}, not Arrow",
        where=Location(model.path),
        hint="return a pyarrow.Table (or a DuckDB relation)",
    )


def _load_function(path: Path, shown: str) -> Callable[..., Any]:
    name = f"headwater_user_models.{path.parent.name}.{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelError("cannot import this Python model", where=Location(shown))
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:
        raise ModelError(
            f"Python syntax error: {err.msg}", where=Location(shown, err.lineno)
        ) from None
    except (Exception, SystemExit) as err:  # importing user code may raise anything
        raise UserCodeError(
            _raised("importing the model", err),
            where=Location(shown, _user_line(err, str(path))),
        ) from err
    sys.modules.pop(name, None)
    function = getattr(module, ENTRY, None)
    if not callable(function):
        raise ModelError(
            f"a Python model defines a function named `{ENTRY}`",
            where=Location(shown),
            hint="def model(clean__orders): ... return a pyarrow.Table",
        )
    return function  # type: ignore[no-any-return]


def _raised(what: str, err: BaseException) -> str:
    """`the model raised KeyError: 'x'`; an exit is the model's failure, not the run's end."""
    if isinstance(err, SystemExit):
        return f"{what} called sys.exit({err.code!r}); a model returns a table instead"
    return f"{what} raised {type(err).__name__}: {err}"


def _user_frames(err: BaseException, path: str) -> list[traceback.FrameSummary]:
    frames = traceback.extract_tb(err.__traceback__)
    mine = [f for f in frames if f.filename.endswith(path)]
    return mine or list(frames)


def _user_line(err: BaseException, path: str) -> int | None:
    frames = _user_frames(err, path)
    return frames[-1].lineno if frames else None


def _user_traceback(err: BaseException, path: str) -> str:
    frames = traceback.extract_tb(err.__traceback__)
    start = next((i for i, f in enumerate(frames) if f.filename.endswith(path)), 0)
    lines = traceback.format_list(frames[start:])
    return "".join(lines) + f"{type(err).__name__}: {err}"
