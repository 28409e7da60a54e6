"""The model DAG: which models depend on which, in what order they can run, and cycles."""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping

from headwater.errors import Location, ModelError
from headwater.models.parse import Model


class Dag:
    """Dependencies among models (edges to raw tables are kept out: raw is an input).

    A model also waits for the models its rules read (`Model.audit_refs`): a referential
    integrity rule is audited against the new version of the table it points at.
    """

    def __init__(self, models: Mapping[str, Model]):
        self.models = dict(models)
        self.upstream = {
            name: [d for d in dict.fromkeys((*m.depends_on, *m.audit_refs)) if d in self.models]
            for name, m in self.models.items()
        }
        self.downstream: dict[str, list[str]] = {name: [] for name in self.models}
        for name, deps in self.upstream.items():
            for dep in deps:
                self.downstream[dep].append(name)
        self.order = self._order()

    def _order(self) -> list[str]:
        sorter = graphlib.TopologicalSorter(self.upstream)
        try:
            return list(sorter.static_order())
        except graphlib.CycleError as err:
            # graphlib lists each node before the one that reads it; show "a → b" as a reads b
            cycle = list(reversed(err.args[1]))
            first = self.models[cycle[0]]
            line = next((r.line for r in first.refs if r.name == cycle[1]), None)
            audit = cycle[1] in first.audit_refs and cycle[1] not in first.depends_on
            raise ModelError(
                "dependency cycle: " + " → ".join(cycle),
                where=Location(first.sidecar_path or first.path if audit else first.path, line),
                hint="a model cannot read, directly or not, from itself"
                + (" (its rules read the tables they point at)" if audit else ""),
            ) from None

    def descendants(self, names: Iterable[str]) -> set[str]:
        return _reach(names, self.downstream)

    def ancestors(self, names: Iterable[str]) -> set[str]:
        return _reach(names, self.upstream)

    def sorter(self, names: Iterable[str]) -> graphlib.TopologicalSorter[str]:
        """A ready-to-run sorter over `names` (edges outside the set are ignored)."""
        chosen = set(names)
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter(
            {n: [d for d in self.upstream[n] if d in chosen] for n in chosen}
        )
        sorter.prepare()
        return sorter

    def tree(self) -> dict[str, list[str]]:
        """Children of each model, for display; roots are models with no model upstream."""
        return {name: sorted(self.downstream[name]) for name in self.order}


def _reach(names: Iterable[str], edges: Mapping[str, list[str]]) -> set[str]:
    """Every node reachable from `names` along `edges` (not counting `names` themselves)."""
    seen: set[str] = set()
    stack = list(names)
    while stack:
        for node in edges.get(stack.pop(), []):
            if node not in seen:
                seen.add(node)
                stack.append(node)
    return seen
