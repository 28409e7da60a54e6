"""`policies.yml`: who may read what through the data API, and what they see of it.

    roles:
      analyst:
        grants: ["marts.*"]                  # models the role may read (glob patterns)
        masks: {marts.customers.email: partial}   # model.column → how it is masked
        rows: {marts.orders: "country = 'DE'"}     # model → the rows the role may see
        unmask: [phone]                      # PII tags it sees in the clear ("*": all)
      admin: {grants: ["*"], unmask: ["*"]}
    anonymous: analyst                       # the role of a request without a key

API keys map to roles (`headwater keys create NAME --role analyst`); the catalog keeps only
their hashes. A column tagged `pii:` in its model's sidecar is masked (`hash`) for every role
whose `unmask` does not name its tag. The governance issue grows this into the full policy
language; the data API is the enforcement point and applies it inside the query it runs.
"""

from __future__ import annotations

import fnmatch
from enum import StrEnum

import sqlglot
from pydantic import Field, field_validator, model_validator
from sqlglot import exp

from headwater.contracts.base import Spec
from headwater.engine.dialect import AUTHORED

POLICIES_FILE = "policies.yml"


class Mask(StrEnum):
    HASH = "hash"  # SHA-256 of the value, hex: joinable, not readable
    REDACT = "redact"  # the text ****
    PARTIAL = "partial"  # * for all but the last characters: 4 at most, a third at most
    NULLIFY = "nullify"  # NULL


class Role(Spec):
    """What one role may read, and how."""

    grants: list[str] = Field(
        default_factory=list, description="model names or glob patterns (marts.*, *)"
    )
    masks: dict[str, Mask] = Field(
        default_factory=dict, description="model.column → hash | redact | partial | nullify"
    )
    rows: dict[str, str] = Field(
        default_factory=dict,
        description="model → a SQL condition on its columns: the only rows the role sees",
    )
    unmask: list[str] = Field(
        default_factory=list, description="PII tags this role sees unmasked ('*': every tag)"
    )

    @field_validator("masks")
    @classmethod
    def _qualified(cls, value: dict[str, Mask]) -> dict[str, Mask]:
        for key in value:
            if key.count(".") != 2:
                raise ValueError(
                    f"mask {key!r} names a column as model.column, e.g. marts.customers.email"
                )
        return value

    @field_validator("rows")
    @classmethod
    def _conditions(cls, value: dict[str, str]) -> dict[str, str]:
        for model, condition in value.items():
            row_condition(condition, where=f"rows of {model}")
        return value

    def granted(self, model: str) -> bool:
        return any(fnmatch.fnmatchcase(model, pattern) for pattern in self.grants)

    def sees(self, pii_tag: str) -> bool:
        return "*" in self.unmask or pii_tag in self.unmask


class Policies(Spec):
    """The roles of a project's data API."""

    roles: dict[str, Role] = Field(default_factory=dict)
    anonymous: str | None = Field(
        default=None, description="the role of requests without an API key (none: 401)"
    )

    @model_validator(mode="after")
    def _anonymous_role(self) -> Policies:
        if self.anonymous is not None and self.anonymous not in self.roles:
            known = ", ".join(sorted(self.roles)) or "none are declared"
            raise ValueError(f"anonymous: {self.anonymous!r} is not a role ({known})")
        return self


# the whole API reads everything and sees PII masked: no policies.yml
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
