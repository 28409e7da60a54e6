"""`policies.yml`: who may read what, and what they see of it.

    salt: ${HW_MASK_SALT}                  # the hash mask's salt, from a secret (optional)
    masks:                                 # per PII tag: how roles that do not unmask it see it
      email: email                         # keep the domain: ****@example.com
      ssn: restricted                      # denied to roles that do not unmask it
      "*": hash                            # every other tag (the default)
    roles:
      analyst:
        grants: ["marts.*"]                # tables the role may read (glob patterns)
        masks:                             # the role's own masks, over the tag defaults
          marts.customers.phone: partial   # a column (zone.table.column)
          tag:date_of_birth: year          # every column with this tag
        rows: {marts.orders: "country = 'DE'"}     # table → the rows the role may see
        unmask: [phone]                    # PII tags it sees in the clear ("*": every tag)
      admin: {grants: ["*"], unmask: ["*"]}
    anonymous: analyst                     # the role of a request without a key

A column's tag is declared on its contract or model sidecar (`pii:`), or follows lineage from
one (`headwater lineage COLUMN --tags`). Every read a role makes — `headwater sql --role`, its
exports, the data API — sees tagged columns through these masks and its row policies; the
masks are built into the query as an AST (`govern/masking.py`). Without a policies.yml every
tagged column is hashed for everyone.
"""

from __future__ import annotations

import fnmatch
from enum import StrEnum
from typing import Any

import sqlglot
from pydantic import Field, ValidationInfo, field_validator
from sqlglot import exp

from headwater.contracts.base import Spec
from headwater.engine.dialect import AUTHORED

POLICIES_FILE = "policies.yml"
TAG_PREFIX = "tag:"  # a role's mask keyed by a PII tag rather than a column
EVERY_TAG = "*"


class Mask(StrEnum):
    HASH = "hash"  # SHA-256 of the salt and the value, hex: joinable, not readable
    NULL = "null"  # NULL
    REDACT = "redact"  # the text ****
    PARTIAL = "partial"  # * for all but the last characters: 4 at most, a third at most
    EMAIL = "email"  # the domain kept: ****@example.com
    YEAR = "year"  # a date's or timestamp's year only
    DEFAULT = "default"  # the type's default: 0, '', false, 1970-01-01
    RESTRICTED = "restricted"  # not readable at all: a query naming it is refused

    @classmethod
    def _missing_(cls, value: object) -> Mask | None:
        return cls.NULL if value == "nullify" else None  # the name before the governance issue


MASKS = ", ".join(m.value for m in Mask)


class Role(Spec):
    """What one role may read, and how."""

    grants: list[str] = Field(
        default_factory=list, description="tables (zone.name) or glob patterns (marts.*, *)"
    )
    masks: dict[str, Mask] = Field(
        default_factory=dict,
        description=f"zone.table.column or tag:<pii tag> → a mask ({MASKS})",
    )
    rows: dict[str, str] = Field(
        default_factory=dict,
        description="table → a SQL condition on its columns: the only rows the role sees",
    )
    unmask: list[str] = Field(
        default_factory=list,
        description="PII tags this role sees in the clear, restricted ones too ('*': every tag)",
    )

    @field_validator("masks")
    @classmethod
    def _qualified(cls, value: dict[str, Mask]) -> dict[str, Mask]:
        for key in value:
            if key.startswith(TAG_PREFIX):
                if not key[len(TAG_PREFIX) :]:
                    raise ValueError(f"mask {key!r} names no tag, e.g. tag:email")
            elif key.count(".") != 2:
                raise ValueError(
                    f"mask {key!r} names a column as zone.table.column (e.g. "
                    "marts.customers.email) or a tag as tag:<tag> (e.g. tag:email)"
                )
        return value

    @field_validator("rows")
    @classmethod
    def _conditions(cls, value: dict[str, str]) -> dict[str, str]:
        for model, condition in value.items():
            row_condition(condition, where=f"rows of {model}")
        return value

    def granted(self, table: str) -> bool:
        return any(fnmatch.fnmatchcase(table, pattern) for pattern in self.grants)

    def sees(self, pii_tag: str) -> bool:
        return EVERY_TAG in self.unmask or pii_tag in self.unmask

    def column_masks(self, table: str) -> dict[str, Mask]:
        """Column → the mask this role puts on it by name, for one table."""
        prefix = table + "."
        return {k[len(prefix) :]: m for k, m in self.masks.items() if k.startswith(prefix)}


class Policies(Spec):
    """The roles of a project, the masks of its PII tags, and the hash mask's salt."""

    salt: str | None = Field(
        default=None,
        description="the hash mask's salt, e.g. ${HW_MASK_SALT} (none: one made for the "
        "project and kept in .headwater/salt)",
    )
    masks: dict[str, Mask] = Field(
        default_factory=dict,
        description=f"PII tag (or '*' for every other) → its mask for roles that do not unmask "
        f"it ({MASKS}); hash unless said",
    )
    roles: dict[str, Role] = Field(default_factory=dict)
    anonymous: str | None = Field(
        default=None, description="the role of requests without an API key (none: 401)"
    )

    @field_validator("anonymous")
    @classmethod
    def _anonymous_role(cls, value: str | None, info: ValidationInfo) -> str | None:
        roles = info.data.get("roles", {})
        if value is not None and value not in roles:
            known = ", ".join(sorted(roles)) or "none are declared"
            raise ValueError(f"{value!r} is not a role ({known})")
        return value

    def tag_mask(self, tag: str) -> Mask:
        """How a role that does not unmask `tag` sees it, unless it says otherwise."""
        return self.masks.get(tag) or self.masks.get(EVERY_TAG) or Mask.HASH

    def role(self, name: str) -> Role:
        """The role called `name`.

        Raises:
            KeyError: with what the roles are.
        """
        if name not in self.roles:
            known = ", ".join(sorted(self.roles)) or "none are declared"
            raise KeyError(f"no role {name!r} in {POLICIES_FILE} (roles: {known})")
        return self.roles[name]


# no policies.yml: everything is readable, and every PII-tagged column is hashed
OPEN = Policies(roles={"anonymous": Role(grants=["*"])}, anonymous="anonymous")


def row_condition(text: str, *, where: str) -> exp.Expr:
    """A row policy's condition, parsed: a boolean expression over columns, no subquery.

    Raises:
        ValueError: it does not parse, or reads a table.
    """
    try:
        parsed = sqlglot.parse_one(text, dialect=AUTHORED, into=exp.Condition)
    except sqlglot.errors.ParseError as err:
        raise ValueError(f"{where}: {text!r} is not a SQL condition ({err})") from None
    if any(isinstance(node, exp.Query | exp.Table) for node in parsed.walk()):
        raise ValueError(f"{where}: {text!r} reads a table; a row policy filters columns only")
    return parsed


def condition_columns(text: str) -> set[str]:
    """The columns a row policy's condition reads."""
    parsed: Any = row_condition(text, where="rows")
    return {c.name for c in parsed.find_all(exp.Column)}
