"""Bad data files: one broken thing per case, the rest of the project must still land.

Each case breaks one file of the probe project (or adds one) and runs `headwater run`. For
every case: no traceback; exit 0 (a run that quarantines records or files but lands the rest
succeeds); the good files land; records read = landed + quarantined, with the counts computed
from what the case wrote; and the file (and record or line, where there is one) is named in
the quarantine table or the run's summary.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.badinput.harness import (
    EVENTS,
    EVENTS_LINES,
    ORDERS,
    ORDERS_FILES,
    ORDERS_HEADER,
    assert_clean_error,
    assert_no_traceback,
    assert_reconciled,
    hw,
    probe_project,
    write,
)

GOOD = ORDERS_FILES["orders_1.csv"]


@dataclass(frozen=True)
class Case:
    """One broken input: what it does to the project, and what must then hold."""

    id: str
    mutate: Callable[[Path], object]
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # table → landed, quarantined
    names: tuple[str, ...] = ()  # each in the run's output or a quarantine row's source/reason


# ---- building blocks ---------------------------------------------------------------------------


def csv_bytes(*rows: str, header: str = ORDERS_HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def orders_1(content: bytes | str) -> Callable[[Path], object]:
    """Replace orders_1.csv (orders_2.csv, five good rows, stays)."""
    data = content.encode() if isinstance(content, str) else content
    return lambda root: write(root, "data/orders/orders_1.csv", data)


def with_row(index: int, row: str | bytes) -> bytes:
    """orders_1.csv with its row `index` (0-based) replaced."""
    rows = [r.encode() for r in GOOD]
    rows[index] = row if isinstance(row, bytes) else row.encode()
    return b"\n".join([ORDERS_HEADER.encode(), *rows]) + b"\n"


def orders_contract(**connector: str) -> Callable[[Path], object]:
    """The orders contract with its connector changed."""
    spec = {"kind": "files", "path": "data/orders/*.csv", "format": "csv", **connector}
    text = ORDERS.replace('{kind: files, path: "data/orders/*.csv", format: csv}', json.dumps(spec))
    return lambda root: write(root, "contracts/orders.yml", text)


def both(*steps: Callable[[Path], object]) -> Callable[[Path], object]:
    def run(root: Path) -> None:
        for step in steps:
            step(root)

    return run


def remove(name: str) -> Callable[[Path], object]:
    return lambda root: (root / name).unlink()


def events_file(name: str, content: bytes | str) -> Callable[[Path], object]:
    data = content.encode() if isinstance(content, str) else content
    return lambda root: write(root, f"data/events/{name}", data)


def events_line(index: int, line: str | bytes) -> Callable[[Path], object]:
    """events_1.jsonl with its line `index` (0-based) replaced."""
    lines = [x.encode() for x in EVENTS_LINES]
    lines[index] = line if isinstance(line, bytes) else line.encode()
    return events_file("events_1.jsonl", b"\n".join(lines) + b"\n")


def events_contract(path: str, extra: str = "") -> Callable[[Path], object]:
    text = EVENTS.replace('path: "data/events/*.jsonl", format: jsonl', f'path: "{path}"{extra}')
    return lambda root: write(root, "contracts/events.yml", text)


def event(i: int, **values: object) -> str:
    record = {"event_id": i, "kind": "view", "occurred_at": "2026-10-03 10:00:00", **values}
    return json.dumps(record)


ORDERS_OK = {"orders": (10, 0), "events": (3, 0)}


def orders(landed: int, quarantined: int) -> dict[str, tuple[int, int]]:
    return {"orders": (landed, quarantined), "events": (3, 0)}


def events(landed: int, quarantined: int) -> dict[str, tuple[int, int]]:
    return {"orders": (10, 0), "events": (landed, quarantined)}


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def zst(data: bytes) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as stream:
        stream.write(data)
    return sink.getvalue().to_pybytes()


# ---- a contract of every type, for type breaks -------------------------------------------------

TYPED = """\
source: probe.typed
schema_version: "1"
delivery: batch
privacy_level: internal
owner: data@example.com
connector: {kind: files, path: "data/typed/*", format: FORMAT}
evolution: evolve
columns:
  - {name: id, type: bigint, nullable: false}
  - {name: n, type: integer}
  - {name: d, type: date}
  - {name: ts, type: timestamp}
  - {name: tz, type: timestamptz}
  - {name: dec, type: "decimal(5,2)"}
  - {name: flag, type: boolean}
  - {name: x, type: double}
"""
TYPED_GOOD = {
    "id": "1",
    "n": "7",
    "d": "2026-10-01",
    "ts": "2026-10-01 10:00:00",
    "tz": "2026-10-01 10:00:00+00",
    "dec": "12.50",
    "flag": "true",
    "x": "1.5",
}


def typed(fmt: str, **bad: str | None) -> Callable[[Path], object]:
    """A contract `typed` of every type, one good record and one with `bad` values."""
    broken = {**TYPED_GOOD, "id": "2", **bad}

    def run(root: Path) -> None:
        write(root, "contracts/typed.yml", TYPED.replace("FORMAT", fmt))
        if fmt == "csv":
            rows = [",".join(TYPED_GOOD), ",".join(TYPED_GOOD.values())]
            rows.append(",".join("" if v is None else v for v in broken.values()))
            write(root, "data/typed/typed.csv", "\n".join(rows) + "\n")
        else:
            lines = [json.dumps(_json_values(TYPED_GOOD)), json.dumps(_json_values(broken))]
            write(root, "data/typed/typed.jsonl", "\n".join(lines) + "\n")

    return run


def _json_values(record: dict[str, str | None]) -> dict[str, object]:
    """JSON numbers and booleans where the text is one (so the good record is typed JSON)."""
    out: dict[str, object] = {}
    for key, value in record.items():
        try:
            out[key] = json.loads(value) if value is not None else None
        except ValueError:
            out[key] = value
    return out


def typed_counts(landed: int, quarantined: int) -> dict[str, tuple[int, int]]:
    return {**ORDERS_OK, "typed": (landed, quarantined)}


# ---- a Parquet contract -------------------------------------------------------------------------

ITEMS = """\
source: probe.items
schema_version: "1"
delivery: batch
privacy_level: internal
owner: data@example.com
connector: {kind: files, path: "data/items/*.parquet", format: parquet}
evolution: evolve
columns:
  - {name: item_id, type: bigint, nullable: false}
  - {name: label, type: varchar}
"""


def parquet_bytes(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


GOOD_ITEMS = pa.table({"item_id": [1, 2, 3], "label": ["a", "b", "c"]})


def items(name: str, content: bytes) -> Callable[[Path], object]:
    def run(root: Path) -> None:
        write(root, "contracts/items.yml", ITEMS)
        write(root, "data/items/items_1.parquet", parquet_bytes(GOOD_ITEMS))
        write(root, f"data/items/{name}", content)

    return run


def items_counts(landed: int, quarantined: int) -> dict[str, tuple[int, int]]:
    return {**ORDERS_OK, "items": (landed, quarantined)}


BIG = "x" * (10 << 20)

# ---- the cases ----------------------------------------------------------------------------------

CSV_CASES = [
    Case(
        "csv-bad-utf8-byte-mid-row",
        orders_1(with_row(2, b"3,12,shi\xffpped,3.25,2026-10-02 09:30:00")),
        orders(9, 1),
        ("orders_1.csv record 3", "UTF-8"),
    ),
    Case(
        "csv-bad-utf8-in-last-row",
        orders_1(with_row(4, b"5,13,p\xe9id,1.00,2026-10-03 08:15:00")),
        orders(9, 1),
        ("orders_1.csv record 5", "UTF-8"),
    ),
    Case(
        "csv-latin1-file",
        orders_1(
            csv_bytes("1,10,caf\xe9,1.00,2026-10-01", "2,10,paid,1.00,2026-10-01").replace(
                b"caf\xc3\xa9", b"caf\xe9"
            )
        ),
        orders(6, 1),
        ("orders_1.csv record 1", "encoding"),
    ),
    Case(
        "csv-latin1-with-encoding-option",
        both(
            orders_contract(encoding="latin-1"),
            orders_1(csv_bytes(*GOOD).replace(b"paid", b"p\xe1id")),
        ),
        ORDERS_OK,
    ),
    Case(
        "csv-utf16-with-encoding-option",
        both(
            orders_contract(encoding="utf-16"),
            orders_1(csv_bytes(*GOOD).decode().encode("utf-16")),
            lambda root: write(
                root,
                "data/orders/orders_2.csv",
                csv_bytes(*ORDERS_FILES["orders_2.csv"]).decode().encode("utf-16"),
            ),
        ),
        ORDERS_OK,
    ),
    Case("csv-utf8-bom", orders_1(b"\xef\xbb\xbf" + csv_bytes(*GOOD)), ORDERS_OK),
    Case("csv-crlf", orders_1(csv_bytes(*GOOD).replace(b"\n", b"\r\n")), ORDERS_OK),
    Case("csv-cr-only", orders_1(csv_bytes(*GOOD).replace(b"\n", b"\r")), ORDERS_OK),
    Case("csv-zero-bytes", orders_1(b""), orders(5, 0), ("orders_1.csv", "empty")),
    Case("csv-header-only", orders_1(csv_bytes()), orders(5, 0)),
    Case(
        "csv-missing-header",
        orders_1("\n".join(GOOD) + "\n"),
        orders(5, 1),
        ("orders_1.csv", "header"),
    ),
    Case(
        "csv-duplicate-header",
        orders_1(csv_bytes(*GOOD, header="order_id,customer_id,status,status,ordered_at")),
        orders(5, 1),
        ("orders_1.csv", "status"),
    ),
    Case(
        "csv-header-named-hw-source",
        orders_1(csv_bytes(*[r + ",x" for r in GOOD], header=ORDERS_HEADER + ",_hw_source")),
        orders(5, 1),
        ("orders_1.csv", "_hw_source"),
    ),
    Case(
        "csv-header-named-hw-batch-id",
        orders_1(csv_bytes(*[r + ",x" for r in GOOD], header=ORDERS_HEADER + ",_hw_batch_id")),
        orders(5, 1),
        ("orders_1.csv", "_hw_batch_id"),
    ),
    Case(
        "csv-header-empty-name",
        orders_1(csv_bytes(*GOOD, header="order_id,,status,amount,ordered_at")),
        orders(5, 1),
        ("orders_1.csv", "header"),
    ),
    Case(
        "csv-header-blank-first-line",
        orders_1(b"\n" + csv_bytes(*GOOD)),
        orders(5, 1),
        ("orders_1.csv", "header"),
    ),
    Case(
        "csv-wrong-delimiter",
        orders_1(
            csv_bytes(*[r.replace(",", ";") for r in GOOD], header=ORDERS_HEADER.replace(",", ";"))
        ),
        orders(5, 1),
        ("orders_1.csv", "delimiter"),
    ),
    Case(
        "csv-declared-semicolon-delimiter",
        both(
            orders_contract(delimiter=";"),
            lambda root: [
                write(
                    root,
                    f"data/orders/{name}",
                    csv_bytes(
                        *[r.replace(",", ";") for r in rows], header=ORDERS_HEADER.replace(",", ";")
                    ),
                )
                for name, rows in ORDERS_FILES.items()
            ],
        ),
        ORDERS_OK,
    ),
    Case(
        "csv-too-many-fields",
        orders_1(with_row(1, "2,11,paid,7.00,2026-10-01 11:00:00,extra")),
        orders(9, 1),
        ("orders_1.csv:3", "expected 5 fields, found 6"),
    ),
    Case(
        "csv-too-few-fields",
        orders_1(with_row(1, "2,11,paid")),
        orders(9, 1),
        ("orders_1.csv:3", "expected 5 fields, found 3"),
    ),
    Case(
        "csv-unterminated-quote",
        orders_1(with_row(2, '3,12,"shipped,3.25,2026-10-02 09:30:00')),
        orders(7, 3),
        ("orders_1.csv:4", "quote"),
    ),
    Case(
        "csv-quotes-pairing-across-lines",
        orders_1(
            with_row(1, '2,11,"paid,7.00,2026-10-01 11:00:00').replace(
                b"3,12,shipped,3.25,2026-10-02 09:30:00", b'3,12,shipped",3.25'
            )
        ),
        orders(8, 2),
        ("orders_1.csv:3", "orders_1.csv:4", "quoted field spans"),
    ),
    Case(
        "csv-unterminated-quote-last-field",
        orders_1(with_row(2, '3,12,shipped,3.25,"2026-10-02 09:30:00')),
        orders(7, 3),
        ("orders_1.csv record 3, line +2", "unterminated quote"),
    ),
    Case(
        "csv-unterminated-quote-last-line",
        orders_1(with_row(4, '5,13,paid,1.00,"2026-10-03 08:15:00')),
        orders(9, 1),
        ("orders_1.csv record 5", "unterminated quote"),
    ),
    Case(
        "csv-embedded-newline-quoted",
        orders_1(with_row(1, '2,11,"paid\nin full",7.00,2026-10-01 11:00:00')),
        ORDERS_OK,
    ),
    Case(
        "csv-quoted-delimiter",
        orders_1(with_row(1, '2,11,"paid, in full",7.00,2026-10-01 11:00:00')),
        ORDERS_OK,
    ),
    Case(
        "csv-nul-byte", orders_1(with_row(1, b"2,11,pa\x00id,7.00,2026-10-01 11:00:00")), ORDERS_OK
    ),
    Case("csv-blank-lines", orders_1(csv_bytes(GOOD[0], "", GOOD[1], "", *GOOD[2:])), ORDERS_OK),
    Case("csv-no-final-newline", orders_1(csv_bytes(*GOOD).rstrip(b"\n")), ORDERS_OK),
    Case(
        "csv-huge-field-1mb",
        orders_1(with_row(1, f"2,11,{'y' * (1 << 20)},7.00,2026-10-01 11:00:00")),
        ORDERS_OK,
    ),
    Case(
        "csv-record-10mb-first",
        orders_1(with_row(0, f"1,10,{BIG},12.50,2026-10-01 10:00:00")),
        ORDERS_OK,
    ),
    Case(
        "csv-record-10mb-mid-file",
        orders_1(
            csv_bytes(*[f"{100 + i},1,paid,1.00,2026-10-01" for i in range(30_000)])
            + f"1,10,{BIG},12.50,2026-10-01 10:00:00\n".encode()
        ),
        orders(30_006, 0),
    ),
    Case(
        "csv-gzip",
        both(
            orders_contract(path="data/orders/*.csv*"),
            remove("data/orders/orders_1.csv"),
            lambda root: write(root, "data/orders/orders_1.csv.gz", gz(csv_bytes(*GOOD))),
        ),
        ORDERS_OK,
    ),
    Case(
        "csv-zstd",
        both(
            orders_contract(path="data/orders/*.csv*"),
            remove("data/orders/orders_1.csv"),
            lambda root: write(root, "data/orders/orders_1.csv.zst", zst(csv_bytes(*GOOD))),
        ),
        ORDERS_OK,
    ),
    Case("csv-gzip-named-csv", orders_1(gz(csv_bytes(*GOOD))), ORDERS_OK),
    Case(
        "csv-compression-option",
        both(
            orders_contract(compression="gzip"),
            orders_1(gz(csv_bytes(*GOOD))),
            lambda root: write(
                root, "data/orders/orders_2.csv", gz(csv_bytes(*ORDERS_FILES["orders_2.csv"]))
            ),
        ),
        ORDERS_OK,
    ),
    Case(
        "csv-truncated-gzip",
        orders_1(gz(csv_bytes(*GOOD))[:40]),
        orders(5, 1),
        ("orders_1.csv", "gzip"),
    ),
    Case(
        "csv-gzip-bad-utf8",
        both(
            orders_contract(path="data/orders/*.csv*"),
            remove("data/orders/orders_1.csv"),
            lambda root: write(
                root,
                "data/orders/orders_1.csv.gz",
                gz(with_row(3, b"4,10,pl\xffaced,99.99,2026-10-02 12:00:00")),
            ),
        ),
        orders(9, 1),
        ("orders_1.csv.gz record 4", "UTF-8"),
    ),
    Case(
        "csv-binary-garbage",
        lambda root: write(root, "data/orders/orders_3.csv", b"\x00\x01\xfe\xff" * 64),
        orders(10, 1),
        ("orders_3.csv",),
    ),
    Case(
        "csv-jsonl-content-named-csv",
        lambda root: write(root, "data/orders/orders_3.csv", "\n".join(EVENTS_LINES) + "\n"),
        orders(10, 1),
        ("orders_3.csv", "header"),
    ),
    Case(
        "csv-parquet-content-named-csv",
        lambda root: write(root, "data/orders/orders_3.csv", parquet_bytes(GOOD_ITEMS)),
        orders(10, 1),
        ("orders_3.csv",),
    ),
    Case(
        "csv-extra-undeclared-column",
        orders_1(csv_bytes(*[r + ",x" for r in GOOD], header=ORDERS_HEADER + ",note")),
        ORDERS_OK,
    ),
    Case(
        "csv-missing-nullable-column",
        orders_1(
            csv_bytes(*["1,10,paid,2026-10-01"], header="order_id,customer_id,status,ordered_at")
        ),
        orders(6, 0),
    ),
    Case(
        "csv-missing-required-column",
        orders_1(
            csv_bytes(
                "10,paid,1.00,2026-10-01",
                "11,paid,1.00,2026-10-01",
                header="customer_id,status,amount,ordered_at",
            )
        ),
        orders(5, 2),
        ("orders_1.csv record 1", "order_id: required value is missing"),
    ),
    Case(
        "csv-bigint-overflow",
        orders_1(with_row(1, "99999999999999999999,11,paid,7.00,2026-10-01 11:00:00")),
        orders(9, 1),
        ("orders_1.csv record 2", "cannot cast"),
    ),
    Case(
        "csv-bigint-text",
        orders_1(with_row(1, "2,eleven,paid,7.00,2026-10-01 11:00:00")),
        orders(9, 1),
        ("orders_1.csv record 2", "customer_id: cannot cast 'eleven'"),
    ),
    Case(
        "csv-bad-timestamp",
        orders_1(with_row(1, "2,11,paid,7.00,2026-13-45 11:00:00")),
        orders(9, 1),
        ("orders_1.csv record 2", "ordered_at"),
    ),
    Case(
        "csv-timestamp-words",
        orders_1(with_row(1, "2,11,paid,7.00,yesterday")),
        orders(9, 1),
        ("orders_1.csv record 2", "ordered_at"),
    ),
    Case(
        "csv-decimal-overflow",
        orders_1(with_row(1, "2,11,paid,123456789012345.00,2026-10-01 11:00:00")),
        orders(9, 1),
        ("orders_1.csv record 2", "amount"),
    ),
    Case(
        "csv-decimal-comma",
        orders_1(with_row(1, '2,11,paid,"7,00",2026-10-01 11:00:00')),
        orders(9, 1),
        ("orders_1.csv record 2", "amount"),
    ),
    Case(
        "csv-null-required",
        orders_1(with_row(1, ",11,paid,7.00,2026-10-01 11:00:00")),
        orders(9, 1),
        ("orders_1.csv record 2", "order_id: required value is missing"),
    ),
    Case(
        "csv-null-word-required",
        orders_1(with_row(1, "NULL,11,paid,7.00,2026-10-01 11:00:00")),
        orders(9, 1),
        ("orders_1.csv record 2", "order_id"),
    ),
    Case(
        "csv-every-row-bad",
        orders_1(csv_bytes(*[f"x{i},1,paid,1.00,2026-10-01" for i in range(5)])),
        orders(5, 5),
        ("orders_1.csv record 5",),
    ),
]

JSONL_CASES = [
    Case("jsonl-not-json", events_line(1, "not json at all"), events(2, 1), ("events_1.jsonl",)),
    Case("jsonl-array-line", events_line(1, "[1, 2, 3]"), events(2, 1), ("events_1.jsonl",)),
    Case("jsonl-scalar-line", events_line(1, "42"), events(2, 1), ("events_1.jsonl",)),
    Case("jsonl-string-line", events_line(1, '"hello"'), events(2, 1), ("events_1.jsonl",)),
    Case("jsonl-null-line", events_line(1, "null"), events(2, 1), ("events_1.jsonl",)),
    Case(
        "jsonl-id-text",
        events_line(1, event(2, event_id="two")),
        events(2, 1),
        ("events_1.jsonl record 2", "event_id"),
    ),
    Case(
        "jsonl-id-object",
        events_line(1, event(2, event_id={"x": 1})),
        events(2, 1),
        ("events_1.jsonl record 2", "event_id"),
    ),
    Case(
        "jsonl-huge-number",
        events_line(
            1, event(2).replace('"event_id": 2', '"event_id": 123456789012345678901234567890')
        ),
        events(2, 1),
        ("events_1.jsonl record 2", "event_id"),
    ),
    Case(
        "jsonl-nan",
        events_line(1, event(2).replace('"event_id": 2', '"event_id": NaN')),
        events(2, 1),
        ("events_1.jsonl",),
    ),
    Case(
        "jsonl-invalid-utf8",
        events_line(1, event(2, kind="KIND").encode().replace(b"KIND", b"cl\xffick")),
        events(2, 1),
        ("events_1.jsonl", "UTF-8"),
    ),
    Case(
        "jsonl-truncated-last-line",
        events_file("events_1.jsonl", "\n".join([*EVENTS_LINES[:2], EVENTS_LINES[2][:20]])),
        events(2, 1),
        ("events_1.jsonl",),
    ),
    Case(
        "jsonl-missing-required-key",
        events_line(1, '{"kind": "click", "occurred_at": "2026-10-01 10:01:00"}'),
        events(2, 1),
        ("events_1.jsonl record 2", "event_id: required value is missing"),
    ),
    Case(
        "jsonl-null-required",
        events_line(1, event(2, event_id=None)),
        events(2, 1),
        ("events_1.jsonl record 2", "event_id"),
    ),
    Case(
        "jsonl-bad-timestamp",
        events_line(1, event(2, occurred_at="2026-02-30 10:00:00")),
        events(2, 1),
        ("events_1.jsonl record 2", "occurred_at"),
    ),
    Case("jsonl-unknown-key-evolves", events_line(1, event(2, extra="e")), events(3, 0)),
    Case(
        "jsonl-key-named-hw-source",
        events_line(1, event(2, _hw_source="spoofed")),
        events(2, 1),
        ("events_1.jsonl record 2", "_hw_source"),
    ),
    Case(
        "jsonl-duplicate-keys",
        events_line(1, '{"event_id": 2, "event_id": 3, "kind": "x", "occurred_at": "2026-10-01"}'),
        events(2, 1),
        ("events_1.jsonl record 2", "duplicate"),
    ),
    Case(
        "jsonl-deep-nesting",
        events_line(1, event(2, kind="K").replace('"K"', "[" * 2000 + "]" * 2000)),
        events(3, 0),
    ),
    Case(
        "jsonl-blank-lines",
        events_file("events_1.jsonl", "\n\n".join(EVENTS_LINES) + "\n"),
        events(3, 0),
    ),
    Case(
        "jsonl-crlf",
        events_file("events_1.jsonl", "\r\n".join(EVENTS_LINES) + "\r\n"),
        events(3, 0),
    ),
    Case(
        "jsonl-utf8-bom",
        events_file("events_1.jsonl", b"\xef\xbb\xbf" + ("\n".join(EVENTS_LINES) + "\n").encode()),
        events(3, 0),
    ),
    Case("jsonl-zero-bytes-file", events_file("events_2.jsonl", b""), events(3, 0)),
    Case(
        "jsonl-pretty-printed-array",
        events_file(
            "events_2.jsonl",
            json.dumps([json.loads(event(4)), json.loads(event(5))], indent=None)
            .replace("}, {", "},\n{")
            .replace("[{", "[\n{")
            .replace("}]", "}\n]"),
        ),
        events(4, 3),  # "[", "{...}," and "]" are not JSON objects; the last record is one
        ("events_2.jsonl",),
    ),
    Case(
        "jsonl-record-10mb",
        events_file("events_2.jsonl", event(4, kind=BIG) + "\n" + event(5) + "\n"),
        events(5, 0),
    ),
    Case(
        "jsonl-gzip",
        both(
            events_contract("data/events/*.jsonl*"),
            events_file("events_2.jsonl.gz", gz((event(4) + "\n" + event(5) + "\n").encode())),
        ),
        events(5, 0),
    ),
    Case(
        "jsonl-zstd",
        both(
            events_contract("data/events/*.jsonl*"),
            events_file("events_2.jsonl.zst", zst((event(4) + "\n" + event(5) + "\n").encode())),
        ),
        events(5, 0),
    ),
    Case(
        "jsonl-truncated-gzip",
        both(
            events_contract("data/events/*.jsonl*"),
            events_file("events_2.jsonl.gz", gz((event(4) + "\n" + event(5) + "\n").encode())[:30]),
        ),
        events(3, 1),
        ("events_2.jsonl.gz", "gzip"),
    ),
    Case(
        "jsonl-latin1-with-encoding-option",
        both(
            events_contract("data/events/*.jsonl", ", encoding: latin-1"),
            events_file(
                "events_1.jsonl",
                ("\n".join(EVENTS_LINES) + "\n").replace("click", "clíck").encode("latin-1"),
            ),
        ),
        events(3, 0),
    ),
    Case(
        "jsonl-latin1-without-encoding-option",
        events_file(
            "events_1.jsonl",
            ("\n".join(EVENTS_LINES) + "\n").replace("click", "clíck").encode("latin-1"),
        ),
        events(2, 1),
        ("events_1.jsonl record 2", "encoding"),
    ),
    Case(
        "jsonl-utf16-with-encoding-option",
        both(
            events_contract("data/events/*.jsonl", ", encoding: utf-16"),
            events_file("events_1.jsonl", ("\n".join(EVENTS_LINES) + "\n").encode("utf-16")),
        ),
        events(3, 0),
    ),
    Case(
        "jsonl-gzip-named-jsonl",
        events_file("events_2.jsonl", gz((event(4) + "\n" + event(5) + "\n").encode())),
        events(5, 0),
    ),
    Case(
        "jsonl-csv-content",
        events_file("events_2.jsonl", "event_id,kind\n4,view\n"),
        events(3, 2),
        ("events_2.jsonl",),
    ),
]

PARQUET_CASES = [
    Case("parquet-good", items("items_2.parquet", parquet_bytes(GOOD_ITEMS)), items_counts(6, 0)),
    Case(
        "parquet-corrupt",
        items("items_2.parquet", parquet_bytes(GOOD_ITEMS)[:-40]),
        items_counts(3, 1),
        ("items_2.parquet", "parquet"),
    ),
    Case(
        "parquet-zero-bytes",
        items("items_2.parquet", b""),
        items_counts(3, 1),
        ("items_2.parquet",),
    ),
    Case(
        "parquet-text-file",
        items("items_2.parquet", b"item_id,label\n1,a\n"),
        items_counts(3, 1),
        ("items_2.parquet",),
    ),
    Case(
        "parquet-wrong-schema",
        items("items_2.parquet", parquet_bytes(pa.table({"x": [1, 2], "y": ["p", "q"]}))),
        items_counts(3, 2),
        ("items_2.parquet record 1", "item_id: required value is missing"),
    ),
    Case(
        "parquet-wrong-type",
        items(
            "items_2.parquet",
            parquet_bytes(pa.table({"item_id": ["4", "four"], "label": ["d", "e"]})),
        ),
        items_counts(4, 1),
        ("items_2.parquet record 2", "item_id"),
    ),
    Case(
        "parquet-no-rows",
        items("items_2.parquet", parquet_bytes(GOOD_ITEMS.slice(0, 0))),
        items_counts(3, 0),
    ),
    Case(
        "parquet-null-required",
        items(
            "items_2.parquet",
            parquet_bytes(
                pa.table({"item_id": pa.array([4, None], pa.int64()), "label": ["d", "e"]})
            ),
        ),
        items_counts(4, 1),
        ("items_2.parquet record 2", "item_id: required value is missing"),
    ),
    Case(
        "parquet-column-named-hw-source",
        items(
            "items_2.parquet",
            parquet_bytes(GOOD_ITEMS.append_column("_hw_source", pa.array(["s"] * 3))),
        ),
        items_counts(3, 1),
        ("items_2.parquet", "_hw_source"),
    ),
]

PLACES_CASES = [
    Case(
        "glob-matches-nothing",
        orders_contract(path="data/nothing/*.csv"),
        orders(0, 0),
        ("data/nothing/*.csv", "matches no file"),
    ),
    Case(
        "path-is-a-directory",
        orders_contract(path="data/orders"),
        orders(0, 0),
        ("data/orders", "folder"),
    ),
    Case(
        "directory-matching-the-glob",
        lambda root: (root / "data/orders/more.csv").mkdir(),
        ORDERS_OK,
    ),
    Case(
        "broken-symlink-matching-the-glob",
        lambda root: (root / "data/orders/gone.csv").symlink_to(root / "nowhere.csv"),
        ORDERS_OK,
        ("gone.csv",),
    ),
    Case(
        "recursive-glob",
        both(
            orders_contract(path="data/orders/**/*.csv"),
            lambda root: write(
                root, "data/orders/2026/orders_3.csv", csv_bytes(GOOD[0].replace("1,", "11,", 1))
            ),
        ),
        orders(11, 0),
    ),
]

TYPE_BREAKS = [
    ("int-overflow", {"n": "3000000000"}, "n"),
    ("bigint-overflow", {"id": "9223372036854775808"}, "id"),
    ("date-feb-30", {"d": "2026-02-30"}, "d"),
    ("date-words", {"d": "tomorrow"}, "d"),
    ("timestamp-hour-25", {"ts": "2026-10-01 25:00:00"}, "ts"),
    ("timestamptz-words", {"tz": "not a time"}, "tz"),
    ("decimal-overflow", {"dec": "1234.5"}, "dec"),
    ("boolean-maybe", {"flag": "maybe"}, "flag"),
    ("double-text", {"x": "one point five"}, "x"),
    ("required-null", {"id": None}, "id"),
]
TYPED_CASES = [
    Case(
        f"{fmt}-type-{name}",
        typed(fmt, **bad),
        typed_counts(1, 1),
        (f"typed.{fmt} record 2", f"{column}:"),
    )
    for fmt in ("csv", "jsonl")
    for name, bad, column in TYPE_BREAKS
]

CASES = CSV_CASES + JSONL_CASES + PARQUET_CASES + PLACES_CASES + TYPED_CASES


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_data_file(tmp_path: Path, case: Case) -> None:
    root = probe_project(tmp_path / "probe")
    case.mutate(root)
    outcome = hw(root, "run")
    assert_no_traceback(outcome)
    assert outcome.code == 0, outcome
    for table, (landed, quarantined) in case.counts.items():
        assert_reconciled(root, table, landed=landed, quarantined=quarantined)
    said = outcome.output + "\n" + "\n".join(quarantine_rows(root, case.counts))
    for name in case.names:
        assert name in said, f"{name!r} is not named:\n{said}"


def quarantine_rows(root: Path, tables: dict[str, tuple[int, int]]) -> list[str]:
    """`source | reason` of every quarantined record of `tables`."""
    path = root / ".headwater" / "warehouse.duckdb"
    out = []
    with duckdb.connect(str(path), read_only=True) as conn:
        for table, (_, quarantined) in tables.items():
            if quarantined:
                query = f'select _hw_source, _hw_reason from raw."{table}__quarantine"'
                out += [f"{s} | {r}" for s, r in conn.execute(query).fetchall()]
    return out


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 75


CONNECTOR_OPTIONS = [
    ("delimiter-empty", {"delimiter": ""}, "connector.delimiter"),
    ("delimiter-three-chars", {"delimiter": ";;;"}, "connector.delimiter"),
    ("delimiter-newline", {"delimiter": "\n"}, "connector.delimiter"),
    ("delimiter-quote", {"delimiter": '"'}, "connector.delimiter"),
    ("encoding-unknown", {"encoding": "klingon"}, "connector.encoding"),
    ("compression-unknown", {"compression": "rar"}, "connector.compression"),
]


@pytest.mark.parametrize(
    ("options", "field_name"),
    [(o, f) for _, o, f in CONNECTOR_OPTIONS],
    ids=[i for i, _, _ in CONNECTOR_OPTIONS],
)
def test_bad_connector_option(tmp_path: Path, options: dict[str, str], field_name: str) -> None:
    """A connector option no file could be read with is the contract's error, at its line."""
    root = probe_project(tmp_path / "probe")
    orders_contract(**options)(root)
    outcome = hw(root, "run")
    assert_clean_error(outcome, "contracts/orders.yml:6", field_name, code=3)
