"""Publishing data products: what serving reads.

Every model whose sidecar says `serve:` (or declares `features:` or `vectors:`) is published,
before an environment shows new data of it, as an Iceberg table in the lake: one table per
version (`products.marts__daily__<fp>`), one snapshot per data state of that version. The
catalog records which snapshot holds which data state (`hw_products`), so an environment
serves the product of the data its pointer shows, and a release the products of the data it
held — exactly, and without ever opening the warehouse file a run is writing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime

import pyarrow as pa
from sqlglot import exp

from headwater.change import vectors
from headwater.engine.base import Engine
from headwater.errors import HeadwaterError, StoreError
from headwater.project import Project
from headwater.zones.catalog import Catalog
from headwater.zones.catalog.products import Product, Shown
from headwater.zones.datafiles import SelfWritten
from headwater.zones.lake import Lake

NAMESPACE = "products"


def product_table(name: str, fingerprint: str) -> str:
    """The Iceberg table of a version's products: `marts.daily`, `a1b2…` →
    `products.marts__daily__a1b2…`."""
    zone, short = name.split(".")
    return f"{NAMESPACE}.{zone}__{short}__{fingerprint}"


def served_models(project: Project) -> list[str]:
    """The models the data API serves rows of, in name order."""
    return sorted(n for n, m in project.models.items() if m.sidecar.serve)


def published_models(project: Project) -> list[str]:
    """The models published as data products: served, or with feature views or indexes."""
    return sorted(n for n, m in project.models.items() if m.sidecar.published)


def publish(
    project: Project,
    engine: Engine,
    lake: Lake,
    catalog: Catalog,
    shown: Mapping[str, Shown],
    *,
    now: datetime,
) -> list[Product]:
    """Publish the data `shown` of every served model that has no product yet (a data state
    is published once, whichever environment shows it first); the products written.

    Raises:
        StoreError: a product cannot be written (the message names the model); nothing is
            recorded for it, so the environment is not moved on to data serving lacks.
    """
    published = set(published_models(project))
    wanted = {n: s for n, s in shown.items() if n in published and s.data_key}
    have = catalog.products_of([(n, s.data_key or "") for n, s in wanted.items()])
    written = []
    for name, state in sorted(wanted.items()):
        if (name, state.data_key) in have:
            continue
        try:
            product = _write(engine, lake, state)
        except HeadwaterError as err:
            raise StoreError(
                f"cannot publish {name} as a data product: {err.message}",
                hint=err.hint or "nothing was released; fix the cause and run again",
            ) from err
        _indexes(project, engine, lake, product)
        catalog.record_product(product, now=now)
        written.append(product)
    return written


def _indexes(project: Project, engine: Engine, lake: Lake, product: Product) -> None:
    """Build the vector indexes of a product just written (a run pays for them once)."""
    specs = project.models[product.name].sidecar.vectors
    if not specs:
        return
    files = lake.snapshot_files(product.product, product.snapshot_id)
    for name, spec in sorted(specs.items()):
        found = vectors.read_vectors(engine, files, spec.column, model=product.name)
        path = vectors.index_path(project.root, product.product, product.snapshot_id, name)
        vectors.build(spec, found, path)


def _write(engine: Engine, lake: Lake, state: Shown) -> Product:
    """Export the table `state` shows into its version's product table, as one snapshot."""
    assert state.data_key is not None
    schema_name, table_name = state.physical.split(".")
    table_ref = exp.table_(table_name, schema_name, quoted=True)
    schema = _schema(engine.head(exp.select(exp.Star()).from_(table_ref), 0).schema)
    # each column as the product keeps it: engines write some types to Parquet as others
    # (DuckDB a HUGEINT as a DOUBLE), so the export says what each one is
    source = exp.select(
        *[
            exp.cast(exp.column(f.name, quoted=True), _sql_type(f.type)).as_(f.name, quoted=True)
            if f.name in _recast(schema)
            else exp.column(f.name, quoted=True)
            for f in schema
        ]
    ).from_(table_ref.copy())
    rows: list[int] = []

    def write(table_schema: pa.Schema, new_path: Callable[[], str]) -> list[str]:
        path = new_path()
        rows.append(engine.export(source, path, table_schema))
        return [path]

    def streamed() -> Iterator[pa.Table]:  # an object store: the lake writes the files
        for batch in engine.stream(source):
            rows.append(batch.num_rows)
            yield pa.Table.from_batches([batch])

    table = product_table(state.name, state.fingerprint)
    parts = [SelfWritten(schema, write)] if lake.local else streamed()
    snapshot = lake.replace(
        table,
        parts,
        schema=schema,
        properties={"model": state.name, "data_key": state.data_key, "source": state.physical},
    )
    return Product(
        state.name,
        state.data_key,
        state.fingerprint,
        table,
        snapshot.snapshot_id,
        sum(rows),
    )


def _schema(schema: pa.Schema) -> pa.Schema:
    """The product's columns as the warehouse has them, each nullable (Iceberg's default);
    an unsigned integer as the signed one that holds it (Iceberg has none)."""
    return pa.schema([f.with_nullable(True).with_type(_iceberg(f.type)) for f in schema])


def _iceberg(kind: pa.DataType) -> pa.DataType:
    if pa.types.is_unsigned_integer(kind):
        return pa.decimal128(20, 0) if kind.bit_width == 64 else pa.int64()
    if pa.types.is_fixed_size_list(kind):  # Iceberg lists have no fixed size
        return pa.list_(_iceberg(kind.value_type))
    return kind


def _recast(schema: pa.Schema) -> set[str]:
    """The columns exported with an explicit cast: decimals, integers and lists of numbers
    (an embedding `FLOAT[384]`)."""
    return {f.name for f in schema if _castable(f.type)}


def _castable(kind: pa.DataType) -> bool:
    if pa.types.is_list(kind):
        return _castable(kind.value_type)
    return bool(
        pa.types.is_decimal(kind) or pa.types.is_integer(kind) or pa.types.is_floating(kind)
    )


def _sql_type(kind: pa.DataType) -> exp.DataType:
    if pa.types.is_list(kind):
        return exp.DataType(
            this=exp.DataType.Type.ARRAY, expressions=[_sql_type(kind.value_type)], nested=True
        )
    if pa.types.is_decimal(kind):
        return exp.DataType.build(f"DECIMAL({kind.precision}, {kind.scale})")
    if pa.types.is_floating(kind):
        return exp.DataType.build("FLOAT" if kind.bit_width == 32 else "DOUBLE")
    names = {8: "TINYINT", 16: "SMALLINT", 32: "INT", 64: "BIGINT"}
    return exp.DataType.build(names[kind.bit_width])
