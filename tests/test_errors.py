"""The one exception tree: what an error says is what it says now, not when it was made."""

from __future__ import annotations

from headwater.errors import Location, SpecError, TransientSourceError


def test_a_where_set_after_raising_shows_in_the_message() -> None:
    err = SpecError("unknown column 'x'", hint="did you mean 'y'?")
    err.where = Location("contracts/orders.yml", 4, "columns[1].name")
    assert str(err) == (
        "contracts/orders.yml:4: columns[1].name: unknown column 'x'; did you mean 'y'?"
    )


def test_retryable_is_the_kind_of_error() -> None:
    assert TransientSourceError("timeout").retryable and not SpecError("bad").retryable
