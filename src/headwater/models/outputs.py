"""The columns each model outputs, as far as its SQL says, with stars resolved through the DAG.

Parsing records a model's output names (`Model.outputs`), a star standing for every column of
its one source table. Here the stars are filled in from the raw tables' declared columns and
the upstream models' outputs, so a rule or a `grain:` naming a column the model does not have
is refused when the project loads, not after a build.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from headwater.models.parse import Model

Columns = tuple[str, ...] | None  # None: not known before the model is built


def resolve_outputs(
    models: Mapping[str, Model], order: Iterable[str], raw: Mapping[str, Columns]
) -> dict[str, Columns]:
    """Every model's output columns (None where its SQL does not say them all), upstream
    first; `raw` gives each raw table's columns (None: inferred at its first load)."""
    known: dict[str, Columns] = dict(raw)
    for name in order:
        model = models[name]
        outputs = model.outputs
        if outputs is None or "*" not in outputs:
            known[name] = outputs
            continue
        source = known.get(model.star_from or "")
        if source is None:
            known[name] = None
            continue
        expanded = [c for column in outputs for c in (source if column == "*" else (column,))]
        known[name] = tuple(dict.fromkeys(expanded))
    return known
