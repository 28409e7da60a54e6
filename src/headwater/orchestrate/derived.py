"""What was made from a forgotten subject's raw rows, and erasing them there: the warehouse's
tables (versions kept for releases and environments, frozen copies), the data products' data
states, the catalog's free text, the alert log and the files derived from the stores.

Which columns of a model hold a key's value comes from column lineage: a column traced to a
key column, neither hashed, cut nor counted on the way, holds the value as the key does (a
table lineage does not know — a model's old version, a copy — is matched by the key's own
column name). A row of such a table is the subject's when one of those columns is the value.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlglot import exp

from headwater.change import online, vectors
from headwater.engine import Engine, ObjectKind
from headwater.errors import HeadwaterError
from headwater.models.lineage import ROWS, trace
from headwater.orchestrate import uptodate
from headwater.orchestrate.lineage import raw_schema
from headwater.orchestrate.sla import ALERT_LOG
from headwater.orchestrate.stores import Stores
from headwater.orchestrate.subjects import Recogniser, mask
from headwater.project import Project
from headwater.zones.erasure import Doomed
from headwater.zones.lake import Erased

DOCS = Path(".headwater", "docs")  # the docs site (`headwater docs`): samples and profiles
QUARANTINE = "__quarantine"


def carriers(
    project: Project, columns: dict[str, dict[str, str]], keys: set[str]
) -> dict[str, set[str]]:
    """Per table, the columns that hold one of `keys` as it is: the key in each raw table
    that has it (and its history view), then each model column lineage derives from one
    without hashing, cutting or counting it. `columns`: each raw table's columns."""
    found: dict[str, set[str]] = {}
    for contract in project.contracts.values():
        held = keys & set(columns.get(contract.table, {}))
        for table in (contract.table, contract.history):
            if held and table:
                found[table] = set(held)
    lineage = trace(project.models, raw_schema(project, columns), order=project.dag.order)
    for name in project.dag.order:
        model = lineage.models.get(name)
        if model is None:
            continue  # lineage cannot follow it: its tables are matched by the key's name
        for column, upstream in model.columns.items():
            untouched = [u for u in upstream if u not in model.effects.get(column, {})]
            if column != ROWS and any(u.column in found.get(u.table, ()) for u in untouched):
                found.setdefault(name, set()).add(column)
    return found


class Derived:
    """Erases forgotten subjects from what was derived from their raw rows."""

    def __init__(
        self,
        project: Project,
        stores: Stores,
        engine: Engine,
        recogniser: Recogniser,
        carried: dict[str, set[str]],
        *,
        now: datetime,
    ):
        self.project, self.stores, self.engine = project, stores, engine
        self.recogniser, self.carried, self.now = recogniser, carried, now
        self.keys = {t.key for t in recogniser.traced}
        self.erasure_id: int | None = None  # named in the summary of every commit made
        self.notes: list[str] = []

    # ---- the warehouse ----------------------------------------------------------------------

    def sweep(self, *, dry_run: bool) -> dict[str, int]:
        """Delete (or count) the subjects' rows in every warehouse table with a column that
        holds a key, in one transaction; rows per table."""
        engine, recogniser = self.stores.engine, self.recogniser
        owners = _owners(self.stores)
        out: dict[str, int] = {}
        with engine.transaction():
            for name, kind in sorted(engine.objects().items()):
                if kind is not ObjectKind.TABLE:
                    continue
                owner = owners.get(name.removesuffix(QUARANTINE), "")
                held = (self.carried.get(owner, set()) | self.keys) & set(engine.columns(name))
                if not held:
                    continue
                table, where = exp.to_table(name, quoted=True), recogniser.carried(held)
                if dry_run:
                    count = exp.select(exp.Count(this=exp.Star())).from_(table).where(where)
                    rows = int(engine.rows(count, recogniser.params(count))[0][0])
                else:
                    delete = exp.delete(table, where=where)
                    rows = engine.execute(delete, recogniser.params(delete)) or 0
                if rows:
                    out[name] = rows
        return out

    # ---- data products ----------------------------------------------------------------------

    def products(self) -> dict[str, Erased]:
        """Rewrite every data state of a product that holds the subjects (each is served
        from a new snapshot from now on), its vector indexes with it; then bring the online
        feature store up to the products served."""
        erased: dict[str, Erased] = {}
        for product in sorted(self.stores.catalog.product_tables()):
            done = self._product(product)
            if done is not None:
                erased[product] = done
        if erased and online.feature_views(self.project):
            self._refresh_online()
        return erased

    def product_rows(self) -> dict[str, int]:
        """The subjects' rows in each product table, over all its data states (a preview)."""
        out: dict[str, int] = {}
        for product in sorted(self.stores.catalog.product_tables()):
            found = self._product_states(product)
            if found is None:
                continue
            _, states, doomed = found
            lake = self.stores.lake
            counted = [
                lake.erase(product, doomed, snapshot_id=s, properties={}, dry_run=True).rows
                for s in states
            ]
            if sum(counted):
                out[product] = sum(counted)
        return out

    def _product(self, product: str) -> Erased | None:
        """Each data state of one product table less the subjects' rows; what it erased, as
        one record (the files and overwrites of every state) for expiry."""
        found = self._product_states(product)
        if found is None:
            return None
        model, states, doomed = found
        lake, properties = self.stores.lake, {"erasure": self.erasure_id}
        parts: dict[int, Erased] = {}  # old snapshot → what erasing it did
        for old in states:
            done = lake.erase(product, doomed, snapshot_id=old, properties=properties)
            if done.rows:
                parts[old] = self._moved(model, product, old, done)
        if not parts:
            return None
        # a later state may still name an erased file as deleted (with its column bounds):
        # it is committed afresh, its rows as they are
        erased_files = [f for p in parts.values() for f in p.files]
        for old in lake.holding(product, erased_files):
            if old in set(states) - set(parts):
                done = lake.erase(
                    product, doomed, snapshot_id=old, properties=properties, afresh=True
                )
                parts[old] = self._moved(model, product, old, done)
        every = list(parts.values())
        files = tuple(f for p in every for f in p.files)
        overwrites = tuple(c for p in every for c in p.overwrites)
        return Erased(product, sum(p.rows for p in every), files, overwrites, every[-1].snapshot_id)

    def _product_states(self, product: str) -> tuple[str, list[int], Doomed] | None:
        """The model of a product table, the snapshots of its data states (oldest first) and
        what picks the subjects' rows in them; None when it has no column holding a key."""
        states = self.stores.catalog.product_states(product)
        schema = self.stores.lake.schema(product)
        if not states or schema is None:
            return None
        model = next(iter(states.values()))[0]
        held = (self.carried.get(model, set()) | self.keys) & set(schema.names)
        if not held:
            return None
        order = [s.snapshot_id for s in self.stores.lake.recent(product)]
        oldest_first = sorted(states, key=lambda s: order.index(s) if s in order else -1)
        return (
            model,
            oldest_first,
            mask(self.engine, self.recogniser.carried(held), self.recogniser),
        )

    def _moved(self, model: str, product: str, old: int, done: Erased) -> Erased:
        """Serve a data state from its erased snapshot from now on (its indexes with it)."""
        assert done.snapshot_id is not None
        self.stores.catalog.move_product_state(product, old, done.snapshot_id, done.rows)
        self._reindex(model, product, old, done.snapshot_id)
        return done

    def _reindex(self, model: str, product: str, old: int, new: int) -> None:
        """The vector indexes of a product state: the old snapshot's deleted (they hold the
        subject's vectors), the new one's built."""
        specs = self.project.models[model].sidecar.vectors if model in self.project.models else {}
        for name, spec in sorted(specs.items()):
            vectors.index_path(self.project.root, product, old, name).unlink(missing_ok=True)
            files = self.stores.lake.snapshot_files(product, new)
            found = vectors.read_vectors(self.stores.engine, files, spec.column, model=model)
            vectors.build(spec, found, vectors.index_path(self.project.root, product, new, name))

    def _refresh_online(self) -> None:
        """The online feature store of every environment, from the products it serves now."""
        stores = self.stores
        for env in stores.catalog.environments():
            try:
                online.refresh(
                    self.project, stores.engine, stores.lake, stores.catalog, env, now=self.now
                )
            except HeadwaterError as err:
                self.notes.append(f"the online store of {env} was not refreshed: {err.message}")

    # ---- text and derived files -------------------------------------------------------------

    def scrub(self) -> dict[str, int]:
        """The catalog's free text and the alert logs redacted; the docs site and the build
        stamp (derived: `headwater docs` and the next build make them again) removed."""
        redact = self.recogniser.redact
        out = self.stores.catalog.scrub(redact)
        root = self.project.root
        logs = {root / ALERT_LOG, *(root / a.path for a in self.project.settings.alerts if a.path)}
        for log in sorted(logs):
            changed = _redact_lines(log, redact)
            if changed:
                out[str(log.relative_to(root) if log.is_relative_to(root) else log)] = changed
        if (root / DOCS).is_dir():
            shutil.rmtree(root / DOCS)
            out[str(DOCS)] = 1
        uptodate.forget(root)
        return out


def _owners(stores: Stores) -> dict[str, str]:
    """Warehouse table → the model whose version (or frozen copy of one) it is."""
    catalog = stores.catalog
    owners = {v.physical: v.name for v in catalog.model_versions().values()}
    for (physical, _), (copy, _) in catalog.frozen_copies().items():
        if physical in owners:
            owners[copy] = owners[physical]
    return owners


def _redact_lines(path: Path, redact: Callable[[str], str]) -> int:
    """Redact each line of a text file (an alert log: JSON lines) in place; lines changed."""
    if not path.is_file():
        return 0
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    cleaned = [redact(line.rstrip("\n")) + ("\n" if line.endswith("\n") else "") for line in lines]
    changed = sum(a != b for a, b in zip(lines, cleaned, strict=True))
    if changed:
        temporary = path.with_name(path.name + ".forget")
        temporary.write_text("".join(cleaned), encoding="utf-8")
        temporary.replace(path)
    return changed
