"""The gate: a model marked `privacy: public` may not show a PII-tagged column unmasked.

Anyone may read a public model's table, so no policy stands between its columns and the
reader. Before a run builds anything (and when `headwater plan` plans), every public model's
columns are traced; a column that carries an identifying tag — declared upstream and passed
on, or `unknown` because lineage cannot follow it — stops it, naming the path the value takes
(`raw.customers.email → clean.customers.email → marts.leads.contact`). A hash or a count on
the way (`sha256(email)`, `count(distinct email)`) lets it through; so does `pii: none` in the
model's sidecar, a statement its owner makes and review can see.

Products served through the data API need no gate: it masks every tagged column for each
role that does not unmask its tag (`govern/masking.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from headwater.contracts.load import locate
from headwater.contracts.specs import PrivacyLevel
from headwater.errors import LeakError, Location
from headwater.govern.pii import UNKNOWN, Tag, project_tags
from headwater.project import Project


@dataclass(frozen=True)
class Leak:
    """A public model's column that would show a person's value."""

    model: str
    column: str
    tag: Tag

    def render(self) -> str:
        if self.tag.tag == UNKNOWN:
            return f"{self.model}.{self.column} may hold PII: {self.tag.how}"
        return f"{self.model}.{self.column} shows {self.tag.tag}: {self.tag.shown_path()}"


def public_models(project: Project, names: Iterable[str] | None = None) -> list[str]:
    chosen = project.models if names is None else [n for n in names if n in project.models]
    return [n for n in chosen if project.models[n].sidecar.privacy is PrivacyLevel.PUBLIC]


def leaks(project: Project, names: Iterable[str] | None = None) -> list[Leak]:
    """The columns of the public models among `names` (every model when None) that would
    show a PII-tagged value unmasked."""
    public = public_models(project, names)
    if not public:
        return []
    tags = project_tags(project, public)
    found = []
    for model in public:
        traced = None if model in tags.opaque else tags.lineage.models.get(model)
        columns = traced.outputs if traced is not None else _declared_columns(project, model)
        if traced is None and model in tags.tainted and not columns:
            columns = ["*"]
        for column, tag in sorted(tags.of(model, columns).items()):
            if tag.identifying:
                found.append(Leak(model, column, tag))
    return found


def check(project: Project, names: Iterable[str] | None = None) -> None:
    """Refuse to go on when a public model would show PII.

    Raises:
        LeakError: naming each leaking column and the lineage path of its value.
    """
    found = leaks(project, names)
    if not found:
        return
    first = project.models[found[0].model]
    lines = "; ".join(leak.render() for leak in found)
    file = first.sidecar_path or first.path
    raise LeakError(
        f"{first.name} is public, but {len(found)} column(s) would show PII unmasked: {lines}",
        where=Location(str(file), locate(project.root / file, ("privacy",)), field="privacy"),
        hint="hash or drop the column in the model's SQL (sha256(x)), or tag it `pii: none` "
        "in the sidecar if it holds none; `headwater lineage MODEL.COLUMN --tags` explains",
    )


def _declared_columns(project: Project, model: str) -> list[str]:
    outputs = project.models[model].outputs
    return [c for c in outputs or () if c != "*"]
