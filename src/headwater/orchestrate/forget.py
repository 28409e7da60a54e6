"""`headwater forget`: the right to erasure. A subject's rows leave every store at once, and
every snapshot and free block that still holds them once a grace period is over.

At once (`forget`): the raw rows and quarantined records of the subject are erased from the
lake (only the data files holding them are rewritten: every other row keeps its exact value);
every model reading an erased table is rebuilt whole through a normal run (versions, releases
and data products follow as after any run); then what was derived from the rows — other
warehouse tables, data product states, the catalog's text, the alert log, derived files —
loses them (`orchestrate.derived`). The erasure is recorded (the key and a SHA-256 of the
value, never the value) and audited.

After the grace period (`orchestrate.expiry`, at once with a grace of 0): the snapshots that
still hold the rows expire with their files, and the warehouse, catalog and online store
files are rewritten. Until then the old snapshots stay readable by id (time travel): an
erasure made in error can still be looked into.

The run lease is held while the lake is erased and while the derived data is; the rebuild
in between is a run of its own (a lease is not taken twice).
"""

from __future__ import annotations

import getpass
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlglot import exp

from headwater.contracts import Contract
from headwater.engine import Engine, scratch
from headwater.errors import HeadwaterError, UsageError
from headwater.govern.pii import contract_pii
from headwater.models.selection import select as select_models
from headwater.observe import TaskStatus
from headwater.orchestrate.derived import Derived, carriers
from headwater.orchestrate.expiry import Expiry, expire
from headwater.orchestrate.lease import held
from headwater.orchestrate.raw import refresh_raw_views
from headwater.orchestrate.report import RunReport
from headwater.orchestrate.running import audited, run
from headwater.orchestrate.stores import Stores, pinned_columns, project_catalog_url
from headwater.orchestrate.subjects import Recogniser, Subject, Traced, mask
from headwater.project import Project
from headwater.zones.catalog.erasures import LakeFiles
from headwater.zones.catalog.products import Audited
from headwater.zones.lake import Erased

DEFAULT_GRACE_S = 7 * 86400.0
Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass
class Forgotten:
    """What `forget` removed (or, `dry_run`, would remove), where."""

    subjects: list[str]  # each as shown: the key and a prefix of its value's hash
    removed: dict[str, int] = field(default_factory=dict)  # table → rows (lake, warehouse)
    rebuilt: list[str] = field(default_factory=list)  # the models built again
    scrubbed: dict[str, int] = field(default_factory=dict)  # catalog table or file → rows
    erasure_id: int | None = None
    expire_after: datetime | None = None
    expired: Expiry | None = None
    dry_run: bool = False
    ok: bool = True  # False: a model reading the erased tables could not be rebuilt
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(self.removed.values())

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - started


def forget(
    project: Project,
    stores: Stores,
    subjects: Sequence[Subject],
    *,
    now: datetime,
    reason: str | None = None,
    grace_s: float = DEFAULT_GRACE_S,
    dry_run: bool = False,
    progress: Progress = _quiet,
) -> Forgotten:
    """Erase `subjects` from every store (see the module); with `grace_s` 0, expire at once.

    Raises:
        UsageError: a subject's key is no column of any contract, its value fits none of
            their types, or no raw row or quarantined record holds it (naming what was
            searched); nothing was changed.
        Busy: another run holds the project (nothing was changed).
    """
    engine = scratch(filesystems=stores.lake.filesystems)
    try:
        return _Forget(project, stores, engine, now=now, progress=progress).run(
            subjects, reason=reason, grace_s=grace_s, dry_run=dry_run
        )
    finally:
        engine.close()


class _Forget:
    """One `forget`: its stores, its scratch engine (masks over Arrow data) and the clock."""

    def __init__(
        self, project: Project, stores: Stores, engine: Engine, *, now: datetime, progress: Progress
    ):
        self.project, self.stores, self.engine = project, stores, engine
        self.now, self.progress = now, progress
        url = project_catalog_url(project, stores.secrets)
        self.columns = _contract_columns(project, pinned_columns(project, url))

    def run(
        self, subjects: Sequence[Subject], *, reason: str | None, grace_s: float, dry_run: bool
    ) -> Forgotten:
        self.progress("finding the subject's rows")
        traced = [self._trace(s) for s in subjects]
        out = Forgotten([t.shown() for t in traced], dry_run=dry_run)
        carried = carriers(self.project, self.columns, {t.key for t in traced})
        recogniser = Recogniser(traced, {c for cols in carried.values() for c in cols})
        derived = Derived(self.project, self.stores, self.engine, recogniser, carried, now=self.now)
        if dry_run:
            return self._preview(out, recogniser, derived)
        out.expire_after = self.now + timedelta(seconds=grace_s)
        reason = recogniser.redact(reason) if reason else None  # it may quote the subject
        with held(self.stores.catalog, "forget"), out.timed("lake"):
            erased = self._erase(out, recogniser, reason)
        with out.timed("rebuild"):
            self._rebuild(out, set(erased))
        with held(self.stores.catalog, "forget"):
            derived.erasure_id = out.erasure_id
            self._derived(out, derived, erased)
            self.stores.catalog.audit([self._audited(out, traced, reason)])
        if grace_s <= 0:
            with out.timed("expire"):
                out.expired = expire(
                    self.project, self.stores, now=self.now, progress=self.progress
                )
        return out

    def _erase(
        self, out: Forgotten, recogniser: Recogniser, reason: str | None
    ) -> dict[str, Erased]:
        """Record the erasure, then erase the subjects' rows from the lake."""
        assert out.expire_after is not None
        traced = recogniser.traced
        out.erasure_id = self.stores.catalog.start_erasure(
            subject_key=",".join(sorted({t.key for t in traced})),
            hashes=[t.sha256 for t in traced],
            reason=reason,
            by=getpass.getuser(),
            now=self.now,
            expire_after=out.expire_after,
        )
        self.progress("erasing raw rows and quarantined records from the lake")
        erased = self._erase_lake(recogniser, out.erasure_id)
        out.removed.update({t: e.rows for t, e in erased.items()})
        return erased

    def _derived(self, out: Forgotten, derived: Derived, erased: dict[str, Erased]) -> None:
        """After the rebuild: the subjects out of what was derived from their rows; what
        expiry is to remove, recorded."""
        assert out.erasure_id is not None
        # the raw views name the files they read, never erased ones (the rebuild refreshed
        # them, unless it could not run)
        refresh_raw_views(self.project, self.stores)
        with out.timed("warehouse"):
            self.progress("deleting the subject's rows from other warehouse tables")
            out.removed.update(derived.sweep(dry_run=False))
        with out.timed("products"):
            self.progress("rewriting data products that hold the subject")
            products = derived.products()
            out.removed.update({t: e.rows for t, e in products.items() if e.rows})
        with out.timed("scrub"):
            self.progress("scrubbing the catalog, the alert log and derived files")
            out.scrubbed = derived.scrub()
        out.notes += derived.notes
        every = erased | products
        lake = {t: LakeFiles(e.files, e.overwrites) for t, e in every.items() if e.overwrites}
        self.stores.catalog.finish_erasure(out.erasure_id, tables=_nonzero(out.removed), lake=lake)

    # ---- finding the subject ----------------------------------------------------------------

    def _trace(self, subject: Subject) -> Traced:
        """The subject's key type per raw table, its canonical value and identifying values.

        Raises:
            UsageError: the key is no contract's column, the value fits none of their types,
                or no row or quarantined record holds it.
        """
        holders = {t: cols[subject.key] for t, cols in self.columns.items() if subject.key in cols}
        if not holders:
            raise _no_column(subject, self.columns)
        traced = Traced(subject, subject.value)
        for table, kind in sorted(holders.items()):
            text = self._canonical(subject.value, kind)
            if text is None:
                continue  # no value of this column: the table cannot hold the subject
            traced.types[table] = kind
            if not exp.DataType.build(kind).is_type(*exp.DataType.TEXT_TYPES):
                traced.text = text  # `042` is 42 wherever the key is a number
        if not traced.types:
            kinds = ", ".join(f"{t} ({k})" for t, k in sorted(holders.items()))
            raise UsageError(
                f"--subject {subject.key}={subject.value}: the value fits the type of "
                f"{subject.key} in none of the contracts that have it: {kinds}",
                hint="give the value as that column holds it",
            )
        traced.identifying = self._identifying(traced)
        if not any(self._count(Recogniser([traced])).values()):
            raise _no_rows(traced, self.project)
        return traced

    def _canonical(self, value: str, kind: str) -> str | None:
        """The value as the key's type writes it (`042` → `42`); None: it is no such value."""
        typed = exp.TryCast(this=exp.Placeholder(this="v"), to=exp.DataType.build(kind))
        rows = self.engine.rows(exp.select(exp.cast(typed, "varchar")), {"v": value})
        return None if rows[0][0] is None else str(rows[0][0])

    def _identifying(self, traced: Traced) -> set[str]:
        """The values of the subject's raw rows in PII-tagged columns (e.g. its email)."""
        found: set[str] = set()
        recogniser = Recogniser([traced])
        for table in traced.types:
            tagged = [c for c in contract_pii(self._contract(table)) if c in self.columns[table]]
            files = self.stores.lake.files(table)
            if not tagged or not files:
                continue
            query = (
                exp.select(*[exp.cast(exp.column(c, quoted=True), "varchar") for c in tagged])
                .distinct()
                .from_(self.stores.engine.scan(files))
                .where(recogniser.raw_rows(table))
            )
            for row in self.stores.engine.rows(query, recogniser.params(query)):
                found |= {str(v) for v in row if v is not None and str(v).strip()}
        return found

    def _count(self, recogniser: Recogniser) -> dict[str, int]:
        """Rows each lake table holds of the subjects (nothing is changed)."""
        return {t: e.rows for t, e in self._erase_lake(recogniser, None).items()}

    # ---- the lake and the models ------------------------------------------------------------

    def _erase_lake(self, recogniser: Recogniser, erasure_id: int | None) -> dict[str, Erased]:
        """Erase the subjects' rows from each raw table and its quarantine (`erasure_id`
        None: count them only)."""
        out: dict[str, Erased] = {}
        tables = sorted({t for traced in recogniser.traced for t in traced.types})
        for table in tables:
            for target, predicate, where in (
                (table, recogniser.raw_rows(table), _prune(recogniser, table)),
                (self._contract(table).quarantine, recogniser.quarantined(table), None),
            ):
                erased = self.stores.lake.erase(
                    target,
                    mask(self.engine, predicate, recogniser),
                    where=where,
                    properties={"erasure": erasure_id},
                    dry_run=erasure_id is None,
                )
                if erased.rows:
                    out[target] = erased
        return out

    def _rebuild(self, out: Forgotten, erased: set[str]) -> None:
        """Rebuild whole every model that reads an erased raw table, and what reads them,
        through a run (so versions, releases and data products stay consistent)."""
        direct = self._readers(erased)
        if not direct:
            return
        self.progress(f"rebuilding {len(direct)} model(s) that read the erased tables, and theirs")
        selected = [f"{name}+" for name in direct]
        try:
            report = run(
                self.project,
                self.stores,
                now=self.now,
                stages=("build",),
                command="forget",
                full_refresh=True,
                select=selected,
            )
        except HeadwaterError as err:
            out.ok = False
            out.notes.append(
                f"the models reading the erased tables were not rebuilt ({err.message}); their "
                "rows of the subject were deleted instead: run `headwater build --full-refresh "
                f"--select {' '.join(selected)}` to rebuild them"
            )
            return
        out.rebuilt = sorted(n for n, o in report.models.items() if o.status is TaskStatus.BUILT)
        failures = _failures(report)
        out.ok, out.notes = not failures, out.notes + failures

    def _readers(self, erased: set[str]) -> list[str]:
        """The models that read a raw table (or its quarantine) rows were erased from."""
        read = {
            view
            for c in self.project.contracts.values()
            if c.table in erased or c.quarantine in erased
            for view in c.views
        }
        return sorted(n for n, m in self.project.models.items() if set(m.depends_on) & read)

    # ---- helpers ----------------------------------------------------------------------------

    def _preview(self, out: Forgotten, recogniser: Recogniser, derived: Derived) -> Forgotten:
        """What `forget` would remove (lake, warehouse and product rows) and rebuild."""
        lake = _nonzero(self._count(recogniser))
        out.removed.update(lake)
        out.removed.update(derived.sweep(dry_run=True))
        out.removed.update(derived.product_rows())
        direct = self._readers(set(lake))
        if direct:
            out.rebuilt = sorted(select_models(self.project.dag, [f"{n}+" for n in direct]))
        return out

    def _contract(self, table: str) -> Contract:
        return self.project.raw_tables[table]

    def _audited(self, out: Forgotten, traced: list[Traced], reason: str | None) -> Audited:
        """The audit entry of the erasure: keys and hashes, never a value."""
        keys = sorted({t.key for t in traced})
        return audited(
            "forget",
            ",".join(keys),
            at=self.now,
            status=0,
            stage="erase",
            erasure=out.erasure_id,
            keys=keys,
            sha256=[t.sha256 for t in traced],
            reason=reason,
            tables=_nonzero(out.removed),
            rows=out.rows,
            rebuilt=out.rebuilt,
            expire_after=out.expire_after,
        )


def _contract_columns(
    project: Project, pinned: dict[str, dict[str, str]]
) -> dict[str, dict[str, str]]:
    """Each raw table's columns and their types: declared, or pinned when first landed."""
    out = {}
    for contract in project.contracts.values():
        declared = {c.name: c.type for c in contract.columns}
        out[contract.table] = declared or pinned.get(contract.table, {})
    return out


def _prune(recogniser: Recogniser, table: str) -> tuple[str, Any] | None:
    """(key, value) for the manifests to skip files by, when one subject's key is an integer
    or text column of `table` (their bounds are comparable with the value)."""
    found = [t for t in recogniser.traced if table in t.types]
    if len(found) != 1:
        return None
    kind = exp.DataType.build(found[0].types[table])
    if kind.is_type(*exp.DataType.INTEGER_TYPES):
        return found[0].key, int(found[0].text)
    if kind.is_type(*exp.DataType.TEXT_TYPES):
        return found[0].key, found[0].text
    return None


def _failures(report: RunReport) -> list[str]:
    failed = sorted(n for n, o in report.models.items() if not o.ok)
    if not failed:
        return []
    return [
        f"the rebuild did not publish {', '.join(failed)} (see `headwater runs`); their rows "
        "of the subject were deleted from the versions that hold them"
    ]


def _nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {t: n for t, n in sorted(counts.items()) if n}


def _no_column(subject: Subject, columns: dict[str, dict[str, str]]) -> UsageError:
    import difflib

    names = sorted({c for cols in columns.values() for c in cols})
    close = difflib.get_close_matches(subject.key, names, n=1)
    searched = ", ".join(sorted(columns)) or "none (the project has no contracts)"
    return UsageError(
        f"--subject {subject.key}=…: no contract has a column named {subject.key!r} "
        f"(searched {searched})",
        hint=f"did you mean {close[0]!r}?" if close else "name a key column of a contract",
    )


def _no_rows(traced: Traced, project: Project) -> UsageError:
    tables = sorted(traced.types)
    quarantines = [project.raw_tables[t].quarantine for t in tables]
    return UsageError(
        f"--subject {traced.key}={traced.subject.value}: no row holds it: searched "
        f"{', '.join(f'{t}.{traced.key}' for t in tables)} and the records in "
        f"{', '.join(quarantines)}",
        hint="check the value; `headwater forget` erases only what is there "
        "(an erasure already done leaves nothing to find)",
    )
