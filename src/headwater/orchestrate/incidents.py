"""The incidents a run shows, opened and resolved when it ends, and their delivery.

Each rule a run evaluates is one problem, `rule:<target>:<rule>`: failing (warn or error; a
drift or anomaly rule is a rule of that type) opens it, passing again resolves it, and a rule
the run did not evaluate leaves it as it was. A run whose models fail, whose ingest fails or
that stops before it finishes opens `run_failed:<command>`; the next successful run of that
command resolves it (a run failed only by its rules says so in their incidents, not twice).
Runs of an environment other than prod add `@<env>` to their keys.

Delivery never holds the run up: it goes on in threads (one per channel) that the run waits
for a little (`WAIT_S`); what is not delivered by then stays queued in the catalog and is
sent by the next run or scheduler tick.
"""

from __future__ import annotations

from datetime import datetime

from headwater.contracts.specs import OnFail, RuleType
from headwater.observe import TaskStatus
from headwater.orchestrate.alerting import Alerting, owned
from headwater.orchestrate.report import RunReport
from headwater.orchestrate.stores import Stores
from headwater.project import Project
from headwater.quality import CheckResult
from headwater.zones.catalog import Catalog
from headwater.zones.catalog.alerts import Incident

WAIT_S = 2.0  # how long the end of a run waits for alerts to go out
KINDS = {RuleType.DRIFT: "drift", RuleType.ANOMALY: "anomaly"}  # others: rule_failed
_TITLES = {
    "rule_failed": "rule {rule} failed on {target}",
    "drift": "{target} drifted (rule {rule})",
    "anomaly": "anomaly in {target} (rule {rule})",
}
_ACTIONS = {
    OnFail.BLOCK: "; nothing it checked was published",
    OnFail.QUARANTINE: "; the failing rows were quarantined",
    OnFail.WARN: "",
}


def raise_incidents(
    project: Project, stores: Stores, report: RunReport, *, now: datetime, wait: float = WAIT_S
) -> list[str]:
    """Open and resolve the incidents of the run `report` recorded, then send what is due
    (waiting at most `wait` seconds); the notes for the user. Never raises: a failure here
    is a note, not a failed run."""
    try:
        alerting = Alerting.of(project, stores.secrets, strict=False)
        run = stores.catalog.find_run(report.run_id) or {}
        suffix = f"@{run['env']}" if run.get("env") else ""
        _rules(project, stores.catalog, alerting, report, suffix=suffix, now=now)
        command = f"{run.get('command', 'run')}{suffix}"
        _run_failed(stores.catalog, alerting, report, run, command=command, now=now)
        sent = deliver_soon(alerting, stores.catalog, now=now, wait=wait)
    except Exception as err:  # the run is recorded: nothing here may fail it
        return [f"alerts: {type(err).__name__}: {err}"]
    return [*alerting.problems, *sent]


def _rules(
    project: Project,
    catalog: Catalog,
    alerting: Alerting,
    report: RunReport,
    *,
    suffix: str,
    now: datetime,
) -> None:
    by_key: dict[str, list[CheckResult]] = {}
    for check in report.checks:
        by_key.setdefault(f"rule:{check.target}:{check.rule.name}{suffix}", []).append(check)
    for key, checks in by_key.items():
        failing = [c for c in checks if not c.passed]
        if failing:
            alerting.open(catalog, rule_incident(project, key, failing[0]), now=now)
        else:
            check = checks[0]
            message = f"rule {check.rule.name} passes again on {check.target}: {check.summary}"
            alerting.resolve(catalog, key, message=message, now=now)


def rule_incident(project: Project, key: str, check: CheckResult) -> Incident:
    """The incident of a failing rule: its severity, and its table's owner and tags."""
    kind = KINDS.get(check.rule.type, "rule_failed")
    title = _TITLES[kind].format(rule=check.rule.name, target=check.target)
    message = f"{title}: {check.summary}{_ACTIONS.get(check.rule.action, '')}"
    owner, tags = owned(project, check.target)
    return Incident(
        key, kind, check.target, check.rule.severity.value, message, owner, tags, title=title
    )


def _run_failed(
    catalog: Catalog,
    alerting: Alerting,
    report: RunReport,
    run: dict[str, object],
    *,
    command: str,
    now: datetime,
) -> None:
    key = f"run_failed:{command}"
    failures = run_failures(report)
    if (
        run.get("status") == "failed"
        and not failures
        and not any(c.blocking for c in report.checks)
    ):
        failures = [f"it stopped before it finished (see `headwater runs {report.run_id}`)"]
    if failures:
        title = f"headwater {command} failed"
        message = f"run {report.run_id} failed: " + "; ".join(failures)
        subject = f"headwater {command}"
        incident = Incident(key, "run_failed", subject, "error", message, title=title)
        alerting.open(catalog, incident, now=now)
    elif run.get("status") == "success":
        message = f"run {report.run_id} of headwater {command} succeeded"
        alerting.resolve(catalog, key, message=message, now=now)


def run_failures(report: RunReport) -> list[str]:
    """What failed in a run besides its rules: models that raised, tables that did not land."""
    failed = [m for m in report.models.values() if m.status is TaskStatus.FAILED]
    out = [f"model {m.name} failed: {_first_line(m.error or 'no error recorded')}" for m in failed]
    for table, error in sorted(report.ingest_errors.items()):
        out.append(f"{table} did not land: {_first_line(error)}")
    return out


def deliver_soon(alerting: Alerting, catalog: Catalog, *, now: datetime, wait: float) -> list[str]:
    """Start sending the due alert events and wait for them at most `wait` seconds; what to
    tell the user about those that did not go (yet)."""
    sending = alerting.start(catalog, now)
    failed = sending.wait(wait)
    notes = []
    if failed:
        notes.append(
            f"alerts not delivered to {'; '.join(failed)}; they are kept and sent again by a "
            "later run or scheduler tick (30 s after a refusal, doubling up to an hour)"
        )
    slow = sending.unfinished
    if slow:
        notes.append(
            f"alerts are still being sent to {', '.join(slow)} after {wait:g}s (slow to "
            "answer): what does not go through is kept and sent again on the next run or "
            "scheduler tick"
        )
    return notes


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0][:300] if lines else ""
