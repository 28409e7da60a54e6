"""The PII classifier (`govern.classify`): precision and recall on a labelled fixture of ~230
columns, the evidence behind every proposal, each detector on hand-checked values, and the
traps that fool name- or regex-only classifiers, pinned one by one."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from functools import cache

import pytest

from headwater.govern.classify import Proposal, classify, classify_column
from tests.govern.classify_fixture import TODAY, Column, build_fixture, luhn_complete

PRECISION, RECALL = 0.95, 0.90


@cache
def _predictions() -> tuple[tuple[Column, Proposal | None], ...]:
    return tuple(
        (c, classify_column(c.name, c.values, type=c.type, today=TODAY)) for c in build_fixture()
    )


def _column(where: str) -> Column:
    table, name = where.split(".")
    return next(c for c in build_fixture() if (c.table, c.name) == (table, name))


def _tag(name: str, values: Sequence[object], type: str | None = None) -> str | None:
    proposal = classify_column(name, values, type=type, today=TODAY)
    return proposal.tag if proposal else None


def _confusion(pairs: tuple[tuple[Column, Proposal | None], ...]) -> str:
    """Expected tag → what was proposed, and every column that went wrong."""
    table: dict[str | None, Counter[str | None]] = defaultdict(Counter)
    wrong = []
    for column, proposal in pairs:
        got = proposal.tag if proposal else None
        table[column.tag][got] += 1
        if got != column.tag:
            wrong.append(f"  {column.table}.{column.name}: expected {column.tag}, got {got}")
    rows = [f"  {expected}: {dict(got)}" for expected, got in sorted(table.items(), key=str)]
    return "\n".join(["confusion (expected: {proposed: count}):", *rows, "wrong:", *wrong])


# --- the labelled fixture ---------------------------------------------------------------


def test_the_fixture_is_large_and_balanced() -> None:
    columns = build_fixture()
    positives = sum(c.tag is not None for c in columns)
    assert len(columns) >= 220
    assert positives >= 90 and len(columns) - positives >= 90
    assert len({(c.table, c.name) for c in columns}) == len(columns)
    assert build_fixture() == build_fixture(), "the fixture is deterministic"


def test_precision_and_recall_on_the_labelled_fixture() -> None:
    pairs = _predictions()
    hits = sum(1 for c, p in pairs if p and p.tag == c.tag)
    proposed = sum(1 for _, p in pairs if p)  # a wrong tag is a false positive ...
    expected = sum(1 for c, _ in pairs if c.tag)  # ... and a false negative
    precision, recall = hits / proposed, hits / expected
    report = f"precision {precision:.3f}, recall {recall:.3f}\n{_confusion(pairs)}"
    assert precision >= PRECISION and recall >= RECALL, report


@pytest.mark.parametrize("tag", sorted({c.tag for c in build_fixture() if c.tag}))
def test_every_tag_is_found_in_most_of_its_columns(tag: str) -> None:
    pairs = [(c, p) for c, p in _predictions() if c.tag == tag]
    found = sum(1 for c, p in pairs if p and p.tag == tag)
    assert found / len(pairs) >= 0.8, _confusion(tuple(pairs))


def test_every_proposal_carries_evidence() -> None:
    proposals = [p for _, p in _predictions() if p]
    assert proposals
    for proposal in proposals:
        assert proposal.evidence, proposal
        assert 0 < proposal.confidence <= 1
        seen = proposal.evidence[0]
        assert seen.detector and seen.detector != "name_hint"
        assert 0 < seen.match_rate <= 1 and seen.sampled > 0 and seen.note
        for evidence in proposal.evidence:
            assert evidence.detector and evidence.note and evidence.sampled > 0
            assert 0 <= evidence.match_rate <= 1


# --- traps: each must get no proposal ---------------------------------------------------

TRAPS = (
    "courses.academic_year_code",  # OpenMetadata tags this CVV
    "budgets.fiscal_year",
    "cars.model_year",
    "customers.zip",
    "stores.zip_code",
    "addresses.postal_code",  # zip+4
    "geo.zip9",
    "orders.order_id",  # sequential
    "orders_ext.order_number",  # random 16 digits: ~10% pass Luhn by chance
    "ledger.transaction_id",  # 16 digits starting with a Visa 4
    "billing.invoice_number",  # sequential 16 digits from 4000…
    "cards_issued.card_id",  # sequential, name says card
    "users.id",  # UUIDs
    "events.event_epoch",  # ten digits, like a US phone number
    "events.event_ms",
    "products.ean",
    "books.isbn",
    "customers.email_hash",  # a hash of an email is not an email
    "campaigns.email_sent",
    "devices.phone_model",
    "payments.card_type",
    "payments.card_last4",
    "products.name",  # "Blue Widget 3000"
    "suppliers.company_name",
    "stores.city_name",
    "loyalty.tier_name",
    "employees.hire_date",  # old dates, but nothing says birth
    "customers.birth_country",
    "devices.mac_address",
    "vendors.ein",
    "banks.routing_number",
    "releases.build_version",
    "customers.contact_method",
    "tickets.support_message",  # 5% of messages quote an email
    "orders.amount",
)


@pytest.mark.parametrize("where", TRAPS)
def test_a_trap_gets_no_proposal(where: str) -> None:
    column = _column(where)
    assert column.tag is None
    proposal = classify_column(column.name, column.values, type=column.type, today=TODAY)
    assert proposal is None, proposal.explain() if proposal else ""


def test_year_codes_are_never_cards_nor_birth_dates() -> None:
    years = list(range(1999, 2025)) * 4
    for name in ("academic_year_code", "cvv", "card_year", "birth_year", "dob_year"):
        assert _tag(name, years) is None, name
        assert _tag(name, [str(y) for y in years]) is None, name


# --- each detector ----------------------------------------------------------------------


def test_email() -> None:
    emails = ["ann@example.org", "bob.smith+x@mail.co.uk", "c_d@sub.example.com"] * 4
    assert _tag("col_7", emails) == "email"
    assert _tag("col_7", ["ann@", "@example.org", "ann example.org", "a@b"] * 3) is None
    assert _tag("to", ["Ann Lee <ann@example.org>", "<bob@example.com>"] * 5) == "email"
    hinted = classify_column("contact_email", emails)
    unhinted = classify_column("col_7", emails)
    assert hinted and unhinted and hinted.confidence > unhinted.confidence
    assert hinted.evidence[-1].name_hint == "email"


def test_phone_numbers_international_and_national() -> None:
    e164 = ["+14155552671", "+44 20 7946 0958", "+33 1 42 68 53 00", "+31 20 624 1111"] * 3
    national = ["(212) 736-5000", "020 7946 0958", "01 42 68 53 00", "020 624 1111"] * 3
    assert _tag("field_3", e164) == "phone"
    assert _tag("contact_no", national) == "phone"
    assert _tag("phone", [2127365000, 4155552671] * 5, type="bigint") == "phone"


def test_bare_digits_are_phones_only_when_the_name_says_so() -> None:
    digits = ["2127365000", "4155552671", "2024561111"] * 4
    assert _tag("reference", digits) is None
    assert _tag("mobile", digits) == "phone"


def test_zip_codes_are_not_phone_numbers() -> None:
    zips = ["94107", "10001", "02139", "60614"] * 3
    zip4 = ["94107-1234", "10001-0001", "02139-4307", "60614-2201"] * 3
    for name in ("zip", "postal_code", "phone", "tel"):
        assert _tag(name, zips) is None, name
        assert _tag(name, zip4) is None, name


def test_iban_checksum_and_length() -> None:
    ibans = [
        "DE89370400440532013000",
        "GB82 WEST 1234 5698 7654 32",
        "NL91ABNA0417164300",
        "FR1420041010050500013M02606",
        "BE68539007547034",
        "CH9300762011623852957",
    ] * 2
    assert _tag("ref_b", ibans) == "iban"
    broken = [iban[:-1] + str((int(iban[-1]) + 1) % 10) for iban in ibans]
    assert _tag("iban", broken) is None
    assert _tag("iban_country", ["DE", "FR", "NL"] * 4) is None


def test_card_numbers_need_luhn_prefix_and_length() -> None:
    cards = [
        "4111111111111111",
        "5555 5555 5555 4444",
        "378282246310005",
        "6011-1111-1111-1117",
        "3530111333300000",
        "30569309025904",
    ] * 2
    proposal = classify_column("col_12", cards)
    assert proposal is not None and proposal.tag == "card"
    assert proposal.evidence[0].detector == "luhn"
    no_prefix = [luhn_complete("9" + str(10**14 + i * 7919)) for i in range(12)]
    assert _tag("card_number", no_prefix) is None


def test_luhn_valid_sequences_are_order_ids_not_cards() -> None:
    sequential = [n for n in range(4_000_000_000_000_000, 4_000_000_000_000_400) if _luhn(n)]
    assert len(sequential) >= 20
    assert _tag("card_number", sequential, type="bigint") is None
    shuffled = random.Random(3).sample(sequential, len(sequential))
    assert _tag("card_number", shuffled, type="bigint") is None  # densely packed all the same


def _luhn(number: int) -> bool:
    return luhn_complete(str(number)[:-1]) == str(number)


def test_random_sixteen_digit_ids_are_not_cards() -> None:
    rng = random.Random(7)
    ids = ["4" + "".join(rng.choice("0123456789") for _ in range(15)) for _ in range(300)]
    assert _tag("transaction_id", ids) is None
    assert _tag("card_number", ids) is None  # ~10% pass Luhn: far from enough


def test_ip_addresses() -> None:
    ips = ["192.168.1.20", "8.8.8.8", "2001:db8::1", "fe80::1ff:fe23:4567:890a"] * 3
    assert _tag("host", ips) == "ip"
    assert _tag("app_version", ["1.2.3", "10.0.1", "2.14.7"] * 4) is None
    assert _tag("ip_address", [3232235777, 134744072] * 5, type="bigint") is None


def test_ssn_ranges_and_dashes() -> None:
    valid = ["123-45-6789", "001-01-0001", "899-99-9999", "665-12-3456"] * 3
    assert _tag("col_9", valid) == "ssn"
    never_issued = ["000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000"]
    assert _tag("ssn", never_issued * 3) is None
    bare = [v.replace("-", "") for v in valid]
    assert _tag("col_9", bare) is None  # nine bare digits are anything without the name
    assert _tag("ssn", bare) == "ssn"
    assert _tag("ein", ["12-3456789", "98-7654321"] * 5) is None


def test_birth_dates_need_the_name_and_birth_years() -> None:
    births = [date(1961, 3, 4), date(1990, 12, 31), datetime(1985, 6, 1), date(2003, 7, 7)] * 3
    assert _tag("dob", births, type="date") == "date_of_birth"
    assert _tag("birthday", [d.strftime("%m/%d/%Y") for d in births]) == "date_of_birth"
    assert _tag("birth_dt", [d.strftime("%Y%m%d") for d in births]) == "date_of_birth"
    assert _tag("hire_date", births, type="date") is None
    recent = [date(2021, 1, 5), date(2024, 2, 29), date(2019, 8, 1)] * 4
    assert _tag("dob", recent, type="date") is None  # nobody under ten is a customer's dob


def test_addresses_in_several_countries() -> None:
    addresses = [
        "1600 Pennsylvania Ave NW, Washington, DC 20500",
        "221B Baker Street, London NW1 6XE",
        "Hauptstraße 12, 10115 Berlin",
        "12 rue de la Paix, 75002 Paris",
        "Keizersgracht 123, 1015 CJ Amsterdam",
        "350 Fifth Avenue",
    ] * 2
    assert _tag("col_4", addresses) == "address"
    assert _tag("billing_address", ["billing", "shipping", "home"] * 4) is None
    streets = ["Main Street", "Oak Avenue", "PO Box 123", "Elm Rd"] * 3
    assert _tag("street", streets) == "address"  # no house number: the name must say so
    assert _tag("col_4", streets) is None
    assert _tag("mac_address", ["00:1a:2b:3c:4d:5e", "a4:5e:60:e8:11:02"] * 5) is None


def test_person_names_need_the_name_and_the_values() -> None:
    people = ["Maria Garcia", "John Smith", "Wei Chen", "Aoife O'Brien", "Lukas Müller"] * 3
    people += ["Smith, John", "ANNA KOWALSKI", "J. R. Tolkien", "Hans van der Berg"]
    assert _tag("customer_name", people) == "name"
    assert _tag("name", people) == "name"
    firsts = ["Maria", "John", "Wei", "Aoife", "Lukas", "Zoë", "Sven", "Priya", "Omar", "Kenji"]
    assert _tag("first_name", firsts) == "name"
    assert _tag("customer_name", ["John Smith", "Maria Garcia"] * 10) is None  # two labels
    assert _tag("col_2", people) is None  # capitalised words are everywhere
    products = ["Blue Widget 3000", "Steel Lamp", "Ergonomic Chair", "Oak Desk 12"] * 5
    assert _tag("name", products) is None
    assert _tag("product_name", people) is None
    companies = ["Smith Ltd", "Walker Industries", "Johnson Inc", "Brown Group", "Lee GmbH"] * 3
    assert _tag("name", companies) is None  # surnames, but companies'
    cities = "Washington Jackson Madison Austin Lincoln Boston Denver Houston Phoenix Tampa"
    assert _tag("name", cities.split()) is None  # some are surnames: too few for a bare `name`
    assert _tag("customer", people) == "name"
    proposal = classify_column("name", people)
    assert proposal is not None
    assert {e.detector for e in proposal.evidence} == {"person_name", "name_list", "name_hint"}


# --- the surface ------------------------------------------------------------------------


def test_explain_names_the_detector_and_the_rate() -> None:
    cards = ["4111111111111111", "5555555555554444", "378282246310005", "not a card"] * 5
    proposal = classify_column("card_number", cards)
    assert proposal is not None and proposal.tag == "card"
    line = proposal.explain()
    assert "\n" not in line
    assert "card_number" in line and "card" in line and "luhn" in line
    assert "75% of 20 values" in line and "'card'" in line


def test_types_that_never_hold_pii() -> None:
    assert _tag("email_sent", [True, False] * 10, type="boolean") is None
    assert _tag("amount", [Decimal("12.50"), Decimal("3.99")] * 10, type="decimal(18,2)") is None
    assert _tag("phone", [2127365000, 4155552671] * 5, type="decimal(10,0)") == "phone"


def test_a_name_that_says_what_else_the_column_is_stops_value_only_proposals() -> None:
    versions = ["10.0.0.1", "2.1.0.3", "1.0.0.12", "3.2.1.0"] * 3
    assert _tag("host", versions) == "ip"
    assert _tag("build_version", versions) is None
    part_numbers = ["123-45-6789", "234-56-7890", "345-67-8901", "456-78-9012"] * 3
    assert _tag("col_9", part_numbers) == "ssn"
    assert _tag("part_number", part_numbers) is None
    assert _tag("ssn_hash", part_numbers) == "ssn"  # the name agrees: values decide


def test_too_few_values_propose_nothing() -> None:
    assert _tag("email", ["ann@example.org"] * 4) is None
    assert _tag("email", [None, "", "  ", float("nan")] * 10) is None
    assert _tag("email", ["ann@example.org", float("nan")] * 5) == "email"  # NaN is missing
    assert _tag("email", ["ann@example.org"] * 5 + [None] * 100) == "email"


def test_classify_keeps_column_order_and_uses_types() -> None:
    proposals = classify(
        {
            "ip": ["8.8.8.8", "10.0.0.1"] * 5,
            "flag": [True, False] * 5,
            "email": ["ann@example.org", "bob@example.com"] * 5,
            "phone": [2127365000, 4155552671] * 5,
        },
        types={"flag": "boolean", "phone": "double"},
    )
    assert [(p.column, p.tag) for p in proposals] == [("ip", "ip"), ("email", "email")]


def test_a_huge_value_is_no_pii_and_costs_nothing() -> None:
    # a 1 MB field of one letter once backtracked the address grammar for minutes
    assert classify_column("status", ["y" * (1 << 20)] + ["paid"] * 20) is None
    assert classify_column("street", ["12 Main Street"] * 9 + ["x" * 300]) is not None
