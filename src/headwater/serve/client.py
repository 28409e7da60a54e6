"""`headwater.read`: the data API's reads from Python, for notebooks — the same products, the
same parameters, the same release semantics, without a server.

    >>> import headwater
    >>> headwater.read("marts.events_daily", project="shop", where={"event_type": "eq.search"},
    ...                sort="-day", as_of=3)                              # doctest: +SKIP
    pyarrow.Table …
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from headwater.change.versions import PROD
from headwater.contracts.specs import Serving
from headwater.errors import UsageError
from headwater.project import load_project
from headwater.serve.errors import ApiError
from headwater.serve.query import parse
from headwater.serve.reader import Reader, columns_of

_ALL = Serving(max_limit=1_000_000, default_limit=1_000_000, aggregates=True)


def read(
    model: str,
    *,
    project: str | Path = ".",
    env: str = PROD,
    as_of: int | None = None,
    fields: Sequence[str] | None = None,
    where: Mapping[str, str | Sequence[str]] | None = None,
    sort: str | None = None,
    limit: int | None = None,
    group_by: Sequence[str] | None = None,
    aggregate: Sequence[str] | None = None,
    role: str | None = None,
    output: Literal["arrow", "pandas", "polars"] = "arrow",
) -> Any:
    """Read a served model's published data as `env`'s current release serves it (or as
    release `as_of` did): every row, or `limit`.

    `where` maps a column to a filter as the API writes it (`"gte.10"`, `"in.(a,b)"`), or to
    a list of them; `sort` is `"-a,b"`; `aggregate` items are `count`, `sum(x)`, ….
    `role` reads as that policies.yml role would (its grants, masks and row policy); without
    one, as the project's owner (who can read the warehouse anyway).

    Raises:
        UsageError: the model is not served or published, a parameter is not valid, or the
            release asked for is not kept.
    """
    loaded = load_project(project)
    params: list[tuple[str, str]] = []
    for column, filters in (where or {}).items():
        for text in [filters] if isinstance(filters, str) else filters:
            params.append((f"where.{column}", text))
    if fields:
        params.append(("fields", ",".join(fields)))
    if sort:
        params.append(("sort", sort))
    if group_by:
        params.append(("group_by", ",".join(group_by)))
    if aggregate:
        params.append(("aggregate", ",".join(aggregate)))
    reader = Reader(loaded, env=env)
    try:
        source = reader.source(model, as_of=as_of)
        if role is None:
            columns, policy = columns_of(source.schema), None
        else:
            from headwater.serve.access import Access, Caller

            access = Access(loaded, reader.catalog)
            if role not in access.policies.roles:
                raise ApiError(400, f"no role {role!r} in policies.yml")
            caller = Caller(None, role, access.policies.roles[role])
            columns, policy = access.view(caller, model, source.schema)
        request = dataclasses.replace(parse(params, columns, _ALL), limit=limit)
        table = reader.everything(source, request, columns, row_policy=policy)
    except ApiError as err:
        raise UsageError(f"cannot read {model}: {err.message}", hint=err.hint) from None
    finally:
        reader.close()
    if output == "arrow":
        return table
    try:
        if output == "pandas":
            import pandas  # type: ignore[import-untyped]  # noqa: F401  (to_pandas needs it)

            return table.to_pandas()
        import polars

        return polars.from_arrow(table)
    except ImportError:
        raise UsageError(
            f"output={output!r} needs {output}", hint="pip install 'headwater[notebook]'"
        ) from None
