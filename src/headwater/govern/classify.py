"""Which columns look like PII, and why: proposals of PII tags from a sample of a column's
values and its name, each carrying the evidence a person can check before accepting it.

Detectors read values first: checksums (IBAN mod-97, Luhn with card prefixes and lengths),
phonenumbers' numbering plans, the address and date grammars of a few countries. The column
name only agrees or disagrees: a name hint alone never proposes a tag (a column named
`academic_year_code` full of 1999..2024 is not a card's CVV), while values alone may, when
nearly all of them match a detector that rarely matches by chance. Birth dates and person
names need both, since dates and capitalised words are everywhere. A name that says what else
the column is (`build_version`, `part_number`, `email_hash`) stops proposals from values
alone, and numbers that look generated (dense or rising: order ids) are never cards or SSNs.

Confidence, for a detector of strength s (how much one matching value proves: 0.98 for an
IBAN checksum, 0.75 for an SSN's format), match rate r in the sample and a name hint h (1 if
the column name agrees, else 0):

    confidence = 1 - (1 - s * r) * (1 - 0.5 * h)

so an agreeing name halves the remaining doubt. Person names take s = 0.55 + 0.4 * k, where k
is the share of values holding a common given name or surname (`govern.names`).
"""

from __future__ import annotations

import ipaddress
import itertools
import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import phonenumbers

from headwater.govern.names import COMPANY_WORDS, FIRST_NAMES, PARTICLES, SURNAMES

MIN_SAMPLED = 5  # fewer non-null values than this is too little evidence for anything
HINT_DOUBT = 0.5  # the share of doubt left once the column name agrees with the values


@dataclass(frozen=True)
class Evidence:
    """One reason behind a proposal: what a detector saw in the sample, or in the name."""

    detector: str  # e.g. "email", "luhn", "iban", "name_hint"
    match_rate: float  # share of non-null sampled values matched; 0 for a name-only hint
    sampled: int  # non-null values looked at
    name_hint: str | None  # the column-name token that hinted at the tag, if any
    note: str  # one sentence a person reads: "97% of 200 values pass the Luhn check"


@dataclass(frozen=True)
class Proposal:
    """A PII tag proposed for one column, with the evidence for it (never empty)."""

    column: str
    tag: str
    confidence: float
    evidence: tuple[Evidence, ...]

    def explain(self) -> str:
        """One line: the tag, how sure, and every reason (detector: what it saw)."""
        reasons = "; ".join(f"{e.detector}: {e.note}" for e in self.evidence)
        return f"{self.column}: {self.tag} (confidence {self.confidence:.2f}) - {reasons}"


@dataclass(frozen=True)
class _Context:
    """What a value test may depend on besides the value itself."""

    hinted: bool  # the column name agrees: looser forms (bare digits, integers) count too
    latest_birth_year: int


@dataclass(frozen=True)
class _Detector:
    """A tag's value test, how much a match proves, and when its match rate is enough."""

    tag: str
    name: str
    strength: float
    hints: tuple[str, ...]  # name phrases (tokens joined by "_") that agree with the tag
    least_alone: float | None  # least match rate to propose without a hint; None: never
    least_hinted: float  # least match rate when the name agrees
    says: str  # what matching values are, for the evidence note
    matches: Callable[[object, _Context], bool]
    plausible: Callable[[Sequence[object]], bool] = lambda values: True  # column-level veto


# --- column names -----------------------------------------------------------------------


def _tokens(name: str) -> tuple[str, ...]:
    """`contactEmail`, `CONTACT_EMAIL` and `contact-email` all read as ("contact", "email")."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return tuple(t for t in re.split(r"[^0-9a-zß]+", spaced.lower()) if t)


# words that say what a column is when it is not PII: they stop a proposal from values alone
# (a four-part `build_version` parses as IPv4; a `part_number` can look like an SSN)
_NOT_PII_WORDS = frozenset(
    ("version", "build", "hash", "digest", "checksum", "sha", "md5", "sku", "part", "isbn",
     "ean", "upc", "seq", "sequence", "oid", "template")
)  # fmt: skip


def _hint(tokens: tuple[str, ...], phrases: Sequence[str]) -> str | None:
    """The first phrase whose words appear together in the name (whole words: `ip` is not
    a hint in `shipping`)."""
    joined = "_" + "_".join(tokens) + "_"
    return next((p for p in phrases if f"_{p}_" in joined), None)


# --- values -----------------------------------------------------------------------------


def _is_null(value: object) -> bool:
    """None, blank text, and NaN (how dataframes spell a missing value)."""
    if isinstance(value, float):
        return math.isnan(value)
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: object) -> str | None:
    """A value as text when it may hold an identifier: strings, and integers (not booleans)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _digit_string(value: object) -> str | None:
    """The digits of an integer, or of a string of digits grouped by spaces or dashes."""
    text = _text(value)
    if text is None or not re.fullmatch(r"\d[\d -]*\d", text):
        return None
    return text.replace(" ", "").replace("-", "")


def _is_sequence(values: Sequence[object]) -> bool:
    """Whether numbers look generated rather than issued: densely packed (order ids) or
    rising through the sample (a sequence read in insertion order)."""
    numbers = [int(d) for v in values if (d := _digit_string(v)) is not None]
    if len(numbers) < 3:
        return False
    rising = sum(b > a for a, b in itertools.pairwise(numbers))
    span = max(numbers) - min(numbers)
    return rising >= 0.9 * (len(numbers) - 1) or span < 100 * len(numbers)


def _not_a_sequence(values: Sequence[object]) -> bool:
    return not _is_sequence(values)


# --- email ------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"[A-Za-z0-9._%+'-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,24}"
)


_DISPLAY_NAME = re.compile(r"[^<>@]*<([^<>]+)>")  # "Ann Lee <ann@example.org>"


def _is_email(value: object, context: _Context) -> bool:
    if not isinstance(value, str):
        return False
    text = value.strip()
    named = _DISPLAY_NAME.fullmatch(text)
    return _EMAIL.fullmatch(named.group(1) if named else text) is not None


# --- phone ------------------------------------------------------------------------------

_PHONE_SHAPE = re.compile(r"\+?[\d\s().\-/]{7,24}")
# national forms: NANP numbers have no trunk prefix; these regions dial a leading 0
_TRUNK_REGIONS = ("GB", "DE", "FR", "NL")


def _is_phone(value: object, context: _Context) -> bool:
    """A number phonenumbers finds valid: E.164 / international as written, national forms
    in a few default regions. Without a name hint a national number must be written like
    one (ten digits or more, grouped), so zip codes, epochs and bare ids never count."""
    if not isinstance(value, str) and not context.hinted:
        return False
    text = _text(value)
    if text is None or not _PHONE_SHAPE.fullmatch(text):
        return False
    digits = re.sub(r"\D", "", text)
    if not 7 <= len(digits) <= 15:
        return False
    if text.startswith(("+", "00")):
        return _valid_phone("+" + digits.removeprefix("00"), None)
    if not context.hinted and (len(digits) < 10 or digits == text):
        return False
    regions = _TRUNK_REGIONS if digits.startswith("0") else ("US",)
    if any(_valid_phone(text, region) for region in regions):
        return True
    return context.hinted and len(digits) >= 11 and _valid_phone("+" + digits, None)  # MSISDN


def _valid_phone(text: str, region: str | None) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(text, region))
    except phonenumbers.NumberParseException:
        return False


# --- IBAN -------------------------------------------------------------------------------

# the IBAN registry's length per country (SWIFT), the first check before the checksum
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20,
    "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18,
    "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30,
    "KW": 30, "KZ": 20, "LB": 28, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}  # fmt: skip
_IBAN_SHAPE = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")


def _is_iban(value: object, context: _Context) -> bool:
    if not isinstance(value, str):
        return False
    text = value.replace(" ", "").upper()
    if not _IBAN_SHAPE.fullmatch(text) or IBAN_LENGTHS.get(text[:2]) != len(text):
        return False
    rearranged = text[4:] + text[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


# --- payment card -----------------------------------------------------------------------

# issuer prefixes (inclusive ranges of equal-length prefixes) and the lengths they issue
_CARD_RANGES = (
    ("4", "4", (13, 16, 19)),  # Visa
    ("51", "55", (16,)),  # Mastercard
    ("2221", "2720", (16,)),  # Mastercard 2-series
    ("34", "34", (15,)),  # American Express
    ("37", "37", (15,)),
    ("6011", "6011", (16, 19)),  # Discover
    ("644", "649", (16, 19)),
    ("65", "65", (16, 19)),
    ("3528", "3589", (16, 19)),  # JCB
    ("300", "305", (14, 16, 19)),  # Diners Club
    ("36", "36", (14, 16, 19)),
    ("38", "39", (14, 16, 19)),
    ("62", "62", (16, 17, 18, 19)),  # UnionPay
)


def _is_card(value: object, context: _Context) -> bool:
    digits = _digit_string(value)
    return digits is not None and _has_card_prefix(digits) and _luhn(digits)


def _has_card_prefix(digits: str) -> bool:
    return any(
        low <= digits[: len(low)] <= high and len(digits) in lengths
        for low, high, lengths in _CARD_RANGES
    )


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = int(char)
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


# --- IP address -------------------------------------------------------------------------


def _is_ip(value: object, context: _Context) -> bool:
    if not isinstance(value, str):
        return False  # an integer is an IPv4 address to `ipaddress`, and to nobody else
    try:
        ipaddress.ip_address(value.strip())
    except ValueError:
        return False
    return True


# --- US social security number ----------------------------------------------------------

_SSN_DASHED = re.compile(r"(\d{3})-(\d{2})-(\d{4})")
_SSN_LOOSE = re.compile(r"(\d{3})[ -]?(\d{2})[ -]?(\d{4})")


def _is_ssn(value: object, context: _Context) -> bool:
    """AAA-GG-SSSS outside the never-issued ranges (area 000, 666, 900-999; group 00;
    serial 0000). Undashed nine digits count only when the name says SSN."""
    if isinstance(value, int) and not isinstance(value, bool):
        text = f"{value:09d}" if context.hinted and 0 < value < 10**9 else ""
    else:
        text = value.strip() if isinstance(value, str) else ""
    found = (_SSN_LOOSE if context.hinted else _SSN_DASHED).fullmatch(text)
    if found is None:
        return False
    area, group, serial = (int(part) for part in found.groups())
    return 0 < area < 900 and area != 666 and group != 0 and serial != 0


# --- date of birth ----------------------------------------------------------------------

_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%Y/%m/%d", "%Y%m%d")


def _as_date(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()[:10]  # an ISO timestamp's date part
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


def _is_birth_date(value: object, context: _Context) -> bool:
    """A date whose year someone alive and over ten could be born in."""
    found = _as_date(value)
    return found is not None and 1900 <= found.year <= context.latest_birth_year


# --- postal address ---------------------------------------------------------------------

_STREET_WORDS = (
    "street|st|avenue|ave|av|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|"
    "terrace|ter|parkway|pkwy|highway|hwy|circle|cir|square|sq|trail|trl|crescent|close|"
    "grove|gardens|row|mews|walk|alley|plaza|loop|rue|chemin|allée|impasse|quai|via"
)
# "12 Main St", "221B Baker Street", "12 rue de la Paix": a number, then the street word
_NUMBER_FIRST = re.compile(
    rf"\b\d{{1,6}}[a-z]?,?\s+(?:[\w.'-]+\s+){{0,4}}?(?:{_STREET_WORDS})\b", re.I
)
# "Hauptstraße 12", "Keizersgracht 123": the street word ends the name, the number follows
_NUMBER_LAST = re.compile(
    r"\w*(?:straße|strasse|str\.|weg|platz|allee|gasse|straat|gracht|laan|plein|kade)"
    r"\s+\d{1,5}[a-z]?\b",
    re.I,
)


# when the name says address, a street without a house number or a PO box is enough
_STREET_NAMED = re.compile(rf"\b[^\W\d][\w'-]*\s+(?:{_STREET_WORDS})\b", re.I)
_PO_BOX = re.compile(r"\b(?:p\.?\s?o\.?\s?box|postfach)\s*\d+", re.I)


def _is_address(value: object, context: _Context) -> bool:
    if not isinstance(value, str):
        return False
    if _NUMBER_FIRST.search(value) or _NUMBER_LAST.search(value):
        return True
    return context.hinted and bool(_STREET_NAMED.search(value) or _PO_BOX.search(value))


# --- person name ------------------------------------------------------------------------

# a `<who>_name` column names a person; `product_name`, `city_name`, `file_name` do not
_PEOPLE = (
    "customer", "client", "contact", "employee", "person", "patient", "member", "owner",
    "holder", "cardholder", "recipient", "sender", "author", "buyer", "student", "guardian",
    "parent", "spouse", "driver", "passenger", "guest", "applicant", "beneficiary",
    "subscriber", "manager", "billing", "shipping", "legal", "maiden",
)  # fmt: skip
_NAME_PHRASES = (
    "first_name", "last_name", "full_name", "given_name", "middle_name", "family_name",
    "surname", "firstname", "lastname", "fullname", "givenname", "forename", "familyname",
    "cardholder", "holder", *(f"{who}_name" for who in _PEOPLE),
)  # fmt: skip
# a column called just `name` or `customer` may hold anything: the name list must agree too
_GENERIC_NAME = (
    ("name",), ("names",), ("contact",), ("customer",), ("client",), ("person",), ("author",),
    ("owner",),
)  # fmt: skip


def _name_words(value: object) -> list[str] | None:
    """The words of a person's name: one to three capitalised words without digits, plus
    particles (van, de, bin). "Smith, John" and "JOHN Q. PUBLIC" count; "Widget 3000" not."""
    if not isinstance(value, str):
        return None
    tokens = value.replace(",", " ").split()
    words = [t for t in tokens if t.lower() not in PARTICLES]
    if not 1 <= len(words) <= 3 or len(tokens) > 5:
        return None
    if any(_fold(word) in COMPANY_WORDS for word in words):
        return None  # "Smith Ltd": a surname, but a company's
    return words if all(_is_name_word(word) for word in words) else None


def _is_name_word(word: str) -> bool:
    core = word.removesuffix(".")
    letters = re.sub(r"['\u2019-]", "", core)
    return letters.isalpha() and not core[0].islower()


def _is_known_name(words: list[str]) -> bool:
    folded = (_fold(part) for word in words for part in word.split("-"))
    return any(part in FIRST_NAMES or part in SURNAMES for part in folded)


def _fold(word: str) -> str:
    """Müller → muller, O'Brien. → o'brien: how the name lists spell names."""
    plain = unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode()
    return plain.lower().strip(".")


# --- the detectors ----------------------------------------------------------------------

DETECTORS = (
    _Detector(
        tag="email", name="email", strength=0.9, least_alone=0.8, least_hinted=0.5,
        hints=("email", "e_mail", "mail", "emailaddress"),
        says="are email addresses", matches=_is_email,
    ),
    _Detector(
        tag="phone", name="phone", strength=0.85, least_alone=0.8, least_hinted=0.5,
        hints=("phone", "telephone", "tel", "mobile", "cell", "cellphone", "msisdn", "fax",
               "phonenumber", "telefon", "telefoon", "telefono", "mobiel", "handy"),
        says="are valid phone numbers (phonenumbers)", matches=_is_phone,
    ),
    _Detector(
        tag="iban", name="iban", strength=0.98, least_alone=0.8, least_hinted=0.5,
        hints=("iban",),
        says="pass the IBAN length and mod-97 checks", matches=_is_iban,
    ),
    _Detector(
        tag="card", name="luhn", strength=0.95, least_alone=0.8, least_hinted=0.5,
        hints=("card", "cc", "pan", "creditcard", "cardnumber", "ccnumber", "cardno"),
        says="pass the Luhn check with a card prefix and length", matches=_is_card,
        plausible=_not_a_sequence,
    ),
    _Detector(
        tag="ip", name="ip", strength=0.9, least_alone=0.8, least_hinted=0.5,
        hints=("ip", "ipv4", "ipv6", "ipaddress", "ip_addr", "remote_addr", "client_addr"),
        says="are IPv4 or IPv6 addresses", matches=_is_ip,
    ),
    _Detector(
        tag="ssn", name="ssn", strength=0.75, least_alone=0.9, least_hinted=0.6,
        hints=("ssn", "social_security", "socialsecurity"),
        says="are US SSNs (AAA-GG-SSSS in issued ranges)", matches=_is_ssn,
        plausible=_not_a_sequence,
    ),
    _Detector(
        tag="date_of_birth", name="birth_date", strength=0.7, least_alone=None,
        least_hinted=0.7,
        hints=("dob", "birth", "birthday", "birthdate", "born", "dateofbirth", "geburtsdatum"),
        says="are dates in plausible birth years", matches=_is_birth_date,
    ),
    _Detector(
        tag="address", name="street", strength=0.75, least_alone=0.8, least_hinted=0.5,
        hints=("address", "addr", "street", "streetaddress", "anschrift", "adresse", "strasse"),
        says="look like street addresses (house number and street word, or PO box)",
        matches=_is_address,
    ),
)  # fmt: skip


# --- proposing --------------------------------------------------------------------------


def classify_column(
    name: str, values: Sequence[object], *, type: str | None = None, today: date | None = None
) -> Proposal | None:
    """The most likely PII tag of one column, from a sample of its values, or None.

    Args:
        name: the column's name; it agrees with or stays silent on what the values show.
        values: a sample (up to ~1000); None, NaN and blank strings are skipped.
        type: the column's SQL type, when known: booleans and fractional numbers are never PII.
        today: the date birth years are judged against (default: today).

    Example:
        >>> classify_column("contact", ["ann@example.org"] * 9).tag
        'email'
    """
    # a value longer than any PII value is none (and would cost the regexes dearly: a 1 MB
    # field of one letter backtracks the address grammar for minutes)
    sample = [_TOO_LONG if _too_long(v) else v for v in values if not _is_null(v)]
    if len(sample) < MIN_SAMPLED or _never_pii(type):
        return None
    tokens = _tokens(name)
    latest = (today or date.today()).year - 10
    found = [_propose(d, name, tokens, sample, latest) for d in DETECTORS]
    found.append(_propose_name(name, tokens, sample))
    return max((p for p in found if p), key=lambda p: p.confidence, default=None)


def classify(
    columns: Mapping[str, Sequence[object]],
    *,
    types: Mapping[str, str] | None = None,
    today: date | None = None,
) -> list[Proposal]:
    """A proposal for each column that looks like PII, in the columns' order."""
    types = types or {}
    proposals = (
        classify_column(name, values, type=types.get(name), today=today)
        for name, values in columns.items()
    )
    return [p for p in proposals if p is not None]


MAX_LENGTH = 256  # characters: no email, phone, IBAN, card, address or name is longer
_TOO_LONG = object()  # stands for a longer value: no detector reads it


def _too_long(value: object) -> bool:
    return isinstance(value, str) and len(value) > MAX_LENGTH


def _never_pii(type_: str | None) -> bool:
    """Types whose values no detector reads: flags, and fractional numbers (amounts, rates)."""
    text = (type_ or "").strip().lower()
    if text.startswith(("bool", "float", "double", "real")):
        return True
    scale = re.fullmatch(r"(?:decimal|numeric)\s*\(\s*\d+\s*,\s*(\d+)\s*\)", text)
    return scale is not None and int(scale.group(1)) > 0


def _propose(
    detector: _Detector, column: str, tokens: tuple[str, ...], sample: list[object], latest: int
) -> Proposal | None:
    hint = _hint(tokens, detector.hints)
    context = _Context(hinted=hint is not None, latest_birth_year=latest)
    needed = detector.least_hinted if hint else detector.least_alone
    if needed is None or (hint is None and _NOT_PII_WORDS.intersection(tokens)):
        return None
    rate = _match_rate(detector, sample, context, needed)
    if rate is None or not detector.plausible(sample):
        return None
    note = f"{rate:.0%} of {len(sample)} values {detector.says}"
    seen = Evidence(detector.name, rate, len(sample), hint, note)
    return _proposal(column, detector.tag, detector.strength * rate, (seen,), hint)


def _match_rate(
    detector: _Detector, sample: list[object], context: _Context, needed: float
) -> float | None:
    """The share of `sample` the detector matches, or None as soon as it cannot reach
    `needed` (most columns fail most detectors within a few values)."""
    misses, allowed = 0, len(sample) - math.ceil(needed * len(sample) - 1e-9)
    for value in sample:
        if not detector.matches(value, context):
            misses += 1
            if misses > allowed:
                return None
    return (len(sample) - misses) / len(sample)


def _propose_name(column: str, tokens: tuple[str, ...], sample: list[object]) -> Proposal | None:
    """Person names need the column name (a person's) and the values (capitalised words)
    to agree; a bare `name` or `contact` needs the name list to agree as well."""
    hint = _hint(tokens, _NAME_PHRASES) or (tokens[0] if tokens in _GENERIC_NAME else None)
    if hint is None:
        return None
    shaped = [words for v in sample if (words := _name_words(v))]
    rate = len(shaped) / len(sample)
    known = sum(_is_known_name(words) for words in shaped) / len(sample)
    distinct = len({str(v) for v in sample})
    if rate < 0.7 or distinct < min(10, len(sample) // 2):
        return None  # a few repeated labels are an enum (tiers, colours), not people
    if (hint,) in _GENERIC_NAME and known < 0.5:
        return None
    n = len(sample)
    shape = f"{rate:.0%} of {n} values are 1-3 capitalised words without digits"
    evidence = (
        Evidence("person_name", rate, n, hint, shape),
        Evidence("name_list", known, n, None, f"{known:.0%} of {n} values hold a common name"),
    )
    return _proposal(column, "name", (0.55 + 0.4 * known) * rate, evidence, hint)


def _proposal(
    column: str, tag: str, value_score: float, seen: tuple[Evidence, ...], hint: str | None
) -> Proposal:
    doubt = (1 - value_score) * (HINT_DOUBT if hint else 1.0)
    evidence = seen
    if hint:
        said = f"the column name contains {hint!r}"
        evidence += (Evidence("name_hint", 0.0, seen[0].sampled, hint, said),)
    return Proposal(column, tag, round(1 - doubt, 3), evidence)
