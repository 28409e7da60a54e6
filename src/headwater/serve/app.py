"""The data API: one FastAPI app per project and environment (`headwater serve`).

    GET /v1/{zone}/{model}     rows of a served model (filters, sort, fields, pages, formats)
    POST /v1/search/{index}    nearest rows by an embedding (vector indexes)
    GET /v1/features/{view}    latest feature values of entities, each with its status
    GET /v1/models             the models the caller may read, with their columns
    GET /v1/health             liveness, the release served, cache figures
    GET /openapi.json, /docs   the OpenAPI document (its parameters follow the data served)
    GET /metrics               the pipeline's Prometheus metrics (`headwater metrics`)

Every answer names the release it was read from (`X-Headwater-Release`, and `release` in a
JSON body) and the product snapshot (`X-Headwater-Snapshot`); `?as_of=RELEASE` reads an
earlier retained release. An `ETag` (release, snapshot, query) makes `If-None-Match` answer
304 without reading anything. Each request is audited.

`/metrics` asks for no key and is not audited (a scrape every few seconds): Prometheus
scrapers seldom send one, and it shows the pipeline's health only — run, task, table, rule
and alert names with their figures, no data and no error text. It is not in the OpenAPI
document, which describes the data API.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pyarrow as pa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from headwater.change.online import OnlineStore, feature_views
from headwater.change.products import served_models
from headwater.change.versions import PROD
from headwater.errors import HeadwaterError, StoreError, UsageError
from headwater.observe.metrics import exposition, registry
from headwater.orchestrate.metrics import collector
from headwater.project import Project
from headwater.serve.access import Access, Caller
from headwater.serve.audit import AuditTrail
from headwater.serve.cache import Cache, Entry
from headwater.serve.errors import ApiError
from headwater.serve.features import online_features
from headwater.serve.query import (
    FORMATS,
    FUNCTIONS,
    OPERATORS,
    RESERVED,
    Columns,
    Position,
    decode_cursor,
    encode_cursor,
    parse,
    release_param,
)
from headwater.serve.reader import Reader, Source
from headwater.serve.vectors import MAX_K, Search

log = logging.getLogger("headwater.serve")
API = "/v1"
_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "hint": {"type": "string"}},
    "required": ["error"],
}
_PAGE = {
    "type": "object",
    "properties": {
        "model": {"type": "string"},
        "release": {"type": ["integer", "null"]},
        "snapshot": {"type": "integer"},
        "count": {"type": "integer"},
        "next": {"type": ["string", "null"]},
        "data": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["model", "release", "snapshot", "count", "next", "data"],
}


def model_path(model: str) -> str:
    return f"{API}/{model.replace('.', '/')}"


def create_app(project: Project, *, env: str = PROD, cache_bytes: int = 256 << 20) -> FastAPI:
    """The data API of `project`'s environment `env` (its stores opened here, closed when
    the app shuts down)."""
    reader = Reader(project, env=env)
    served = served_models(project)
    access = Access(project, reader.catalog)
    cache = Cache(cache_bytes)
    audit = AuditTrail(reader.catalog)

    def moved(model: str, snapshot: int) -> None:  # its entries can never be asked for again
        cache.drop((model, snapshot))

    reader.on_moved = moved

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        audit.close()
        reader.close()
        for opened in app.state.online:
            opened.close()

    app = FastAPI(
        title=f"{project.settings.name} data API",
        version="1",
        description=f"Published data products of environment `{env}`.",
        lifespan=lifespan,
    )
    app.state.served = served
    app.state.online = []
    app.state.reader, app.state.access, app.state.cache, app.state.audit = (
        reader,
        access,
        cache,
        audit,
    )

    @app.exception_handler(ApiError)
    async def _refused(_: Request, err: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
        return JSONResponse(err.body(), status_code=err.status, headers=headers)

    for model in sorted(served):
        app.add_api_route(
            model_path(model),
            _endpoint(model, project, reader, access, cache, audit),
            methods=["GET"],
            name=model,
            summary=f"Rows of {model}",
            description=project.models[model].sidecar.description or "",
            tags=[model.split(".")[0]],
            responses=_responses(),
            openapi_extra={"parameters": []},
        )

    search = Search(project, reader)
    for name, (model, spec) in sorted(search.indexes.items()):
        app.add_api_route(
            f"{API}/search/{name}",
            _searching(name, model, search, reader, access, audit),
            methods=["POST"],
            name=f"search {name}",
            summary=f"Nearest rows of {model} by {spec.column}",
            description=spec.description or "",
            tags=["search"],
            responses=_responses(page=False, found=True),
        )

    views = feature_views(project)
    store: list[OnlineStore] = app.state.online  # opened on first use, closed with the app
    for name, view in sorted(views.items()):
        app.add_api_route(
            f"{API}/features/{name}",
            _looking_up(name, view.model, project, reader, access, audit, store, env),
            methods=["GET"],
            name=f"features {name}",
            summary=f"Latest features of {name} ({view.model}) by entity key",
            description=view.spec.description or "",
            tags=["features"],
            responses=_responses(page=False, found=True),
            openapi_extra={
                "parameters": [
                    {
                        "name": "key",
                        "in": "query",
                        "required": True,
                        "description": "an entity key (repeat for several; a key of several "
                        "columns is its parts joined by |)",
                        "schema": {"type": "array", "items": {"type": "string"}, "maxItems": 1000},
                        "style": "form",
                        "explode": True,
                    }
                ]
            },
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, err: StarletteHTTPException) -> JSONResponse:
        message = "no such path" if err.status_code == 404 else str(err.detail)
        hint = f"see {API}/models and /docs" if err.status_code == 404 else None
        return JSONResponse(ApiError(err.status_code, message, hint=hint).body(), err.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where}: {first.get('msg', 'invalid')}" if where else "the body is not valid"
        return JSONResponse({"error": message}, status_code=400)

    @app.get(f"{API}/models", tags=["meta"], responses=_responses(page=False))
    def models(request: Request) -> Response:
        caller = access.caller(_key(request))
        out = []
        for model in sorted(served):
            if not caller.role.granted(model):
                continue
            try:
                source = reader.source(model)
            except ApiError:
                out.append({"name": model, "path": model_path(model), "published": False})
                continue
            columns, policy = access.view(caller, model, source.schema)
            described = _described(project, model, source, columns)
            if policy is not None:  # the role sees some rows only: no count of them all
                described["rows"] = None
            out.append(described)
        return _json({"release": reader.release, "models": out})

    @app.get(f"{API}/health", tags=["meta"])
    def health() -> dict[str, Any]:
        return {"status": "ok", "env": env, "release": reader.release, "cache": cache.stats()}

    pipeline = registry(collector(project, reader.catalog, reader.lake), process=True)

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        body, content_type = exposition(pipeline, request.headers.get("accept"))
        return Response(body, headers={"Content-Type": content_type})

    served_at: list[Any] = [object(), None]

    def openapi() -> dict[str, Any]:
        """The document, made again when the release served moved on (its columns may
        have changed)."""
        release = reader.release
        if served_at[0] != release or served_at[1] is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            for model in sorted(served):
                operation = document["paths"][model_path(model)]["get"]
                operation["parameters"] = _parameters(project, reader, model)
                operation["security"] = [{"bearer": []}, {"apiKey": []}, {}]
            document.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            }
            served_at[:] = [release, document]
        return dict(served_at[1])

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _endpoint(
    model: str,
    project: Project,
    reader: Reader,
    access: Access,
    cache: Cache,
    audit: AuditTrail,
) -> Callable[[Request], Response]:
    serving = project.models[model].sidecar.serve
    assert serving is not None

    def read(request: Request) -> Response:
        with _Trail(audit, model, "read", {}) as trail:
            trail.caller = caller = access.caller(_key(request))
            params = list(request.query_params.multi_items())
            source, position = _source(reader, model, params)
            columns, policy = access.view(caller, model, source.schema)
            asked = parse(params, columns, serving)
            fmt = asked.format or _accepted(request.headers.get("accept"))
            trail.detail |= {
                "release": source.release,
                "snapshot": source.product.snapshot_id,
                "as_of": asked.as_of,
                "format": fmt,
                **asked.shape(),
            }
            shape = json.dumps(
                [
                    model,
                    source.product.snapshot_id,
                    caller.role_name,
                    asked.shape(),
                    None if position is None else list(position.keys),
                    fmt,
                ],
                separators=(",", ":"),
                default=str,
            )
            digest = hashlib.sha256(shape.encode()).hexdigest()
            etag = f'"{source.release}-{source.product.snapshot_id}-{digest[:24]}"'
            headers = {
                "ETag": etag,
                "Cache-Control": "no-cache",
                "X-Headwater-Release": str(source.release),
                "X-Headwater-Snapshot": str(source.product.snapshot_id),
            }
            if etag in _tags(request.headers.get("if-none-match")):
                trail.status = 304
                trail.detail["cache"] = "not modified"
                return Response(status_code=304, headers=headers)
            entry = cache.get(digest)
            trail.detail["cache"] = "hit" if entry is not None else "miss"
            if entry is None:
                try:
                    page = reader.page(
                        source,
                        asked,
                        columns,
                        row_policy=policy,
                        after=position,
                        view=(model, caller.role_name),
                    )
                except HeadwaterError as err:
                    raise ApiError(500, f"the read failed: {err.message}") from err
                entry = Entry(
                    _encode(page.data, fmt, source),
                    page.data.num_rows,
                    None if page.next is None else page.next.keys,
                )
                tag = ("as_of", model, source.product.snapshot_id) if source.as_of else None
                cache.put(digest, entry, tag or (model, source.product.snapshot_id))
            following = None
            if entry.next_keys is not None:
                at = Position(
                    source.release, source.product.snapshot_id, asked.sort, entry.next_keys
                )
                following = encode_cursor(at, reader.secret)
            trail.detail["rows"] = entry.rows
            trail.status = 200
            if fmt == "json":
                return Response(
                    _envelope(model, source, entry, following),
                    media_type=FORMATS["json"],
                    headers=headers,
                )
            if following is not None:
                headers["X-Headwater-Next-Cursor"] = following
            return Response(entry.body, media_type=FORMATS[fmt], headers=headers)

    read.__name__ = "read_" + model.replace(".", "_")
    return read


class SearchBody(BaseModel):
    """A nearest-neighbour search."""

    model_config = ConfigDict(extra="forbid")

    vector: list[float] = Field(description="the query embedding", min_length=1, max_length=65536)
    k: int = Field(default=10, ge=1, le=MAX_K, description="rows to return")
    where: dict[str, str | list[str]] = Field(
        default_factory=dict, description="filters as the rows API writes them: {col: 'eq.x'}"
    )
    fields: list[str] | None = Field(default=None, description="columns to return")


def _searching(
    name: str,
    model: str,
    search: Search,
    reader: Reader,
    access: Access,
    audit: AuditTrail,
) -> Callable[[Request, SearchBody], Response]:
    def find(request: Request, body: SearchBody) -> Response:
        with _Trail(audit, model, "search", {"k": body.k, "where": body.where}) as trail:
            trail.caller = caller = access.caller(_key(request))
            source = reader.source(model)
            columns, policy = access.view(caller, model, source.schema)
            found = search.search(
                name,
                source,
                columns,
                policy,
                vector=body.vector,
                k=body.k,
                where=body.where,
                fields=body.fields,
            )
            trail.status = 200
            trail.detail |= {"rows": len(found["results"]), "release": source.release}
            headers = {
                "X-Headwater-Release": str(source.release),
                "X-Headwater-Snapshot": str(source.product.snapshot_id),
            }
            return Response(
                orjson.dumps(found, default=_default), media_type=FORMATS["json"], headers=headers
            )

    find.__name__ = "search_" + name
    return find


def _looking_up(
    name: str,
    model: str,
    project: Project,
    reader: Reader,
    access: Access,
    audit: AuditTrail,
    store: list[OnlineStore],
    env: str,
) -> Callable[[Request], Response]:
    def lookup(request: Request) -> Response:
        keys = request.query_params.getlist("key")
        with _Trail(audit, model, "features", {"keys": len(keys)}) as trail:
            trail.caller = caller = access.caller(_key(request))
            unknown = sorted({k for k in request.query_params if k != "key"})
            if unknown:
                raise ApiError(400, f"unknown parameter {unknown[0][:80]!r}", hint="key=…")
            if not 1 <= len(keys) <= 1000:
                raise ApiError(400, "give 1 to 1000 `key=` parameters")
            source = reader.source(model)
            columns, policy = access.view(caller, model, source.schema)
            masked = sorted(columns.masked)
            masked += sorted(set(source.schema.names) - set(columns.types))  # restricted
            if policy is not None or masked:
                what = "a row policy" if policy is not None else f"masked {', '.join(masked)}"
                raise ApiError(
                    403,
                    f"role {caller.role_name!r} reads {model} with {what}: online features are "
                    "served whole or not at all",
                    hint="a role with no row policy or mask on it (unmask its PII tags)",
                )
            if not store:
                store.append(OnlineStore.open(project))
            try:
                found = online_features(
                    project, name, keys, env=env, now=datetime.now(UTC), store=store[0]
                )
            except UsageError as err:
                raise ApiError(400, err.message, hint=err.hint) from None
            except StoreError as err:
                raise ApiError(503, err.message, hint=err.hint) from None
            trail.status, trail.detail["release"] = 200, source.release
            body = {"view": name, "model": model, "release": source.release, "results": found}
            headers = {"X-Headwater-Release": str(source.release)}
            return Response(
                orjson.dumps(body, default=_default), media_type=FORMATS["json"], headers=headers
            )

    lookup.__name__ = "features_" + name
    return lookup


class _Trail:
    """One request's audit entry, written when the request ends however it ends: who asked
    (`caller`, once known), the status answered, and what the handler put in `detail`."""

    def __init__(self, audit: AuditTrail, subject: str, action: str, detail: dict[str, Any]):
        self.audit, self.subject, self.action, self.detail = audit, subject, action, detail
        self.caller: Caller | None = None
        self.status = 500
        self.started = time.perf_counter()

    def __enter__(self) -> _Trail:
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, _: Any) -> None:
        if isinstance(err, ApiError):
            self.status, self.detail["error"] = err.status, err.message
        self.detail["ms"] = round((time.perf_counter() - self.started) * 1000, 3)
        self.audit.record(
            actor=None if self.caller is None else self.caller.key,
            role=None if self.caller is None else self.caller.role_name,
            subject=self.subject,
            status=self.status,
            detail=self.detail,
            action=self.action,
        )


def _source(
    reader: Reader, model: str, params: list[tuple[str, str]]
) -> tuple[Source, Position | None]:
    """The data a request reads: a cursor's pinned snapshot, a release's, or the current."""
    cursor = [v for k, v in params if k == "cursor"]
    as_of = [v for k, v in params if k == "as_of"]
    if len(cursor) > 1 or len(as_of) > 1:
        raise ApiError(400, "cursor and as_of are given once each")
    if cursor and cursor[0]:
        position = decode_cursor(cursor[0], reader.secret)
        return reader.pinned(model, position), position
    release = release_param(as_of[0]) if as_of else None
    return reader.source(model, as_of=release), None


def _key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "Authorization must be `Bearer <key>`")
        return token.strip()
    return request.headers.get("x-api-key") or None


def _tags(header: str | None) -> set[str]:
    if not header:
        return set()
    return {t.strip().removeprefix("W/") for t in header.split(",")}


def _accepted(accept: str | None) -> str:
    """The format an `Accept` header asks for (JSON unless it names another we make)."""
    if accept:
        for fmt, media in FORMATS.items():
            if media in accept:
                return fmt
    return "json"


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):  # a JSON number when one holds it exactly, else text
        if value == value.to_integral_value() and abs(value) < 2**53:
            return int(value)
        if Decimal(repr(float(value))) == value:
            return float(value)
        return str(value)
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode()
    return str(value)


def _encode(table: pa.Table, fmt: str, source: Source) -> bytes:
    """A page in `fmt` (for JSON the `data` array only: the envelope is made per answer)."""
    if fmt == "json":
        return orjson.dumps(table.to_pylist(), default=_default)
    meta = {
        b"headwater.model": source.model.encode(),
        b"headwater.snapshot": str(source.product.snapshot_id).encode(),
    }
    table = table.replace_schema_metadata(meta)
    buffer = io.BytesIO()
    try:
        if fmt == "csv":
            import pyarrow.csv as csv

            csv.write_csv(table, buffer)
        elif fmt == "arrow":
            import pyarrow.ipc as ipc

            with ipc.new_stream(buffer, table.schema) as writer:
                writer.write_table(table)
        else:
            import pyarrow.parquet as pq

            pq.write_table(table, buffer)
    except (pa.ArrowException, ValueError) as err:
        raise ApiError(400, f"format {fmt} cannot hold this page: {err}", hint="use json") from None
    return buffer.getvalue()


def _envelope(model: str, source: Source, entry: Entry, following: str | None) -> bytes:
    head = orjson.dumps(
        {
            "model": model,
            "release": source.release,
            "snapshot": source.product.snapshot_id,
            "count": entry.rows,
            "next": following,
        }
    )
    return head[:-1] + b',"data":' + entry.body + b"}"


def _json(data: Any) -> Response:
    return Response(orjson.dumps(data, default=_default), media_type="application/json")


def _described(project: Project, model: str, source: Source, columns: Columns) -> dict[str, Any]:
    sidecar = project.models[model].sidecar
    docs = {
        name: (doc if isinstance(doc, str) else doc.description)
        for name, doc in sidecar.columns.items()
    }
    return {
        "name": model,
        "path": model_path(model),
        "published": True,
        "description": sidecar.description,
        "rows": source.product.rows,
        "snapshot": source.product.snapshot_id,
        "aggregates": bool(sidecar.serve and sidecar.serve.aggregates),
        "columns": [
            {
                "name": name,
                "type": str(kind),
                "masked": name in columns.masked,
                "description": docs.get(name),
            }
            for name, kind in columns.types.items()
        ],
    }


def _responses(*, page: bool = True, found: bool = False) -> dict[int | str, dict[str, Any]]:
    error = {"content": {"application/json": {"schema": _ERROR}}}
    out: dict[int | str, dict[str, Any]] = {
        400: {"description": "A parameter or value is not valid", **error},
        401: {"description": "No API key, or not a valid one", **error},
        403: {"description": "The key's role may not read this", **error},
    }
    if found:
        out[503] = {"description": "Not published in this environment yet", **error}
        out[422] = {"description": "Not used: a body that is not valid is a 400", **error}
    if page:
        out[200] = {
            "description": "One page of rows",
            "content": {
                "application/json": {"schema": _PAGE},
                "text/csv": {"schema": {"type": "string"}},
                FORMATS["arrow"]: {"schema": {"type": "string", "format": "binary"}},
                FORMATS["parquet"]: {"schema": {"type": "string", "format": "binary"}},
            },
        }
        out[304] = {"description": "Not modified (If-None-Match named the ETag)"}
        out[404] = {"description": "No such release of this environment", **error}
        out[410] = {"description": "The release or the data read is no longer kept", **error}
        out[503] = {"description": "Not published in this environment yet", **error}
    return out


def _parameters(project: Project, reader: Reader, model: str) -> list[dict[str, Any]]:
    """The documented query parameters of a model's endpoint: one filter per column it has
    now, then the reserved ones."""
    serving = project.models[model].sidecar.serve
    assert serving is not None
    try:
        names = reader.source(model).schema.names
    except ApiError:
        names = []
    pattern = "^(" + "|".join(OPERATORS) + r")\..*$"
    out: list[dict[str, Any]] = [
        {
            "name": f"where.{name}" if name in RESERVED else name,
            "in": "query",
            "required": False,
            "description": f"filter on {name}: eq.v, neq.v, gt.v, gte.v, lt.v, lte.v, "
            "in.(a,b), like.a*, ilike.a*, is.null, is.notnull",
            "schema": {"type": "string", "pattern": pattern},
        }
        for name in names
    ]

    def param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "description": description,
            "schema": schema,
        }

    out += [
        param("fields", {"type": "string"}, "columns to return, comma-separated"),
        param("sort", {"type": "string"}, "columns to sort by; -name sorts descending"),
        param(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": serving.max_limit},
            f"rows per page (default {serving.default_limit})",
        ),
        param("cursor", {"type": "string"}, "`next` of the previous page"),
        param("format", {"type": "string", "enum": list(FORMATS)}, "the answer's format"),
        param("as_of", {"type": "integer", "minimum": 1}, "read an earlier retained release"),
    ]
    if serving.aggregates:
        out += [
            param("group_by", {"type": "string"}, "columns to group by, comma-separated"),
            param(
                "aggregate",
                {"type": "string"},
                f"aggregates: count, or {', '.join(FUNCTIONS[1:])} of a column, e.g. sum(x)",
            ),
        ]
    return out
