"""The ingest benchmark's records: N nested orders as JSON-lines files, and their declarations.

Deterministic for a given N and file count. `prepare` writes them once under a folder, in two
layouts of the same records, with a `manifest.json` holding the checksums every contender's
output must reproduce; it reuses them while N, the file count and this module are unchanged.

- `jsonl/`: every key present, a null value written as JSON `null`;
- `jsonl-sparse/`: the same records with every key whose value is null left out, nested
  objects' keys too (list elements stay), as Spark's `to_json` or Go's `omitempty` write
  them. A missing key reads as NULL, like an explicit null, so the checksums hold for both.

    .venv/bin/python bench/ingest/data.py OUT_DIR [--records 1000000] [--files 10]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

SEED = 20260801
START = datetime(2026, 8, 1, tzinfo=UTC)
STATUSES = ("placed", "paid", "shipped", "delivered", "cancelled", "refunded")
TIERS = ("bronze", "silver", "gold", "platinum")
CITIES = ("Berlin", "Paris", "London", "Amsterdam", "New York", "Madrid", "Rome", "Stockholm")
FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia")
LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson")
TAGS = ("gift", "express", "b2b", "promo", "fragile", "eco", "bulk", "vip")

CUSTOMER = (
    "STRUCT(id BIGINT, name VARCHAR, tier VARCHAR, address STRUCT(city VARCHAR, zip VARCHAR))"
)
ITEM = "STRUCT(sku VARCHAR, qty INTEGER, price DOUBLE)"
# the data folder's subfolders: every key present, and null-valued keys left out (`sparse`)
LAYOUTS = ("jsonl", "jsonl-sparse")

# the contract's columns: DuckDB types, as a contract declares them
COLUMNS: list[dict[str, Any]] = [
    {"name": "id", "type": "BIGINT", "nullable": False},
    {"name": "updated_at", "type": "TIMESTAMPTZ", "nullable": False},
    {"name": "status", "type": "VARCHAR", "nullable": False},
    {"name": "amount", "type": "DOUBLE", "nullable": True},
    {"name": "customer", "type": CUSTOMER, "nullable": False},
    {"name": "items", "type": f"{ITEM}[]", "nullable": False},
    {"name": "tags", "type": "VARCHAR[]", "nullable": True},
]

# the same columns as Arrow types, for the plain-Python HTTP baseline; `updated_at` arrives as
# ISO text and is cast after `from_pylist` (which does not parse timestamps)
ARROW_ITEM = pa.struct([("sku", pa.string()), ("qty", pa.int32()), ("price", pa.float64())])
ARROW_CUSTOMER = pa.struct(
    [
        ("id", pa.int64()),
        ("name", pa.string()),
        ("tier", pa.string()),
        ("address", pa.struct([("city", pa.string()), ("zip", pa.string())])),
    ]
)
ARROW_SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("updated_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("amount", pa.float64()),
        pa.field("customer", ARROW_CUSTOMER, nullable=False),
        pa.field("items", pa.list_(ARROW_ITEM), nullable=False),
        pa.field("tags", pa.list_(pa.string())),
    ]
)

# what each contender's output must reproduce, computed over its Parquet files or table `t`
CHECKS_SQL = """
select
  count(*) as rows,
  sum(id) as id_sum,
  sum(epoch(updated_at))::bigint as updated_at_epoch_sum,
  count(*) filter (where amount is null) as amount_nulls,
  round(sum(amount), 2) as amount_sum,
  sum(customer.id) as customer_id_sum,
  sum(length(customer.name)) as customer_name_chars,
  count(*) filter (where customer.address.zip is null) as zip_nulls,
  sum(len(items)) as items,
  sum(list_sum([i.qty for i in items])) as qty_sum,
  sum(len(tags)) as tags
from t
"""


def record(i: int, rng: random.Random) -> dict[str, Any]:
    """Order `i` (1-based): 1 to 4 items, 0 to 3 tags, a few missing amounts and zips."""
    r = rng.random
    items = [
        {
            "sku": f"SKU-{int(r() * 5000):05d}",
            "qty": 1 + int(r() * 5),
            "price": round(1 + r() * 199, 2),
        }
        for _ in range(1 + int(r() * 4))
    ]
    customer = int(r() * 200_000)
    amount = round(sum(it["qty"] * it["price"] for it in items), 2) if r() > 0.01 else None
    return {
        "id": i,
        "updated_at": START + timedelta(seconds=i * 7),
        "status": STATUSES[int(r() * len(STATUSES))],
        "amount": amount,
        "customer": {
            "id": customer,
            "name": f"{FIRST[customer % len(FIRST)]} {LAST[customer % len(LAST)]}",
            "tier": TIERS[customer % len(TIERS)],
            "address": {
                "city": CITIES[customer % len(CITIES)],
                "zip": f"{customer % 100_000:05d}" if customer % 50 else None,
            },
        },
        "items": items,
        "tags": [TAGS[int(r() * len(TAGS))] for _ in range(int(r() * 4))],
    }


class Checksums:
    """The values of CHECKS_SQL, accumulated while the records are generated."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = dict.fromkeys(
            (
                "rows",
                "id_sum",
                "updated_at_epoch_sum",
                "amount_nulls",
                "customer_id_sum",
                "customer_name_chars",
                "zip_nulls",
                "items",
                "qty_sum",
                "tags",
            ),
            0,
        )
        self.amount = 0.0

    def add(self, rec: dict[str, Any]) -> None:
        v, customer = self.values, rec["customer"]
        v["rows"] += 1
        v["id_sum"] += rec["id"]
        v["updated_at_epoch_sum"] += int(rec["updated_at"].timestamp())
        v["amount_nulls"] += rec["amount"] is None
        self.amount += rec["amount"] or 0.0
        v["customer_id_sum"] += customer["id"]
        v["customer_name_chars"] += len(customer["name"])
        v["zip_nulls"] += customer["address"]["zip"] is None
        v["items"] += len(rec["items"])
        v["qty_sum"] += sum(it["qty"] for it in rec["items"])
        v["tags"] += len(rec["tags"])

    def result(self) -> dict[str, Any]:
        return {**self.values, "amount_sum": round(self.amount, 2)}


def without_nulls(value: Any) -> Any:
    """`value` with every key whose value is null left out, in nested objects too (also those
    inside lists); list elements stay, null ones included."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def write(folder: Path, *, records: int, files: int) -> dict[str, Any]:
    """Write `records` orders over `files` JSON-lines files in both layouts (`folder / LAYOUTS`);
    return their checksums."""
    dense, sparse = (folder / layout for layout in LAYOUTS)
    for layout in (dense, sparse):
        layout.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    sums = Checksums()
    per_file = -(-records // files)
    for f in range(files):
        first, last = f * per_file + 1, min(records, (f + 1) * per_file)
        name = f"orders-{f:03d}.jsonl"
        with (dense / name).open("wb") as out, (sparse / name).open("wb") as out_sparse:
            chunk: list[bytes] = []
            chunk_sparse: list[bytes] = []
            for i in range(first, last + 1):
                rec = record(i, rng)
                sums.add(rec)
                chunk.append(orjson.dumps(rec))
                chunk_sparse.append(orjson.dumps(without_nulls(rec)))
                if len(chunk) == 10_000:
                    out.write(b"\n".join(chunk) + b"\n")
                    out_sparse.write(b"\n".join(chunk_sparse) + b"\n")
                    chunk, chunk_sparse = [], []
            if chunk:
                out.write(b"\n".join(chunk) + b"\n")
                out_sparse.write(b"\n".join(chunk_sparse) + b"\n")
    return sums.result()


def prepare(folder: Path, *, records: int, files: int = 10) -> dict[str, Any]:
    """The data folder's manifest, writing the files first unless they are already there."""
    manifest_file = folder / "manifest.json"
    # this module's fingerprint: any change to it (a new layout too) writes the files again
    version = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    if manifest_file.exists():
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        same = (manifest["records"], manifest["files"], manifest["version"]) == (
            records,
            files,
            version,
        )
        complete = all(len(jsonl_files(folder, sparse=s)) == files for s in (False, True))
        if same and complete:
            return manifest
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    print(f"generating {records:,} records into {folder} ...", flush=True)
    checks = write(folder, records=records, files=files)
    size, sparse_size = (
        sum(p.stat().st_size for p in jsonl_files(folder, sparse=s)) for s in (False, True)
    )
    manifest = {
        "records": records,
        "files": files,
        "version": version,
        "bytes": size,
        "sparse_bytes": sparse_size,
        "generate_s": round(time.perf_counter() - started, 2),
        "checks": checks,
    }
    manifest_file.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(
        f"  {size / 1e6:.0f} MB ({sparse_size / 1e6:.0f} MB without nulls) "
        f"in {manifest['generate_s']:.1f}s",
        flush=True,
    )
    return manifest


def jsonl_files(folder: Path, sparse: bool = False) -> list[Path]:
    """The JSON-lines files of a data folder: with every key, or (`sparse`) nulls left out."""
    return sorted((folder / LAYOUTS[int(sparse)]).glob("*.jsonl"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=10)
    args = parser.parse_args()
    print(json.dumps(prepare(args.out, records=args.records, files=args.files), indent=2))


if __name__ == "__main__":
    main()
