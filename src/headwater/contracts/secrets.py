"""`${ENV_VAR}` references in contracts and settings: expanded when used, never shown.

A `Secrets` expands references from the environment it is given and remembers each value it
expanded, so any text that might carry one (an error, a URL, a log line) can be scrubbed
before it is printed or stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote, quote_plus

from headwater.errors import SpecError

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
MASK = "***"


class Secrets:
    """Expands `${VAR}` from `environ` and scrubs the expanded values out of text.

    Example:
        >>> secrets = Secrets({"TOKEN": "s3cr3t"})
        >>> secrets.expand("Bearer ${TOKEN}", where="contracts/orders.yml")
        'Bearer s3cr3t'
        >>> secrets.scrub("401 for Bearer s3cr3t")
        '401 for Bearer ***'
    """

    def __init__(self, environ: Mapping[str, str]):
        self._environ = environ
        self._values: set[str] = set()

    def expand(self, text: str, *, where: str) -> str:
        """`text` with every `${VAR}` replaced by its value.

        Raises:
            SpecError: a referenced variable is not set (named, with where it is used).
        """

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self._environ:
                raise SpecError(
                    f"environment variable {name} is not set (used in {where})",
                    hint=f"export {name}=… before running",
                )
            found = self._environ[name]
            self.remember(found)
            return found

        return _REFERENCE.sub(value, text)

    def remember(self, value: str) -> None:
        """Treat `value` as a secret too (e.g. a token obtained with other secrets)."""
        if value:
            self._values.add(value)

    def scrub(self, text: str) -> str:
        """`text` with every expanded value (also URL-encoded) replaced by `***`."""
        for value in sorted(self._values, key=len, reverse=True):
            for form in {value, quote(value, safe=""), quote_plus(value)}:
                text = text.replace(form, MASK)
        return text


def references(text: str) -> list[str]:
    """The variable names `text` refers to."""
    return _REFERENCE.findall(text)
