"""`headwater init`: the example project "shop" with realistic generated data.

Three sources (customers CSV, monthly orders CSV, daily events JSON lines) over 90 days, with a
few deliberate defects the demo must catch: records that break their contract (quarantined)
and values that break `warn` rules (reported, the run still succeeds).
"""

from __future__ import annotations

import csv
import json
import random
import shutil
from datetime import datetime, timedelta
from pathlib import Path

from headwater.errors import SpecError

TEMPLATE = Path(__file__).parent / "example"
DAYS = 90
COUNTRIES = ["DE", "FR", "GB", "NL", "US", "ES", "IT", "SE"]
STATUSES = ["placed", "paid", "shipped", "delivered", "cancelled", "refunded"]
EVENT_TYPES = ["page_view", "search", "add_to_cart", "checkout", "purchase"]
PAGES = [
    "/",
    "/search",
    "/product/boots",
    "/product/jacket",
    "/product/tent",
    "/cart",
    "/checkout",
    "/account",
]
FIRST = [
    "ada",
    "alan",
    "grace",
    "edsger",
    "barbara",
    "donald",
    "frances",
    "ken",
    "margaret",
    "linus",
    "guido",
    "hedy",
    "tim",
    "radia",
    "john",
    "sophie",
]
LAST = [
    "lovelace",
    "turing",
    "hopper",
    "dijkstra",
    "liskov",
    "knuth",
    "allen",
    "thompson",
    "hamilton",
    "torvalds",
    "rossum",
    "lamarr",
    "berners",
    "perlman",
    "backus",
    "wilson",
]


STREAM_CONTRACT = """# Live clickstream from Kafka (optional: `headwater init --kafka BROKERS`).
# Land what the topic holds with `headwater ingest`, or keep landing with
# `headwater ingest --follow live_events`.
source: shop_web.live_events
schema_version: "1"
delivery: stream
privacy_level: internal
owner: web-analytics@example.com
description: Storefront events as they happen, one JSON message each on topic shop.events.
connector:
  kind: kafka
  brokers: "{brokers}"
  topics: [shop.events]
  max_rows: 10000
  max_wait: 1s
primary_key: [event_id]
columns:
  - {{name: event_id, type: varchar, nullable: false}}
  - {{name: customer_id, type: bigint}}
  - {{name: event_type, type: varchar, nullable: false}}
  - {{name: page, type: varchar}}
  - {{name: occurred_at, type: timestamptz, nullable: false}}
"""


def scaffold(
    directory: Path,
    *,
    events: int = 200_000,
    force: bool = False,
    now: datetime,
    seed: int = 7,
    kafka: str | None = None,
) -> dict[str, int]:
    """Create the example project in `directory`; returns how many records each source got.
    `kafka` (bootstrap servers) adds the optional stream source `live_events`."""
    if directory.exists() and any(directory.iterdir()) and not force:
        raise SpecError(f"{directory} is not empty", hint="choose a new folder or pass --force")
    shutil.copytree(
        TEMPLATE, directory, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
    )
    rng = random.Random(seed)
    end = now.replace(minute=0, second=0, microsecond=0, tzinfo=None)
    start = end - timedelta(days=DAYS)
    customers = _customers(directory / "data" / "customers", rng, start)
    orders = _orders(directory / "data" / "orders", rng, start, end, customers)
    n_events = _events(directory / "data" / "events", rng, start, events, customers)
    (directory / ".gitignore").write_text(".headwater/\n", encoding="utf-8")
    if kafka:
        (directory / "contracts" / "live_events.yml").write_text(
            STREAM_CONTRACT.format(brokers=kafka), encoding="utf-8"
        )
    return {"customers": customers, "orders": orders, "events": n_events}


def _customers(folder: Path, rng: random.Random, start: datetime) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for cid in range(1, 2001):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        signed_up = start - timedelta(days=rng.randint(0, 700), minutes=rng.randint(0, 1439))
        rows.append(
            [
                cid,
                f"{first}.{last}{cid}@example.com",
                f"{first.title()} {last.title()}",
                rng.choice(COUNTRIES),
                f"{signed_up:%Y-%m-%d %H:%M:%S}",
            ]
        )
    rows[10][1] = "not-an-email"  # defect: warn rule customers_email_format
    rows[11][1] = "mail at example.com"
    rows[20][3] = "XX"  # defect: warn rule customers_country_known
    rows.append(
        [42, "grace.hopper42@example.com", "Grace Hopper", "US", rows[41][4]]
    )  # defect: duplicate id, warn rule customers_id_unique
    path = folder / "customers.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["customer_id", "email", "full_name", "country", "signed_up_at"])
        out.writerows(rows)
        handle.write("2002,broken row with,too,many,fields,here\n")  # defect: quarantined
    return len(rows) + 1


def _orders(
    folder: Path, rng: random.Random, start: datetime, end: datetime, customers: int
) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    by_month: dict[str, list[list[object]]] = {}
    for oid in range(1, 24_001):
        ordered = start + timedelta(seconds=rng.randint(0, DAYS * 86400 - 1))
        updated = min(ordered + timedelta(hours=rng.randint(0, 72)), end)
        amount = f"{rng.uniform(5, 500):.2f}"
        row: list[object] = [
            oid,
            rng.randint(1, customers - 2),
            rng.choices(STATUSES, weights=[10, 30, 25, 25, 6, 4])[0],
            amount,
            rng.choice(["EUR", "EUR", "USD", "GBP"]),
            f"{ordered:%Y-%m-%d %H:%M:%S}",
            f"{updated:%Y-%m-%d %H:%M:%S}",
        ]
        by_month.setdefault(f"{ordered:%Y-%m}", []).append(row)
    months = sorted(by_month)
    first, last = by_month[months[0]], by_month[months[-1]]
    first[3][3] = "12,50"  # defect: not a decimal → quarantined
    first[4][1] = ""  # defect: missing customer_id → quarantined
    last[5][3] = "-5.00"  # defect: warn rule orders_amount_positive
    last[6][1] = 99_999  # defect: no such customer, warn rule orders_customer_known
    placed = datetime.strptime(str(last[7][5]), "%Y-%m-%d %H:%M:%S")
    last[7][6] = f"{placed - timedelta(days=1):%Y-%m-%d %H:%M:%S}"  # defect: updated before
    # it was placed, warn rule orders_updated_after_ordered (custom SQL on clean.orders)
    columns = ["order_id", "customer_id", "status", "amount", "currency"]
    columns += ["ordered_at", "updated_at"]
    for month, rows in by_month.items():
        header = columns
        if rows is last:  # defect: the API added a field; it lands (evolve), and the
            header = [*columns, "coupon"]  # warn rule orders_schema reports it
            rows = [[*row, rng.choice(["", "", "WINTER10"])] for row in rows]
        with (folder / f"orders_{month}.csv").open("w", newline="", encoding="utf-8") as handle:
            out = csv.writer(handle)
            out.writerow(header)
            out.writerows(rows)
    return sum(len(rows) for rows in by_month.values())


def _events(folder: Path, rng: random.Random, start: datetime, total: int, customers: int) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    # at least 10 a day: the deliberate defects below need their lines (a small --events
    # writes a few more than asked; the count written is what `init` reports)
    per_day = max(10, total // DAYS)
    written = 0
    for day in range(DAYS):
        base = start + timedelta(days=day)
        lines = []
        last = max(per_day, total - per_day * (DAYS - 1))
        for _ in range(per_day if day < DAYS - 1 else last):
            at = base + timedelta(seconds=rng.randint(0, 86399))
            anonymous = rng.random() < 0.3
            lines.append(
                json.dumps(
                    {
                        "event_id": f"{rng.getrandbits(64):016x}",
                        "customer_id": None if anonymous else rng.randint(1, customers - 2),
                        "session_id": f"s{rng.getrandbits(32):08x}",
                        "event_type": rng.choices(EVENT_TYPES, weights=[60, 15, 12, 8, 5])[0],
                        "page": rng.choice(PAGES),
                        "occurred_at": f"{at:%Y-%m-%dT%H:%M:%S}Z",
                    },
                    separators=(",", ":"),
                )
            )
        if day == 3:
            lines[7] = lines[7][:-20]  # defect: a truncated, malformed line → quarantined
            lines[8] = lines[8][:-1] + ',"debug":true}'  # defect: unknown field under freeze
            lines[9] = lines[9].replace('"occurred_at":', '"occurred_at_":')  # missing field
        if day == 10:
            for i in (1, 2):  # defect: unknown type, warn rule events_type_known
                record = json.loads(lines[i])
                record["event_type"] = "pageview"
                lines[i] = json.dumps(record, separators=(",", ":"))
        (folder / f"events_{base:%Y-%m-%d}.jsonl").write_text(
            "\n".join(lines) + "\n", encoding="utf-8"
        )
        written += len(lines)
    return written
