"""Who `headwater forget` forgets, and how their data is recognised wherever it is kept.

A subject is a key column and a value (`customer_id=42`), typed as each contract with that
column declares it. Its rows in a raw table are those whose key is the value. A quarantined
record (kept as it arrived: a JSON object of a CSV record's fields, a JSON line, or a line
that could not even be split) is the subject's when its key field is the value; when the
record has no such field it is the subject's if it holds one of the subject's identifying
values (those of its raw rows' PII-tagged columns, e.g. the email), and a record that is no
JSON object also when it holds the value as a whole token — conservatively: an unreadable
record that may be theirs is erased. Free text (the catalog's, the alert log) is redacted by
the same tests: the identifying values and the value as a token are replaced, and a JSON
row of the subject (a rule's failing sample) is dropped.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from sqlglot import exp

from headwater.engine import Engine
from headwater.errors import UsageError
from headwater.zones.erasure import Doomed

ERASED = "[erased]"
MIN_IDENTIFYING = 4  # shorter identifying values ("US", "Al") are too common to redact on sight
_RECORD = "_hw_record"


@dataclass(frozen=True)
class Subject:
    """A key column and a value, as given (`customer_id=42`)."""

    key: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Subject:
        """`KEY=VALUE` → a subject.

        Raises:
            UsageError: no `=`, or an empty key or value.
        """
        key, sep, value = text.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise UsageError(
                f"--subject {text!r} is not KEY=VALUE",
                hint="name the key column and the value, e.g. --subject customer_id=42",
            )
        return cls(key, value)


@dataclass
class Traced:
    """A subject as found: its value's canonical text (as the key's type writes it), the
    identifying values of its raw rows, and the key column's type per raw table."""

    subject: Subject
    text: str
    types: dict[str, str] = field(default_factory=dict)  # raw table → the key's SQL type
    identifying: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        return self.subject.key

    @property
    def sha256(self) -> str:
        """What the catalog keeps of the value: its SHA-256 (of the canonical text)."""
        return hashlib.sha256(self.text.encode()).hexdigest()

    def shown(self) -> str:
        """The subject as output and logs show it: the key and a prefix of the hash."""
        return f"{self.key} (sha256 {self.sha256[:12]}…)"


def token_regex(text: str) -> str:
    """`text` as a whole token, in the RE2 syntax DuckDB uses (no look-around): not inside a
    word or a number — `42` matches in `id 42,` and `"42"`, not in `420`, `x42` or `4.42`."""
    return r"(^|[^\w.])" + re.escape(text) + r"($|[^\w.]|\.($|\D))"


def _token(text: str) -> re.Pattern[str]:
    """`token_regex` for Python, with look-around so that adjacent matches all match."""
    return re.compile(r"(?<![\w.])" + re.escape(text) + r"(?!\w|\.\d)")


class Recogniser:
    """Recognises the data of `traced` subjects: SQL predicates for rows, redaction for text."""

    def __init__(self, traced: Sequence[Traced], carriers: Iterable[str] = ()):
        self.traced = list(traced)
        # column names that hold a key's value as it is (the keys, and what lineage derives
        # from them): a JSON row with one of them at the value is a row of the subject
        self.columns = {t.key for t in traced} | set(carriers)
        self._values = {t.text for t in traced}
        self._tokens = [_token(t.text) for t in traced]
        strings = {s for t in traced for s in t.identifying if len(s) >= MIN_IDENTIFYING}
        self._strings = sorted(strings, key=len, reverse=True)
        self._identifying = (
            re.compile("|".join(re.escape(s) for s in self._strings), re.IGNORECASE)
            if self._strings
            else None
        )

    # ---- rows -------------------------------------------------------------------------------

    def params(self, statement: exp.Expr) -> dict[str, Any]:
        """The values `statement` (made of the predicates below) binds, and no other (an
        engine refuses a parameter a statement does not use)."""
        known: dict[str, Any] = {}
        for i, traced in enumerate(self.traced):
            known[f"hw_v{i}"] = traced.text
            known[f"hw_t{i}"] = token_regex(traced.text)
        for i, text in enumerate(self._strings):
            known[f"hw_s{i}"] = text.lower()
        used = {p.name for p in statement.find_all(exp.Placeholder)}
        return {k: v for k, v in known.items() if k in used}

    def raw_rows(self, table: str) -> exp.Expr:
        """The subjects' rows of the raw table `table`: `key = value`, typed as the key."""
        terms = [
            exp.EQ(
                this=exp.column(t.key, quoted=True),
                expression=exp.TryCast(
                    this=_param(f"hw_v{i}"), to=exp.DataType.build(t.types[table])
                ),
            )
            for i, t in enumerate(self.traced)
            if table in t.types
        ]
        return exp.or_(*terms) if terms else exp.false()

    def quarantined(self, table: str) -> exp.Expr:
        """The subjects' quarantined records of the raw table `table` (see the module)."""
        record = exp.column(_RECORD)
        is_object = exp.and_(
            _call("json_valid", record),
            exp.EQ(this=_call("json_type", record), expression=exp.Literal.string("OBJECT")),
        )
        owned = [self._field_is(i, t, table) for i, t in enumerate(self.traced) if table in t.types]
        keyed = [self._has_field(t.key) for t in self.traced if table in t.types]
        identifying = self._holds_identifying(record)
        tokens = [
            _call("regexp_matches", record, _param(f"hw_t{i}"))
            for i, t in enumerate(self.traced)
            if table in t.types
        ]
        return (
            exp.Case()
            .when(exp.and_(is_object, exp.or_(*keyed)), exp.or_(*owned))
            .when(is_object.copy(), identifying)
            .else_(exp.or_(*tokens, identifying.copy()))
        )

    def carried(self, columns: Iterable[str]) -> exp.Expr:
        """The subjects' rows of a table whose `columns` carry a key: any of them is a value
        (compared as text, whatever type lineage gave the column)."""
        terms = [
            exp.EQ(
                this=exp.cast(exp.column(c, quoted=True), "varchar"),
                expression=_param(f"hw_v{i}"),
            )
            for c in sorted(columns)
            for i, _ in enumerate(self.traced)
        ]
        return exp.or_(*terms) if terms else exp.false()

    def _field_is(self, i: int, traced: Traced, table: str) -> exp.Expr:
        text = _call("json_extract_string", exp.column(_RECORD), _path(traced.key))
        typed = exp.TryCast(this=text, to=exp.DataType.build(traced.types[table]))
        expected = exp.TryCast(this=_param(f"hw_v{i}"), to=exp.DataType.build(traced.types[table]))
        return exp.EQ(this=typed, expression=expected)

    @staticmethod
    def _has_field(key: str) -> exp.Expr:
        found = _call("json_extract", exp.column(_RECORD), _path(key))
        kind = _call("json_type", found.copy())
        return exp.and_(
            exp.not_(found.is_(exp.null())),
            exp.NEQ(this=kind, expression=exp.Literal.string("NULL")),
        )

    def _holds_identifying(self, record: exp.Expr) -> exp.Expr:
        lowered = exp.Lower(this=record.copy())
        terms = [
            _call("contains", lowered.copy(), _param(f"hw_s{i}")) for i in range(len(self._strings))
        ]
        return exp.or_(*terms) if terms else exp.false()

    # ---- text -------------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        """`text` without the subjects: JSON keeps its shape (a row of a subject is dropped
        from a list, or replaced), other text has each identifying value and each value as a
        token replaced by `ERASED`. Unchanged text comes back as it was."""
        stripped = text.lstrip()
        if stripped[:1] in ("{", "["):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict | list):
                cleaned = self._json(parsed, None)
                return text if cleaned == parsed else json.dumps(cleaned, default=str)
        return self._text(text)

    def is_row(self, value: Any) -> bool:
        """Whether a JSON object is a row of a subject: a key-carrying field at a value."""
        return isinstance(value, dict) and any(
            k in self.columns and v is not None and _plain(v) in self._values
            for k, v in value.items()
        )

    def _json(self, value: Any, name: str | None) -> Any:
        if isinstance(value, list):
            return [self._json(v, name) for v in value if not self.is_row(v)]
        if isinstance(value, dict):
            if self.is_row(value):
                return ERASED
            # inside a key-carrying column's object (a profile: {"customer_id": {"max": …}})
            # every value is that column's
            inside = name if name in self.columns else None
            return {k: self._json(v, inside or k) for k, v in value.items()}
        if isinstance(value, str):
            if name in self.columns and value.strip() in self._values:
                return ERASED
            return self._text(value)
        if isinstance(value, bool) or value is None:
            return value
        if (
            isinstance(value, int | float)
            and name in self.columns
            and _plain(value) in self._values
        ):
            return ERASED
        return value

    def _text(self, text: str) -> str:
        if self._identifying is not None:
            text = self._identifying.sub(ERASED, text)
        for token in self._tokens:
            text = token.sub(ERASED, text)
        return text


def mask(engine: Engine, predicate: exp.Expr, recogniser: Recogniser) -> Doomed:
    """What picks the rows of an Arrow table that `predicate` (of `recogniser`) holds true
    for, run on `engine` (one that reads Arrow data: the scratch engine)."""
    query = exp.select(predicate.as_("_hw_doomed")).from_("_hw_rows")
    params = recogniser.params(query)

    def doomed(rows: pa.Table) -> pa.ChunkedArray:
        engine.register("_hw_rows", rows)
        try:
            return engine.read(query, params).column(0)
        finally:
            engine.unregister("_hw_rows")

    return doomed


def _plain(value: Any) -> str:
    """A JSON scalar as the text a key's value is compared with."""
    return str(value).strip()


def _param(name: str) -> exp.Placeholder:
    return exp.Placeholder(this=name)


def _call(name: str, *args: exp.Expr) -> exp.Expr:
    """A function the engine (DuckDB's JSON and regex functions) knows by this name."""
    return exp.Anonymous(this=name, expressions=list(args))


def _path(key: str) -> exp.Literal:
    """The JSON path of a top-level field, quoted (a key may hold dots or spaces)."""
    return exp.Literal.string('$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"')
