"""Blue/green for `critical: true` models: `headwater apply` builds the change into a green
environment beside the one it changes (blue), and flips blue to green's versions only once
approved — by `apply --approve`, or by the `releases.auto_approve` policy (row counts within
a share of blue's, no failed rule). Until then readers see blue; `headwater diff` compares
the two.

Green is an environment like any other (`prod_green`, views in `marts__prod_green`): staged
versions are real tables a reviewer can query, approving is a promote (no model runs), and
green is withdrawn once flipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from headwater.change.environments import Environment
from headwater.contracts.specs import AutoApprove
from headwater.contracts.thresholds import parse_threshold
from headwater.orchestrate.environments import changed, repoint
from headwater.orchestrate.report import RunReport
from headwater.orchestrate.stores import Stores
from headwater.project import Project
from headwater.zones.catalog import Catalog

if TYPE_CHECKING:
    from headwater.change.diff import VersionDiff

GREEN = "_green"


def green_of(env: str) -> str:
    """The environment a change to `env` is staged in: `prod` → `prod_green`."""
    return f"{env}{GREEN}"


def critical_changes(project: Project, catalog: Catalog, env: str) -> list[str]:
    """The `critical: true` models whose version `env` does not show yet."""
    return sorted(n for n in changed(project, catalog, env) if project.models[n].config.critical)


def staged(project: Project, catalog: Catalog, env: str) -> list[str]:
    """The models green shows another version of than `env` does."""
    blue, green = catalog.pointers(env), catalog.pointers(green_of(env))
    return sorted(n for n in green if green[n] != blue.get(n) and n in project.models)


def diffs(project: Project, stores: Stores, blue_env: str, green_env: str) -> list[VersionDiff]:
    """Each model `green_env` shows another version of than `blue_env`, compared."""
    from headwater.change.diff import diff_versions  # only when there is something to compare

    blue, green = stores.catalog.pointers(blue_env), stores.catalog.pointers(green_env)
    out = []
    for name in sorted(green):
        if green[name] == blue.get(name):
            continue
        model = project.models.get(name)
        key = list(model.config.grain) if model is not None else []
        out.append(diff_versions(stores.engine, name, blue.get(name), green[name], key=key))
    return out


@dataclass(frozen=True)
class Verdict:
    approved: bool
    reasons: list[str] = field(default_factory=list)  # why not, or how it passed


def judge(
    project: Project, stores: Stores, env: str, report: RunReport, policy: AutoApprove | None
) -> Verdict:
    """Whether the auto-approve `policy` flips what green holds for `env`."""
    if policy is None:
        return Verdict(False, ["no auto-approve policy (releases.auto_approve): a person approves"])
    limit = parse_threshold(policy.rows_within)
    critical = {n for n, m in project.models.items() if m.config.critical}
    reasons = []
    for d in diffs(project, stores, env, green_of(env)):
        if d.model not in critical:
            continue
        change = d.row_change
        if change is not None and abs(change) > limit:
            reasons.append(
                f"{d.model}: {d.blue_rows:,} → {d.green_rows:,} rows ({change:+.1%}, more than "
                f"{policy.rows_within})"
            )
    if policy.no_failed_rules:
        failed = sorted({c.target for c in report.checks if not c.passed} & critical)
        reasons += [f"{name}: a rule failed" for name in failed]
    if reasons:
        return Verdict(False, reasons)
    return Verdict(True, [f"auto-approved: row counts within {policy.rows_within} of blue"])


def flip(
    project: Project, stores: Stores, env: str, *, run_id: str, now: datetime, note: str
) -> int:
    """Point `env` at everything green shows (no model runs), then withdraw green; the
    release written."""
    green = green_of(env)
    release = repoint(project, stores, green, env, run_id=run_id, now=now, kind="apply", note=note)
    environment = Environment(stores.engine, stores.catalog, green)
    environment.withdraw(sorted(environment.pointers()))
    return release
