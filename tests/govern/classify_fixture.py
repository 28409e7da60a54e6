"""A labelled fixture for the PII classifier: ~240 columns of realistic sampled values, each
labelled as a human auditor would (the PII tag, or None), including the traps that fool
name- or regex-only classifiers. Deterministic: one seeded `random.Random` builds it all.

Written from the classifier's spec, before the classifier: its name lists are its own (and
international), so the classifier's embedded name list is not what generates them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import random
import string
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache

import phonenumbers

SIZE = 200  # values sampled per column
SEED = 20240501
TODAY = date(2026, 11, 1)

Gen = Callable[[random.Random], object]
StrGen = Callable[[random.Random], str]


@dataclass(frozen=True)
class Column:
    """One sampled column and the tag an auditor gave it (None: not PII)."""

    table: str
    name: str
    type: str
    values: tuple[object, ...]
    tag: str | None


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST = _words(
    "James Mary John Patricia Robert Jennifer Michael Linda David Elizabeth William Susan "
    "Sarah Karen Thomas Nancy Daniel Lisa Matthew Betty Emma Olivia Noah Liam Sophie Lucas "
    "Hannah Lukas Lena Jonas Marie Felix Chloé Louis Camille Hugo Léa Giulia Marco Alessandro "
    "Francesca Sofia Mateo Lucía Pablo Carmen Javier Aarav Priya Rohan Ananya Vikram Chen Wei "
    "Mei Jing Hiroshi Yuki Haruto Sakura Minh Linh Oluwaseun Chidi Amara Fatima Omar Aisha "
    "Yusuf Leila Siobhan Niamh Ciarán Björn Astrid Sven Ingrid Zoë Jan Anouk Daan Sanne Piotr "
    "Agnieszka Katarzyna Dmitri Olga Ivan Nikolai Tatiana Kwame Abena Mohammed Layla Diego"
)
LAST = _words(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Wilson Anderson "
    "Taylor Thomas Moore Jackson Martin Lee Thompson White Harris Clark Lewis Walker Young "
    "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Dubois Lefebvre Moreau Laurent "
    "Rossi Russo Ferrari Esposito Bianchi Romano García López Fernández González Sánchez Patel "
    "Sharma Gupta Singh Iyer Nguyen Tran Pham Wang Zhang Liu Chen Tanaka Suzuki Takahashi "
    "Watanabe Kim Park Choi Okafor Adeyemi Mensah Haddad Khan Hussain O'Brien Murphy Kelly "
    "Byrne Andersson Johansson Nilsson Jansen Visser Bakker Kowalski Nowak Wiśniewska Ivanov "
    "Petrova Smirnov Novak Horvat Papadopoulos Yilmaz Demir Silva Santos Oliveira Costa"
)
PARTICLED = ("van der Berg", "de Vries", "van Dijk", "von Weizsäcker", "da Silva", "Le Roux")
DOMAINS = _words(
    "gmail.com yahoo.com outlook.com hotmail.co.uk icloud.com proton.me web.de orange.fr "
    "acme-corp.com example.org mail.ru uni-heidelberg.de company.nl"
)
STREETS = _words(
    "Oak Maple Main Elm Washington Lake Hill Park Cedar Pine Sunset Lincoln Jackson Highland "
    "Madison Walnut Chestnut Willow Church Mill"
)
US_SUFFIXES = _words("St Street Ave Avenue Rd Road Blvd Ln Lane Dr Drive Ct Way Pl Terrace Pkwy")
US_CITIES = (
    ("Springfield", "IL"),
    ("Austin", "TX"),
    ("Portland", "OR"),
    ("Boston", "MA"),
    ("Denver", "CO"),
    ("Madison", "WI"),
    ("Raleigh", "NC"),
    ("Tampa", "FL"),
)
UK_TOWNS = ("London", "Leeds", "Bristol", "Manchester", "York", "Cardiff", "Glasgow")
DE_NAMES = ("Haupt", "Linden", "Berliner", "Goethe", "Schiller", "Bahnhof", "Kirch", "Garten")
DE_CITIES = ("Berlin", "München", "Hamburg", "Köln", "Leipzig", "Dresden")
FR_STREETS = ("de la Paix", "Victor Hugo", "des Lilas", "du Général Leclerc", "Saint-Michel")
NL_NAMES = ("Keizers", "Heren", "Prinsen", "Kerk", "Molen", "Linden")
WORDS = _words(
    "great fast delivery product quality arrived late broken box support helpful again would "
    "recommend price value colour size smaller than expected thanks refund please order "
    "item works fine battery screen sound packaging"
)
PRODUCT_WORDS = _words(
    "Blue Red Steel Oak Deluxe Classic Ergonomic Smart Compact Widget Lamp Chair Desk "
    "Kettle Blender Speaker Cable Charger Backpack Bottle"
)
US_AREAS = (212, 213, 312, 404, 415, 503, 512, 602, 617, 646, 702, 713, 718, 206, 303, 305)

# --- value generators ------------------------------------------------------------------


def _person(rng: random.Random) -> tuple[str, str]:
    last = rng.choice(PARTICLED) if rng.random() < 0.05 else rng.choice(LAST)
    return rng.choice(FIRST), last


def full_name(rng: random.Random) -> str:
    first, last = _person(rng)
    roll = rng.random()
    if roll < 0.1:
        return f"{first} {rng.choice(string.ascii_uppercase)}. {last}"
    if roll < 0.15:
        return f"{last}, {first}"
    return f"{first} {last}"


def email(rng: random.Random) -> str:
    first, last = (_ascii(part) for part in _person(rng))
    local = rng.choice(
        (
            f"{first}.{last}",
            f"{first[0]}{last}",
            f"{first}{rng.randint(1, 99)}",
            f"{first}_{last}",
            f"{last}+shop",
        )
    )
    return f"{local}@{rng.choice(DOMAINS)}"


def _ascii(text: str) -> str:
    """A name as it appears in an email's local part: no accents, spaces or apostrophes."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return plain.lower().replace(" ", "").replace("'", "")


# national numbers as (trunk + prefix, digits after it); drawn until phonenumbers says valid
_PHONE_SHAPES: dict[str, tuple[tuple[str, int], ...]] = {
    "US": tuple((str(area), 7) for area in US_AREAS),
    "GB": (("077", 8), ("078", 8), ("079", 8), ("0207", 7), ("0208", 7), ("0161", 7)),
    "DE": (("030", 8), ("089", 7), ("040", 8), ("0151", 8), ("0176", 8)),
    "FR": (("01", 8), ("02", 8), ("04", 8), ("06", 8), ("07", 8)),
    "NL": (("06", 8), ("020", 7), ("010", 7)),
}


def phone_number(rng: random.Random, region: str) -> phonenumbers.PhoneNumber:
    """A number phonenumbers itself considers valid (drawn until one is)."""
    while True:
        prefix, rest = rng.choice(_PHONE_SHAPES[region])
        number = phonenumbers.parse(prefix + _digits(rng, rest), region)
        if phonenumbers.is_valid_number(number):
            return number


def phone(regions: tuple[str, ...], form: int) -> StrGen:
    def make(rng: random.Random) -> str:
        number = phone_number(rng, rng.choice(regions))
        return phonenumbers.format_number(number, form)

    return make


def us_dotted(rng: random.Random) -> str:
    digits = str(phone_number(rng, "US").national_number)
    return f"{digits[:3]}.{digits[3:6]}.{digits[6:]}"


E164 = phonenumbers.PhoneNumberFormat.E164
INTL = phonenumbers.PhoneNumberFormat.INTERNATIONAL
NATIONAL = phonenumbers.PhoneNumberFormat.NATIONAL

IBAN_BBAN: dict[str, Callable[[random.Random], str]] = {
    "DE": lambda r: _digits(r, 18),
    "GB": lambda r: r.choice(("NWBK", "BARC", "HSBC", "LOYD")) + _digits(r, 14),
    "FR": lambda r: _digits(r, 23),
    "NL": lambda r: r.choice(("ABNA", "INGB", "RABO")) + _digits(r, 10),
    "ES": lambda r: _digits(r, 20),
    "IT": lambda r: r.choice(string.ascii_uppercase) + _digits(r, 22),
    "BE": lambda r: _digits(r, 12),
    "CH": lambda r: _digits(r, 17),
}


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(count))


def iban(countries: tuple[str, ...], *, grouped: bool = False) -> StrGen:
    def make(rng: random.Random) -> str:
        country = rng.choice(countries)
        bban = IBAN_BBAN[country](rng)
        numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
        value = f"{country}{98 - int(numeric) % 97:02d}{bban}"
        if grouped:
            return " ".join(value[i : i + 4] for i in range(0, len(value), 4))
        return value

    return make


CARD_PREFIXES = {
    "visa": (("4",), 16),
    "mastercard": (("51", "52", "53", "54", "55", "2221", "2720", "2300"), 16),
    "amex": (("34", "37"), 15),
    "discover": (("6011", "65", "644"), 16),
    "jcb": (("3528", "3530", "3589"), 16),
    "diners": (("36", "300"), 14),
}


def luhn_complete(body: str) -> str:
    """`body` followed by the check digit that makes it pass the Luhn check."""
    total = 0
    for index, char in enumerate(reversed(body)):
        digit = int(char)
        if index % 2 == 0:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return body + str((10 - total % 10) % 10)


def card(brands: tuple[str, ...], *, sep: str = "") -> StrGen:
    def make(rng: random.Random) -> str:
        prefixes, length = CARD_PREFIXES[rng.choice(brands)]
        prefix = rng.choice(prefixes)
        number = luhn_complete(prefix + _digits(rng, length - len(prefix) - 1))
        return sep.join(number[i : i + 4] for i in range(0, len(number), 4)) if sep else number

    return make


def ssn(*, dashed: bool = True) -> StrGen:
    def make(rng: random.Random) -> str:
        area = rng.choice([a for a in range(1, 900) if a != 666])
        text = f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
        return text if dashed else text.replace("-", "")

    return make


def ipv4(rng: random.Random) -> str:
    first = rng.choice([f for f in range(1, 224) if f != 127])
    return ".".join(str(o) for o in (first, *(rng.randint(0, 255) for _ in range(3))))


def private_ipv4(rng: random.Random) -> str:
    return rng.choice(("10.{}.{}.{}", "192.168.{}.{}{}", "172.16.{}.{}")).format(
        *(rng.randint(0, 25) for _ in range(3))
    )


def ipv6(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return str(ipaddress.IPv6Address((0x20010DB8 << 96) | rng.getrandbits(64)))
    return str(ipaddress.IPv6Address(rng.getrandbits(128)))


def birth_date(rng: random.Random) -> date:
    return date(1940, 1, 1) + timedelta(days=rng.randint(0, 65 * 365))


def _recent(rng: random.Random) -> date:
    return date(2020, 1, 1) + timedelta(days=rng.randint(0, (TODAY - date(2020, 1, 1)).days))


def date_between(start: date, end: date) -> Gen:
    return lambda rng: start + timedelta(days=rng.randint(0, (end - start).days))


def us_address(*, full: bool = False) -> Gen:
    def make(rng: random.Random) -> str:
        direction = rng.choice(("", "", "N ", "W "))
        text = f"{rng.randint(1, 9999)} {direction}{rng.choice(STREETS)} {rng.choice(US_SUFFIXES)}"
        if rng.random() < 0.15:
            text += f", Apt {rng.randint(1, 40)}{rng.choice('ABCD')}"
        if full:
            city, state = rng.choice(US_CITIES)
            text += f", {city}, {state} {rng.randint(10000, 99999)}"
        return text

    return make


def uk_address(rng: random.Random) -> str:
    road = rng.choice(("Road", "Close", "Crescent", "Gardens", "Lane", "Street"))
    postcode = f"{rng.choice(('NW1', 'LS2', 'BS8', 'M14', 'YO1'))} {rng.randint(1, 9)}XE"
    return f"{rng.randint(1, 300)} {rng.choice(STREETS)} {road}, {rng.choice(UK_TOWNS)} {postcode}"


def de_address(rng: random.Random) -> str:
    street = rng.choice(DE_NAMES) + rng.choice(("straße", "weg", "platz", "allee", "str."))
    return f"{street} {rng.randint(1, 120)}, {rng.randint(10000, 99999)} {rng.choice(DE_CITIES)}"


def fr_address(rng: random.Random) -> str:
    kind = rng.choice(("rue", "avenue", "boulevard", "place", "chemin"))
    street = rng.choice(FR_STREETS)
    return f"{rng.randint(1, 150)} {kind} {street}, {rng.randint(10, 95)}000 Paris"


def nl_address(rng: random.Random) -> str:
    street = rng.choice(NL_NAMES) + rng.choice(("gracht", "straat", "laan", "plein", "weg"))
    return f"{street} {rng.randint(1, 400)}, {rng.randint(1000, 9999)} AB Amsterdam"


def mixed(*gens: Gen) -> Gen:
    return lambda rng: rng.choice(gens)(rng)


def choice(*options: object) -> Gen:
    return lambda rng: rng.choice(options)


def sentence(rng: random.Random, *, extra: str = "") -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(4, 14))]
    return (" ".join(words).capitalize() + extra + ".").strip()


def product_name(rng: random.Random) -> str:
    words = rng.sample(PRODUCT_WORDS, 2)
    if rng.random() < 0.5:
        words.append(str(rng.choice((100, 250, 3000, 500, 12))))
    return " ".join(words)


def uuid(rng: random.Random) -> str:
    value = f"{rng.getrandbits(128):032x}"
    return "-".join((value[:8], value[8:12], "4" + value[13:16], value[16:20], value[20:]))


def ean13(prefix: str) -> Gen:
    def make(rng: random.Random) -> str:
        body = prefix + _digits(rng, 12 - len(prefix))
        total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
        return body + str((10 - total % 10) % 10)

    return make


# --- the columns -----------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """How to draw one column: "table.column", its value generator, SQL type, share of nulls."""

    where: str
    gen: Gen
    type: str = "varchar"
    nulls: float = 0.0


def _sequence(start: int, step: int = 1) -> Gen:
    counter = iter(range(start, start + step * 10 * SIZE, step))
    return lambda rng: next(counter)


def _text(gen: Callable[[random.Random], object], fmt: str) -> StrGen:
    """A date generator's values as text in `fmt` (strftime)."""
    return lambda rng: format(gen(rng), fmt)


def _academic_year(rng: random.Random) -> str:
    start = rng.randint(1999, 2025)
    return f"{start}/{(start + 1) % 100:02d}"


def _code(rng: random.Random, letters: int, digits: int) -> str:
    return "".join(rng.choice(string.ascii_uppercase) for _ in range(letters)) + _digits(
        rng, digits
    )


US, EU = ("US",), ("GB", "DE", "FR", "NL")
COMPANY = ("Corp", "GmbH", "Ltd", "Industries", "and Sons")
CARDS = tuple(CARD_PREFIXES)
NOW = datetime(2026, 10, 1)

POSITIVES: dict[str, list[Spec]] = {
    "email": [
        Spec("customers.email", email),
        Spec("leads.contact_email", email, nulls=0.05),
        Spec("users.user_email", email),
        Spec("crm.EmailAddress", email),
        Spec("invoices.billing_email", email, nulls=0.3),
        Spec("import_2023.col_7", email),  # PII under a useless name
        Spec("accounts.login", email),
        Spec("messages.recipient", email, nulls=0.1),
        Spec("staff.work_email", email),
        Spec("legacy.EMAIL", lambda r: email(r).upper()),
        Spec("signups.customer_email", mixed(email, email, email, choice("n/a"))),
        Spec("subscribers.e_mail", email),
        Spec("alerts.notify_to", email),
        Spec("contacts.email_address", email, nulls=0.2),
    ],
    "phone": [
        Spec("customers.phone", phone(US, NATIONAL)),
        Spec("users.phone_number", phone(US + EU, E164)),
        Spec("uk_customers.mobile", phone(("GB",), NATIONAL)),
        Spec("customers_intl.customer_phone", phone(US + EU, INTL)),
        Spec("kunden.telefon", phone(("DE",), NATIONAL)),
        Spec("clients.contact_no", phone(("FR",), NATIONAL)),
        Spec("import_2023.field_3", phone(US + EU, E164)),
        Spec("vendors.fax", phone(US, NATIONAL), nulls=0.2),
        Spec("sms_log.msisdn", lambda r: phone(EU, E164)(r).lstrip("+")),
        Spec("customers.home_phone", phone(US, NATIONAL), nulls=0.5),
        Spec("orders.phone", lambda r: phone_number(r, "US").national_number, "bigint"),
        Spec("klanten.mobiel_nl", phone(("NL",), NATIONAL)),
        Spec("partners.phone_intl", phone(US + EU, INTL)),
        Spec("drivers.cell", us_dotted),
    ],
    "iban": [
        Spec("payouts.iban", iban(("DE",))),
        Spec("suppliers.account_iban", iban(tuple(IBAN_BBAN))),
        Spec("employees.bank_account", iban(("DE", "FR", "NL"), grouped=True)),
        Spec("payees.payee_iban", iban(("GB",))),
        Spec("import_2023.ref_b", iban(tuple(IBAN_BBAN))),
        Spec("refunds.iban", iban(("ES", "IT")), nulls=0.4),
        Spec("sepa_mandates.creditor_iban", iban(("FR",), grouped=True)),
        Spec("klanten.IBAN_NUMBER", iban(("NL",))),
        Spec("direct_debits.debtor_account", iban(("ES", "BE", "CH"))),
        Spec("transfers.sepa_account", iban(("DE", "IT", "BE")), nulls=0.1),
    ],
    "card": [
        Spec("payments.card_number", card(("visa",))),
        Spec("payments_old.cc_number", card(CARDS)),
        Spec("transactions.pan", card(("mastercard",))),
        Spec("corporate.credit_card", card(("amex",))),
        Spec("checkout.payment_card", card(CARDS, sep=" ")),
        Spec("legacy_pay.card_no", lambda r: int(card(("visa",))(r)), "bigint"),
        Spec("import_2023.col_12", card(CARDS)),
        Spec("terminals.card_pan", card(("visa", "mastercard"), sep="-")),
        Spec("wallet.cardnumber", card(("visa", "mastercard")), nulls=0.3),
        Spec("subscriptions.stored_card", card(("discover", "jcb", "diners"))),
    ],
    "ip": [
        Spec("sessions.ip_address", ipv4),
        Spec("requests.client_ip", mixed(ipv4, ipv6)),
        Spec("access_log.remote_addr", ipv4),
        Spec("sessions_v6.ipv6_address", ipv6),
        Spec("firewall.src_ip", private_ipv4),
        Spec("users.last_login_ip", ipv4, nulls=0.4),
        Spec("import_2023.host", mixed(ipv4, ipv4, ipv6)),
        Spec("proxy_log.x_forwarded_for", ipv4),
        Spec("flows.dst", ipv4),
        Spec("peers.peer_ip", ipv6),
    ],
    "ssn": [
        Spec("employees.ssn", ssn()),
        Spec("applicants.social_security_number", ssn()),
        Spec("payroll.ssn", ssn(dashed=False)),
        Spec("patients.customer_ssn", ssn(), nulls=0.4),
        Spec("import_2023.col_9", ssn()),
        Spec("hr_legacy.ssn_number", lambda r: int(ssn(dashed=False)(r)), "bigint"),
        Spec("contractors.employee_ssn", ssn()),
        Spec("tax_forms.SSN", ssn()),
        Spec("w2.taxpayer_ssn", ssn(), nulls=0.1),
    ],
    "date_of_birth": [
        Spec("customers.dob", birth_date, "date"),
        Spec("users.date_of_birth", _text(birth_date, "%Y-%m-%d")),
        Spec("patients.birth_date", birth_date, "date"),
        Spec("members.birthday", _text(birth_date, "%m/%d/%Y")),
        Spec("athletes.born_on", birth_date, "date"),
        Spec(
            "policies.customer_dob",
            lambda r: datetime.combine(birth_date(r), NOW.time()),
            "timestamp",
        ),
        Spec("students.dob", birth_date, "date", nulls=0.3),
        Spec("kunden.BirthDate", _text(birth_date, "%d.%m.%Y")),
        Spec("visits.patient_dob", birth_date, "date"),
        Spec("insured.date_birth", birth_date, "date"),
    ],
    "address": [
        Spec("customers.address", us_address()),
        Spec("stores.street_address", us_address()),
        Spec("invoices.billing_address", us_address(full=True)),
        Spec("orders.shipping_address", us_address(full=True), nulls=0.3),
        Spec("accounts.address_line1", us_address()),
        Spec("uk_customers.home_address", uk_address),
        Spec("kunden.anschrift", de_address),
        Spec("import_2023.col_4", us_address(full=True)),
        Spec("residents.street", mixed(us_address(), uk_address)),
        Spec("clients_fr.addr", fr_address),
        Spec("klanten.delivery_address", nl_address),
    ],
    "name": [
        Spec("customers.first_name", lambda r: _person(r)[0]),
        Spec("customers.last_name", lambda r: _person(r)[1]),
        Spec("users.full_name", full_name),
        Spec("orders.customer_name", full_name),
        Spec("people.name", full_name),
        Spec("employees.surname", lambda r: _person(r)[1]),
        Spec("members.given_name", lambda r: _person(r)[0]),
        Spec("leads.contact_name", full_name, nulls=0.1),
        Spec("payroll.employee_name", full_name),
        Spec("crm.FirstName", lambda r: _person(r)[0]),
        Spec("legacy.LAST_NAME", lambda r: _person(r)[1].upper()),
        Spec("payments.cardholder_name", lambda r: full_name(r).upper()),
        Spec("visits.patient_name", full_name, nulls=0.4),
        Spec("accounts.account_holder", full_name),
        Spec("articles.author_name", full_name),
        Spec("kv_store.value", full_name),  # PII under a useless name
    ],
}

NEGATIVES: dict[str, list[Spec]] = {
    "year codes": [
        Spec("courses.academic_year_code", lambda r: r.randint(1999, 2024), "integer"),
        Spec("budgets.fiscal_year", lambda r: r.randint(2005, 2026), "integer"),
        Spec("reports.year", lambda r: str(r.randint(1990, 2026))),
        Spec("cars.model_year", lambda r: r.randint(1970, 2026), "integer"),
        Spec("enrolments.ACADEMIC_YEAR", _academic_year),
        Spec("schools.school_year_code", lambda r: f"SY{r.randint(2000, 2026)}"),
    ],
    "postal codes": [
        Spec("customers.zip", lambda r: f"{r.randint(501, 99950):05d}"),
        Spec("stores.zip_code", lambda r: r.randint(10000, 99950), "integer"),
        Spec("addresses.postal_code", lambda r: f"{r.randint(501, 99950):05d}-{_digits(r, 4)}"),
        Spec("geo.zip9", lambda r: f"{r.randint(501, 99950):05d}{_digits(r, 4)}"),
        Spec("invoices.billing_zip", lambda r: f"{r.randint(501, 99950):05d}", nulls=0.3),
        Spec("uk_customers.postcode", choice("SW1A 1AA", "M1 1AE", "B33 8TH", "CR2 6XH")),
    ],
    "identifiers": [
        Spec("orders.order_id", _sequence(100_000), "bigint"),
        Spec("orders_ext.order_number", lambda r: _digits(r, 16)),
        Spec("ledger.transaction_id", lambda r: "4" + _digits(r, 15)),
        Spec("billing.invoice_number", _sequence(4_000_000_000_000_000), "bigint"),
        Spec("cards_issued.card_id", _sequence(5_100_000_000_000_000, 7), "bigint"),
        Spec("shipments.tracking_number", lambda r: _digits(r, 22)),
        Spec("tickets.ref_number", lambda r: _digits(r, 10)),
        Spec("ledger.account_number", lambda r: _digits(r, r.randint(10, 12))),
        Spec("customers.customer_id", lambda r: r.randint(1, 10**9), "bigint"),
        Spec("events.id", _sequence(1), "bigint"),
        Spec("users.id", uuid, "uuid"),
        Spec("sessions.session_id", uuid),
        Spec("requests.request_id", uuid),
        Spec("spans.trace_id", lambda r: f"{r.getrandbits(128):032x}"),
        Spec("names.name_id", _sequence(1), "bigint"),
        Spec("import_2023.col_5", lambda r: r.randint(0, 10**6), "bigint"),
    ],
    "products": [
        Spec("products.sku", lambda r: f"SKU-{_digits(r, 5)}-{r.choice(('BL', 'RD', 'XL'))}"),
        Spec("products.product_code", lambda r: _code(r, 2, 4)),
        Spec("products.ean", ean13("40")),
        Spec(
            "books.isbn",
            lambda r: f"978-{_digits(r, 1)}-{_digits(r, 2)}-{_digits(r, 6)}-{_digits(r, 1)}",
        ),
        Spec("parts.part_number", lambda r: f"{_digits(r, 3)}-{_digits(r, 4)}-{_digits(r, 2)}"),
        Spec("devices.model_number", lambda r: f"XJ-{r.randint(100, 9999)}"),
        Spec("courses.course_code", lambda r: f"CS{r.randint(100, 499)}"),
        Spec("gift_cards.gift_card_code", lambda r: "-".join(_code(r, 2, 2) for _ in range(4))),
        Spec("orders.coupon", lambda r: f"SAVE{r.choice((10, 15, 20))}", nulls=0.4),
    ],
    "amounts": [
        Spec("orders.amount", lambda r: Decimal(r.randint(100, 10**6)) / 100, "decimal(18,2)"),
        Spec("products.price", lambda r: round(r.uniform(0.5, 999), 2), "double"),
        Spec("invoices.total", lambda r: Decimal(r.randint(1000, 10**7)) / 100, "decimal(12,2)"),
        Spec("order_lines.quantity", lambda r: r.randint(1, 20), "integer"),
        Spec("promotions.discount_rate", choice(0.05, 0.1, 0.15, 0.2), "double"),
        Spec(
            "accounts.balance", lambda r: Decimal(r.randint(-(10**5), 10**7)) / 100, "decimal(18,2)"
        ),
        Spec("accounts.credit_limit", choice(500, 1000, 2500, 5000, 10000), "integer"),
        Spec("products.weight_kg", lambda r: Decimal(r.randint(1, 99999)) / 1000, "decimal(8,3)"),
        Spec("sensors.reading", lambda r: r.gauss(20, 5), "double"),
        Spec("stores.latitude", lambda r: round(r.uniform(-90, 90), 6), "double"),
        Spec("stores.longitude", lambda r: round(r.uniform(-180, 180), 6), "double"),
        Spec("customers.age", lambda r: r.randint(18, 90), "integer"),
        Spec("reviews.score", lambda r: r.randint(1, 5), "integer"),
        Spec("city_assets.street_light_count", lambda r: r.randint(0, 300), "integer"),
        Spec("vehicles.license_plate_count", lambda r: r.randint(0, 4), "integer"),
    ],
    "times": [
        Spec(
            "orders.created_at", lambda r: NOW - timedelta(seconds=r.randint(0, 10**8)), "timestamp"
        ),
        Spec(
            "orders.updated_at",
            lambda r: (NOW - timedelta(seconds=r.randint(0, 10**8))).isoformat(),
        ),
        Spec("events.event_epoch", lambda r: r.randint(1_500_000_000, 1_790_000_000), "bigint"),
        Spec(
            "events.event_ms", lambda r: r.randint(1_500_000_000_000, 1_790_000_000_000), "bigint"
        ),
        Spec("orders.order_date", date_between(date(2019, 1, 1), TODAY), "date"),
        Spec("shipments.ship_date", _text(date_between(date(2020, 1, 1), TODAY), "%m/%d/%Y")),
        Spec("employees.hire_date", date_between(date(1975, 1, 1), TODAY), "date"),
        Spec("cards_issued.expiry_date", date_between(TODAY, date(2031, 12, 31)), "date"),
        Spec(
            "users.last_login",
            lambda r: NOW - timedelta(minutes=r.randint(0, 10**6)),
            "timestamp",
            0.2,
        ),
        Spec(
            "devices.first_seen",
            lambda r: NOW - timedelta(minutes=r.randint(0, 10**6)),
            "timestamp",
        ),
        Spec(
            "weather.observation_time",
            lambda r: f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:00",
        ),
    ],
    "booleans": [
        Spec("campaigns.email_sent", lambda r: r.random() < 0.5, "boolean"),
        Spec("users.is_active", lambda r: r.random() < 0.8, "boolean"),
        Spec("leads.has_phone", choice("Y", "N")),
        Spec("users.email_verified", lambda r: r.random() < 0.7, "boolean"),
        Spec("kyc.dob_verified", lambda r: r.random() < 0.9, "boolean"),
        Spec("acl.ip_allowed", lambda r: r.random() < 0.9, "boolean"),
    ],
    "enums": [
        Spec("orders.status", choice("pending", "paid", "shipped", "cancelled")),
        Spec("orders.order_status", choice("NEW", "IN_PROGRESS", "DONE")),
        Spec("customers.country", choice("US", "GB", "DE", "FR", "NL", "ES")),
        Spec("stores.country_code", choice("USA", "GBR", "DEU", "FRA")),
        Spec("orders.currency", choice("USD", "EUR", "GBP", "JPY")),
        Spec("users.language", choice("en-US", "de-DE", "fr-FR", "nl-NL")),
        Spec("customers.gender", choice("F", "M", "X", "U")),
        Spec("loyalty.tier_name", choice("Gold", "Silver", "Bronze", "Platinum")),
        Spec("payments.payment_method", choice("card", "paypal", "sepa", "apple_pay")),
        Spec("customers.contact_method", choice("email", "phone", "sms", "post")),
        Spec("addresses.address_type", choice("billing", "shipping", "home")),
        Spec("payments.card_type", choice("VISA", "MASTERCARD", "AMEX", "DISCOVER")),
        Spec("payouts.iban_country", choice("DE", "FR", "NL", "ES")),
        Spec("customers.birth_country", choice("US", "MX", "IN", "CN", "DE")),
        Spec("customers.state", choice("CA", "NY", "TX", "WA", "IL")),
        Spec("customers.city", choice("Springfield", "Austin", "Portland", "Boston")),
        Spec("products.color", choice("Red", "Blue", "Green", "Black", "White")),
        Spec("files.mime_type", choice("application/pdf", "image/png", "text/csv")),
        Spec("flags.feature_flags", choice("a,b", "b", "c,d,e", "")),
        Spec("audit.db_user", choice("etl_loader", "reporting", "admin", "svc_api")),
    ],
    "hashes": [
        Spec("customers.email_hash", lambda r: hashlib.sha256(email(r).encode()).hexdigest()),
        Spec("customers.phone_md5", lambda r: hashlib.md5(_digits(r, 10).encode()).hexdigest()),
        Spec("users.password_hash", lambda r: "$2b$12$" + _code(r, 22, 31)),
        Spec("integrations.api_key", lambda r: f"{r.getrandbits(160):x}".upper()),
        Spec("files.checksum", lambda r: hashlib.sha1(_digits(r, 12).encode()).hexdigest()),
    ],
    "free text": [
        Spec("orders.comment", sentence, nulls=0.5),
        Spec("reviews.review_text", sentence),
        Spec("products.description", sentence),
        Spec("tickets.notes", lambda r: None),
        Spec("tickets.support_message", mixed(*[sentence] * 19, lambda r: f"Mail {email(r)}")),
        Spec("import_2023.col_8", lambda r: r.choice(WORDS)),
    ],
    "misleading names": [
        Spec("devices.phone_model", choice("iPhone 14", "iPhone 15 Pro", "Galaxy S23", "Pixel 8")),
        Spec("products.name", product_name),
        Spec("products.product_name", product_name),
        Spec("suppliers.company_name", lambda r: f"{r.choice(LAST)} {r.choice(COMPANY)}"),
        Spec("stores.city_name", choice("Springfield", "Austin", "Portland", "Leeds", "Berlin")),
        Spec("uploads.file_name", lambda r: f"report_{r.randint(2019, 2026)}_{_digits(r, 2)}.pdf"),
        Spec("servers.host_name", lambda r: f"web-{_digits(r, 2)}.prod.internal"),
        Spec("users.username", lambda r: f"{_ascii(r.choice(FIRST))}{r.randint(1, 999)}"),
        Spec("campaigns.email_template", choice("welcome_v2", "reset_password", "receipt")),
        Spec("leads.email_domain", choice(*DOMAINS)),
        Spec("payments.card_last4", lambda r: _digits(r, 4)),
        Spec("payments.card_expiry", lambda r: f"{r.randint(1, 12):02d}/{r.randint(26, 32)}"),
        Spec("payments.card_bin", choice("411111", "555555", "378282", "601111")),
        Spec("banks.swift_bic", choice("DEUTDEFF", "BNPAFRPP", "INGBNL2A", "NWBKGB2L")),
        Spec("banks.routing_number", lambda r: _digits(r, 9)),
        Spec("vendors.ein", lambda r: f"{_digits(r, 2)}-{_digits(r, 7)}"),
        Spec(
            "devices.mac_address", lambda r: ":".join(f"{r.randint(0, 255):02x}" for _ in "123456")
        ),
        Spec(
            "releases.app_version",
            lambda r: f"{r.randint(1, 5)}.{r.randint(0, 20)}.{r.randint(0, 9)}",
        ),
        Spec(
            "releases.build_version",
            lambda r: f"{r.randint(1, 3)}.{r.randint(0, 9)}.0.{_digits(r, 4)}",
        ),
        Spec("pages.url", lambda r: f"https://shop.example.com/p/{r.randint(1, 99999)}"),
        Spec(
            "requests.user_agent", choice("Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "curl/8.4.0")
        ),
        Spec("calls.phone_ext", lambda r: str(r.randint(100, 9999))),
        Spec("uk_banks.sort_code", lambda r: f"{_digits(r, 2)}-{_digits(r, 2)}-{_digits(r, 2)}"),
        Spec("vendors.vat_number", lambda r: "DE" + _digits(r, 9)),
        Spec(
            "providers.npi", lambda r: luhn_complete("80840" + r.choice("12") + _digits(r, 8))[5:]
        ),
    ],
}


def _draw(rng: random.Random, spec: Spec, tag: str | None) -> Column:
    table, name = spec.where.split(".")
    values = tuple(None if rng.random() < spec.nulls else spec.gen(rng) for _ in range(SIZE))
    return Column(table, name, spec.type, values, tag)


@cache
def build_fixture(seed: int = SEED) -> tuple[Column, ...]:
    """Every labelled column, drawn from one seeded generator (so the same on every run)."""
    rng = random.Random(seed)
    positives = [_draw(rng, spec, tag) for tag, specs in POSITIVES.items() for spec in specs]
    negatives = [_draw(rng, spec, None) for specs in NEGATIVES.values() for spec in specs]
    return (*positives, *negatives)
