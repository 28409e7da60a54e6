"""Reading published products: which snapshot a read goes to, and the page it gets.

A `Reader` holds the catalog and the lake (never the warehouse file: a run writes that) and
an in-memory DuckDB that may read only the lake's folder. The current product of each served
model is looked up again only when the catalog changed (SQLite's `data_version`, one pragma
per request; another catalog database is asked every time), and the files of a snapshot are
planned once (a snapshot never changes).
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from sqlglot import exp

from headwater.change.products import published_models
from headwater.change.releases import retained
from headwater.change.versions import PROD
from headwater.engine import Engine, scratch
from headwater.engine.base import FILE_INDEX, FILE_ROW
from headwater.errors import HeadwaterError, StoreError
from headwater.orchestrate.stores import LakeStores
from headwater.project import Project
from headwater.serve.errors import ApiError
from headwater.serve.query import (
    KEY,
    Columns,
    Position,
    Request,
    bound,
    build,
    key_names,
    key_text,
    kinds,
    skeleton,
    value,
)
from headwater.zones.catalog.products import Product

TEMPLATES = 4096  # query texts kept (see `page`)
TIEBREAK = (FILE_INDEX, FILE_ROW)  # a row's place in its snapshot: unique, and stable
_SECRET_FACT = "serve.cursor_secret"


@dataclass(frozen=True)
class Source:
    """The data one read goes to: a model's product snapshot, and the release serving it."""

    model: str
    release: int | None
    product: Product
    files: tuple[str, ...]
    schema: pa.Schema
    as_of: bool = False


@dataclass(frozen=True)
class Page:
    data: pa.Table
    next: Position | None


class Reader:
    """Reads of one environment's served products (`as_of`: of its earlier releases)."""

    def __init__(self, project: Project, *, env: str = PROD):
        self.project, self.env = project, env
        self.published = set(published_models(project))
        self.stores = LakeStores.open(project)
        self.catalog, self.lake = self.stores.catalog, self.stores.lake
        self.engine = scratch(files_under=[self.lake.place], filesystems=self.lake.filesystems)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._planned: dict[tuple[str, int], tuple[tuple[str, ...], pa.Schema]] = {}
        self._templates: OrderedDict[Hashable, str] = OrderedDict()
        self._current: dict[str, Product | None] = {}
        self._seen: object = None
        self._release: int | None = None
        self.on_moved: Callable[[str, int], None] = lambda model, snapshot: None
        self.secret = self._secret()

    def close(self) -> None:
        self.engine.close()
        self.stores.close()

    # ---- which data ----------------------------------------------------------------------

    def source(self, model: str, *, as_of: int | None = None) -> Source:
        """The product a read of `model` goes to now (or as release `as_of` served it).

        Raises:
            ApiError: 404 (not served, no such release), 410 (release expired),
                503 (not published yet).
        """
        if model not in self.published:
            raise ApiError(404, f"{model} is not served", hint="its sidecar would say serve: true")
        if as_of is not None:
            return self._released(model, as_of)
        with self._lock:
            self._refresh()
            product, release = self._current.get(model), self._release
        if product is None:
            raise ApiError(
                503,
                f"{model} is not published in {self.env} yet",
                hint=f"run `headwater run` (or apply --env {self.env}) to publish it",
            )
        return self._source(model, release, product)

    def pinned(self, model: str, position: Position) -> Source:
        """The source a cursor's position read (its snapshot, even if newer data landed)."""
        current = self.source(model)
        if current.product.snapshot_id == position.snapshot:
            return current
        product = self.catalog.product_at(model, position.snapshot)
        if product is None:
            raise ApiError(410, "the data this cursor read is gone", hint="start over")
        return self._source(model, position.release, product, as_of=True)

    @property
    def release(self) -> int | None:
        with self._lock:
            self._refresh()
            return self._release

    def _refresh(self) -> None:
        """Look up the current products again if the catalog changed (under the lock)."""
        counter = self.catalog.changed()
        seen: object = object() if counter is None else counter
        if seen == self._seen:
            return
        release = self.catalog.latest_release(self.env)
        current = self.catalog.served(self.env, sorted(self.published))
        for model, was in self._current.items():
            if was is not None and current.get(model) != was:
                self.on_moved(model, was.snapshot_id)
        self._current, self._release, self._seen = current, release, seen

    def _released(self, model: str, release_id: int) -> Source:
        found = self.catalog.release_env(release_id)
        if found is None or found[0] != self.env:
            where = "" if found is None else f" (it is one of {found[0]})"
            raise ApiError(404, f"no release {release_id} of {self.env}{where}")
        if found[1] != "done":
            raise ApiError(404, f"release {release_id} never finished ({found[1]})")
        policy = self.project.settings.releases
        if release_id not in retained(self.catalog.release_heads(), policy, now=datetime.now(UTC)):
            raise ApiError(
                410,
                f"release {release_id} is no longer retained",
                hint=f"releases: keep {policy.keep}, retention {policy.retention} "
                "(headwater releases lists those kept)",
            )
        products = self.catalog.released_products(release_id)
        if model not in products:
            raise ApiError(404, f"release {release_id} has no {model}")
        product = products[model]
        if product is None:
            raise ApiError(410, f"{model} was not published as of release {release_id}")
        return self._source(model, release_id, product, as_of=True)

    def _source(
        self, model: str, release: int | None, product: Product, *, as_of: bool = False
    ) -> Source:
        key = (product.product, product.snapshot_id)
        planned = self._planned.get(key)
        if planned is None:
            try:
                files = tuple(sorted(self.lake.snapshot_files(*key)))
                if files:
                    query = exp.select(exp.Star()).from_(self.engine.scan(files))
                    schema = self.cursor().head(query, 0).schema
                else:  # an empty data state: no data file at all
                    schema = self.lake.schema(product.product) or pa.schema([])
            except StoreError as err:  # the snapshot is gone (expired, dropped)
                raise ApiError(410, err.message, hint=err.hint) from None
            except HeadwaterError as err:  # its files are: moved, deleted by hand
                raise ApiError(
                    503,
                    f"the data of {model} cannot be read: {err.message}",
                    hint="the lake's files were moved or deleted by hand: restore them (the "
                    "Iceberg metadata names absolute paths)",
                ) from None
            with self._lock:
                self._planned[key] = planned = (files, schema)
        return Source(model, release, product, planned[0], planned[1], as_of)

    def scan(self, source: Source, *, positions: bool) -> exp.Expr:
        """The FROM source of a read of `source` (an empty one for a snapshot without files)."""
        if source.files:
            return self.engine.scan(source.files, positions=positions)
        name = f"_hw_empty_{source.product.snapshot_id}"
        fields = list(source.schema) + [pa.field(t, pa.int64()) for t in TIEBREAK]
        self.cursor().register(name, pa.schema(fields).empty_table())  # per connection
        return exp.to_table(name)

    # ---- the page ------------------------------------------------------------------------

    def page(
        self,
        source: Source,
        request: Request,
        columns: Columns,
        *,
        row_policy: exp.Expr | None = None,
        after: Position | None = None,
        view: Hashable | None = None,
    ) -> Page:
        """One page of `request` from `source`, with the position of the next (if any).

        `view` names what `columns` and `row_policy` are (a role): given one, the query's text
        is made once per snapshot, view and request skeleton, and each page binds only its
        values (building and rendering it costs more than DuckDB's lookup of one row)."""
        keys = key_names(request, TIEBREAK)
        values = None
        if after is not None:
            if after.sort != request.sort or len(after.keys) != len(keys):
                raise ApiError(400, "the cursor was made for another sort", hint="start over")
            types = kinds(columns, request, dict.fromkeys(TIEBREAK, pa.int64()))
            values = [
                None if text is None else value(name, types[name], str(text))
                for name, text in zip(keys, after.keys, strict=True)
            ]
        template = None
        if view is not None:
            template = (source.product.snapshot_id, view, skeleton(request, values))
        sql = None if template is None else self._templates.get(template)
        if sql is None:
            params: dict[str, Any] = {}
            query = build(
                request,
                self.scan(source, positions=not request.grouped),
                columns,
                row_policy=row_policy,
                tiebreak=() if request.grouped else TIEBREAK,
                after=values,
                params=params,
            )
            sql = self.engine.render(query, copy=False)
            if template is not None:
                with self._lock:
                    self._templates[template] = sql
                    while len(self._templates) > TEMPLATES:
                        self._templates.popitem(last=False)
        else:
            params = bound(request, values)
        table = self.cursor().read(sql, params or None)
        following = None
        assert request.limit is not None, "a page has a limit"
        if table.num_rows > request.limit:
            table = table.slice(0, request.limit)
            last = [table.column(f"{KEY}{i}")[request.limit - 1].as_py() for i in range(len(keys))]
            following = Position(
                source.release,
                source.product.snapshot_id,
                request.sort,
                tuple(key_text(v) for v in last),
            )
        return Page(table.select(list(request.fields)), following)

    def everything(
        self,
        source: Source,
        request: Request,
        columns: Columns,
        *,
        row_policy: exp.Expr | None = None,
    ) -> pa.Table:
        """Every row of `request` (no page): what Python's `headwater.read` returns."""
        scan = self.scan(source, positions=False)
        query = build(request, scan, columns, row_policy=row_policy, tiebreak=(), paged=False)
        return self.cursor().read(query)

    def cursor(self) -> Engine:
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._local.cursor = self.engine.cursor()
        return cursor

    def _secret(self) -> bytes:
        """The key cursors are signed with: one per catalog, so any server of it reads them."""
        found = self.catalog.fact(_SECRET_FACT)
        if found is None:
            self.catalog.set_fact(_SECRET_FACT, secrets.token_hex(32))
            found = self.catalog.fact(_SECRET_FACT)
        assert found is not None
        return bytes.fromhex(found)


def columns_of(schema: pa.Schema) -> Columns:
    """Every column unmasked (the project owner's view)."""
    return Columns({f.name: f.type for f in schema})
