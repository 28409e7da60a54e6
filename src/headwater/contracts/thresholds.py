"""Parsing of the seed's `threshold: number | string`: counts, fractions, percentages, durations."""

from __future__ import annotations

import re

_UNITS = {
    "ms": 0.001,
    "millisecond": 0.001,
    "milliseconds": 0.001,
    "s": 1,
    "sec": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "week": 604800,
    "weeks": 604800,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*$")


def parse_duration(value: object) -> float:
    """Seconds in a duration such as "2h", "30 minutes" or "1.5 days".

    >>> parse_duration("2h")
    7200.0
    """
    match = _DURATION.match(str(value))
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"{value!r} is not a duration; write e.g. 500ms, 30m, 2h, 1 day")
    return float(match.group(1)) * _UNITS[match.group(2).lower()]


def parse_threshold(value: object) -> float:
    """A count or fraction: 10, 0.05, "0.5%" (→ 0.005).

    >>> parse_threshold("0.5%")
    0.005
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a threshold; write a number or a percentage")
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        if text.endswith("%"):
            return float(text[:-1]) / 100.0
        return float(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a threshold; write a number (10), a fraction (0.05) "
            'or a percentage ("0.5%")'
        ) from None
