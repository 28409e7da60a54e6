"""`${ENV_VAR}` references in contracts and settings: expanded when used, never shown.

A `Secrets` expands references from the environment it is given and remembers each value it
expanded, so any text that might carry one (an error, a URL, a log line) can be scrubbed
before it is printed or stored. Scrubbing takes out fragments too: a generated password such
as `Zq9/SeCrEt@x` inside a URL is split by parsers at `/`, `@` and `:`, and an error quoting
one piece (`invalid literal for int(): 'SeCrEt'`) must not show it either.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote, quote_plus, unquote

from headwater.errors import SpecError

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
MASK = "***"
# where URL and path parsers cut a value; a piece this long or longer is scrubbed on its own
_CUTS = re.compile(r"[/@:?#%]")
FRAGMENT = 4
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


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

        userinfo = _userinfo_end(text)

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self._environ:
                raise SpecError(
                    f"environment variable {name} is not set (used in {where})",
                    hint=f"export {name}=… before running",
                )
            found = self._environ[name]
            self.remember(found)
            # a user or password inside a URL is percent-encoded, so `/`, `@` or `:` in a
            # generated password stays part of it instead of cutting the URL elsewhere
            return quote(found, safe="") if match.start() < userinfo else found

        return _REFERENCE.sub(value, text)

    def learn(self, text: str) -> None:
        """Remember the values of the variables `text` refers to that are set, without
        expanding it (to scrub what other code expanded from the same environment)."""
        for name in references(text):
            if self._environ.get(name):
                self.remember(self._environ[name])

    def remember(self, value: str) -> None:
        """Treat `value` as a secret too (e.g. a token obtained with other secrets).

        A value shorter than `FRAGMENT` characters is not masked: it protects nothing (no
        credential is that short) and masking it would blank every `1` or `dev` in the
        output of a project whose paths use `${STAGE}`.
        """
        if len(value) >= FRAGMENT:
            self._values.add(value)

    def scrub(self, text: str) -> str:
        """`text` with every expanded value replaced by `***`: as it is, URL-encoded and
        URL-decoded, and each piece of it of `FRAGMENT` characters or more between the
        characters parsers cut at (`/ @ : ? # %`)."""
        for form in self._forms():
            text = text.replace(form, MASK)
        return text

    def _forms(self) -> list[str]:
        forms: set[str] = set()
        for value in self._values:
            whole = {value, unquote(value), quote(value, safe=""), quote(value), quote_plus(value)}
            forms |= whole
            for form in (value, unquote(value)):
                forms |= {p for p in _CUTS.split(form) if len(p) >= FRAGMENT}
        return sorted((f for f in forms if f), key=len, reverse=True)


def _userinfo_end(text: str) -> int:
    """Where the user-and-password part of a URL template ends (its `@`), or -1."""
    scheme = _SCHEME.match(text)
    if scheme is None:
        return -1
    authority = re.split(r"[/?#]", text[scheme.end() :], maxsplit=1)[0]
    at = authority.rfind("@")
    return scheme.end() + at if at >= 0 else -1


def references(text: str) -> list[str]:
    """The variable names `text` refers to."""
    return _REFERENCE.findall(text)
