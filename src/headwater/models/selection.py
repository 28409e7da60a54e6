"""Model selection for `--select`: names, globs, tags, with `+` for ancestors and descendants.

    marts.events_daily      that model
    marts.events_daily+     it and everything downstream of it
    +clean.orders           it and everything upstream of it
    marts.*                 every model of a zone (any fnmatch pattern)
    tag:finance             models tagged finance (in the header or the sidecar)

Several selectors (space-separated, or the option repeated) select their union.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable

from headwater.errors import SpecError
from headwater.models.dag import Dag


def select(dag: Dag, selectors: Iterable[str]) -> set[str]:
    """The models `selectors` name, with their `+` expansions.

    Raises:
        SpecError: a selector matches no model (with a did-you-mean).
    """
    chosen: set[str] = set()
    for selector in (part for text in selectors for part in text.split()):
        chosen |= _one(dag, selector)
    return chosen


def _one(dag: Dag, selector: str) -> set[str]:
    up, down = selector.startswith("+"), selector.endswith("+")
    core = selector.strip("+")
    if core.startswith("tag:"):
        tag = core.removeprefix("tag:")
        matched = {n for n, m in dag.models.items() if tag in m.tags}
    else:
        matched = set(fnmatch.filter(dag.models, core))
    if not matched:
        close = difflib.get_close_matches(core, sorted(dag.models), n=1, cutoff=0.6)
        raise SpecError(
            f"--select {selector!r} matches no model",
            hint=f"did you mean {close[0]!r}?"
            if close
            else "select by name (marts.events_daily), glob (marts.*) or tag:<tag>",
        )
    out = set(matched)
    if down:
        out |= dag.descendants(matched)
    if up:
        out |= dag.ancestors(matched)
    return out
