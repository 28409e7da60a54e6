"""The base of every spec object, and the small validated field types specs share."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from headwater.contracts.thresholds import parse_duration

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class FieldError(ValueError):
    """A validator's error about a part of its field: `loc` continues the field's path
    (`(3, "name")` under `columns` is `columns[3].name`), so the error names that line."""

    def __init__(self, message: str, *, loc: tuple[str | int, ...]):
        super().__init__(message)
        self.loc = loc


class Spec(BaseModel):
    """Base of every spec: immutable, and unknown keys are errors (with did-you-mean)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


def _identifier(value: str) -> str:
    if not IDENTIFIER.match(value):
        raise ValueError(
            f"{value!r} is not a valid name: use letters, digits and _, not starting with a digit"
        )
    return value


def _duration(value: str) -> str:
    parse_duration(value)
    return value


Identifier = Annotated[str, AfterValidator(_identifier)]
Duration = Annotated[str, AfterValidator(_duration)]
