"""OpenLineage out: each task of a run (landing a contract, building a model) as one OpenLineage
job whose run starts, completes, fails or aborts, sent where `headwater.yml`'s `lineage:` says.

Lineage is a side channel: a receiver that is down, or a bad address, costs one warning and
the rest of the run's lineage, never the run. The OpenLineage client loads only when a
project asks for lineage.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater import __version__
from headwater.contracts import ModelKind, Rule, RuleType
from headwater.contracts.orchestration import Lineage
from headwater.engine.dialect import AUTHORED
from headwater.observe import Event, EventSink, TaskStatus
from headwater.orchestrate.stores import Stores
from headwater.project import Project

if TYPE_CHECKING:
    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import InputDataset, OutputDataset, RunEvent
    from openlineage.client.facet_v2 import DatasetFacet, JobFacet, RunFacet
    from openlineage.client.transport import Transport

    from headwater.models.lineage import ModelLineage

log = logging.getLogger(__name__)

PRODUCER = f"https://pypi.org/project/headwater/{__version__}/"
PARENT_JOB = "run"  # the headwater run every task's run belongs to: <namespace>/run
# what each status of a task is in OpenLineage's run cycle; other statuses send nothing
STATES: dict[str, str] = {
    TaskStatus.START: "START",
    TaskStatus.LANDED: "COMPLETE",
    TaskStatus.BUILT: "COMPLETE",
    TaskStatus.UP_TO_DATE: "COMPLETE",
    TaskStatus.INLINED: "COMPLETE",  # an ephemeral model: its job links what reads it
    TaskStatus.FAILED: "FAIL",
    TaskStatus.BLOCKED: "FAIL",
    TaskStatus.SKIPPED: "ABORT",
}
# a few quick retries for a receiver that blinks; then the run's lineage is given up
RETRY = {
    "total": 2,
    "connect": 2,
    "read": 1,
    "backoff_factor": 0.2,
    "status_forcelist": [500, 502, 503, 504],
    "allowed_methods": ["POST"],
}
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def lineage_sink(project: Project, stores: Stores, sink: EventSink) -> EventSink:
    """`sink`, also sending the run's tasks as OpenLineage events when `headwater.yml` has a
    `lineage:` setting (`sink` itself when it has none).

    Example:
        >>> run(project, stores, now=now, sink=lineage_sink(project, stores, discard))
    """
    if project.settings.lineage is None:
        return sink
    return OpenLineageSink(project, stores, sink, project.settings.lineage)


class OpenLineageSink:
    """Forwards every event to `sink`, and sends each ingest and build task's events as
    OpenLineage RunEvents: a job per contract (`ingest.raw.orders`) and per model
    (`build.clean.orders`), its runs children of the headwater run."""

    def __init__(self, project: Project, stores: Stores, sink: EventSink, setting: Lineage):
        self.sink, self.setting, self.root = sink, setting, project.root
        self.namespace = setting.namespace or project.settings.name
        self.facts = _Facts(project, stores, f"{stores.engine.dialect}://{self.namespace}")
        self._lock = threading.Lock()  # tasks report from worker threads; a file takes lines
        self._client: OpenLineageClient | None = None
        self._broken = False
        self._started: set[tuple[str, str]] = set()

    def __call__(self, event: Event) -> None:
        self.sink(event)
        state = STATES.get(event.status)
        if state is None or event.stage not in ("ingest", "build"):
            return
        with self._lock:
            if self._broken:
                return
            try:
                for sent in self._translate(event, state):
                    self._client_once().emit(sent)
            except Exception as err:  # a side channel: whatever went wrong, the run goes on
                self._give_up(err)

    def _translate(self, event: Event, state: str) -> list[RunEvent]:
        key = (event.run_id, event.task)
        out = []
        if state != "START" and key not in self._started:
            # settled without starting (up to date, skipped): OpenLineage wants both ends
            out.append(self._run_event(event, "START"))
        self._started.add(key)
        out.append(self._run_event(event, state))
        return out

    def _run_event(self, event: Event, state: str) -> RunEvent:
        from openlineage.client.event_v2 import Job, Run, RunEvent, RunState

        facts, ended = self.facts, state != "START"
        if event.status in (TaskStatus.BUILT, TaskStatus.UP_TO_DATE) and ended:
            facts.note_version(event)
        return RunEvent(
            eventType=RunState(state),
            eventTime=event.at.isoformat(),
            run=Run(
                runId=self.run_id(event.run_id, event.task), facets=self._run_facets(event, ended)
            ),
            job=Job(
                namespace=self.namespace,
                name=f"{event.stage}.{event.subject}",
                facets=facts.job_facets(event),
            ),
            inputs=facts.inputs(event, ended=ended),
            outputs=facts.outputs(event, state),
            producer=PRODUCER,
        )

    def _run_facets(self, event: Event, ended: bool) -> dict[str, RunFacet]:
        from openlineage.client.constants import __version__ as client_version
        from openlineage.client.facet_v2 import error_message_run, parent_run
        from openlineage.client.facet_v2 import processing_engine_run as engine

        parent_id = self.run_id(event.run_id)
        facets: dict[str, RunFacet] = {
            "parent": parent_run.ParentRunFacet(
                run=parent_run.Run(runId=parent_id),
                job=parent_run.Job(namespace=self.namespace, name=PARENT_JOB),
                root=parent_run.Root(
                    run=parent_run.RootRun(runId=parent_id),
                    job=parent_run.RootJob(namespace=self.namespace, name=PARENT_JOB),
                ),
                producer=PRODUCER,
            ),
            "processing_engine": engine.ProcessingEngineRunFacet(
                version=__version__,
                name="headwater",
                openlineageAdapterVersion=client_version,
                producer=PRODUCER,
            ),
        }
        why = self.facts.why(event) if ended else None
        if why is not None:
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=self.facts.scrub(why),
                programmingLanguage=self.facts.language(event),
                producer=PRODUCER,
            )
        return facets

    def run_id(self, run_id: str, task: str | None = None) -> str:
        """The OpenLineage run id of headwater's run `run_id`, or of its `task`: the same for
        every event of it, different in every project namespace and run."""
        name = f"headwater:{self.namespace}:{run_id}" + (f":{task}" if task else "")
        return str(uuid.uuid5(uuid.NAMESPACE_URL, name))

    def _client_once(self) -> OpenLineageClient:
        if self._client is None:
            from openlineage.client import OpenLineageClient

            self._client = OpenLineageClient(
                transport=_transport(self.setting, self.root),
                # events say what headwater knows: no git lookups of the working directory
                config={"facets": {"source_code_location": {"disabled": True}}},
            )
        return self._client

    def _give_up(self, err: Exception) -> None:
        self._broken = True
        log.warning(
            "OpenLineage: could not send to %s (%s); the rest of this run's lineage is "
            "dropped, the run goes on",
            _target(self.setting),
            self.facts.scrub(f"{type(err).__name__}: {err}"),
        )


def _transport(setting: Lineage, root: Path) -> Transport:
    if setting.transport == "file":
        from openlineage.client.transport.file import FileConfig, FileTransport

        path = root / (setting.path or "")
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileTransport(FileConfig(log_file_path=str(path), append=True))
    if setting.transport == "http":
        from openlineage.client.transport.http import HttpConfig, HttpTransport

        return HttpTransport(
            HttpConfig(url=setting.url or "", endpoint=setting.endpoint, timeout=5.0, retry=RETRY)
        )
    from openlineage.client.transport.console import ConsoleConfig, ConsoleTransport

    return ConsoleTransport(ConsoleConfig())


def _target(setting: Lineage) -> str:
    """Where events go, for a warning: never a URL's user or password."""
    if setting.transport == "http":
        return _USERINFO.sub("", f"{setting.url}/{setting.endpoint}")
    return setting.path or "the console"


@dataclass
class _Quality:
    """What one run's check results on a table say in OpenLineage's terms."""

    rows: int | None = None
    nulls: dict[str, int] = field(default_factory=dict)
    assertions: list[dict[str, Any]] = field(default_factory=list)


def quality(records: Sequence[Mapping[str, Any]], rules: Mapping[str, Rule]) -> _Quality:
    """Row count, null counts and one assertion per rule from check results (`records`: rows
    of the catalog's check history, newest first). A metric becomes a count only where it is
    one over the whole table checked: a row_count or volume rule's metric is its rows, a
    not_null rule's its nulls; rules with `where:` count a part, so they only assert."""
    out = _Quality()
    seen: set[str] = set()
    for record in records:
        name, metric = record["rule"], record["metric"]
        if name in seen:
            continue
        seen.add(name)
        rule = rules.get(name)
        columns = rule.columns if rule else []
        whole = rule is not None and rule.where is None and metric is not None
        if whole and record["type"] in (RuleType.ROW_COUNT, RuleType.VOLUME):
            out.rows = int(metric)
        if whole and record["type"] == RuleType.NOT_NULL and len(columns) == 1:
            out.nulls[columns[0]] = int(metric)
        out.assertions.append(
            {
                "assertion": record["type"],
                "success": bool(record["passed"]),
                "column": columns[0] if len(columns) == 1 else None,
                "severity": record["severity"],
                "name": name,
                "expected": record["threshold"],
                "actual": None if metric is None else f"{metric:g}",
            }
        )
    return out


class _Facts:
    """What the events of a run say about its tables: schemas, rows, column lineage and
    check results, each looked up once and kept for the tasks that read the table."""

    def __init__(self, project: Project, stores: Stores, namespace: str):
        self.project, self.stores, self.namespace = project, stores, namespace
        self.columns: dict[str, list[tuple[str, str | None]]] = {}
        self.rows: dict[str, int] = {}  # rows of the model versions this run built or kept
        self._lineage: dict[str, ModelLineage] | None = None
        self._raw: dict[str, dict[str, str]] | None = None

    # --- jobs and runs

    def job_facets(self, event: Event) -> dict[str, JobFacet]:
        from openlineage.client.facet_v2 import job_type_job, sql_job

        kind = "INGEST" if event.stage == "ingest" else "MODEL"
        facets: dict[str, JobFacet] = {
            "jobType": job_type_job.JobTypeJobFacet(
                processingType="BATCH", integration="HEADWATER", jobType=kind, producer=PRODUCER
            )
        }
        model = self.project.models.get(event.subject) if event.stage == "build" else None
        if model is not None and model.function is None:
            facets["sql"] = sql_job.SQLJobFacet(
                query=model.query.sql(dialect=AUTHORED, pretty=True, comments=False),
                dialect=AUTHORED,
                producer=PRODUCER,
            )
        return facets

    def why(self, event: Event) -> str | None:
        """What failed, or why the task was skipped (None when it went well)."""
        if event.status not in (TaskStatus.FAILED, TaskStatus.BLOCKED, TaskStatus.SKIPPED):
            return None
        error = event.detail.get("error") or f"{event.subject} {event.status}"
        return f"skipped: {error}" if event.status == TaskStatus.SKIPPED else str(error)

    def language(self, event: Event) -> str:
        model = self.project.models.get(event.subject) if event.stage == "build" else None
        return "SQL" if model is not None and model.function is None else "PYTHON"

    def scrub(self, text: str) -> str:
        """`text` without the project's secrets or any URL's user and password."""
        return _USERINFO.sub("***@", self.stores.secrets.scrub(text))

    def note_version(self, event: Event) -> None:
        """Keep the rows and columns of a model version built or kept in this run, for the
        events of the models that read it."""
        if event.detail.get("rows") is not None:
            self.rows[event.subject] = int(event.detail["rows"])
        relation = event.outputs[0] if event.outputs else event.subject
        found = self._warehouse_columns(relation)
        if found is not None:
            self.columns[event.subject] = found

    # --- datasets

    def inputs(self, event: Event, *, ended: bool) -> list[InputDataset]:
        from openlineage.client.event_v2 import InputDataset

        out = []
        for name in self._reads(event):
            schema = self._schema(name)
            out.append(
                InputDataset(
                    namespace=self.namespace,
                    name=name,
                    facets={"schema": schema} if schema is not None else {},
                    inputFacets=self._input_quality(name, event.run_id) if ended else {},
                )
            )
        return out

    def outputs(self, event: Event, state: str) -> list[OutputDataset]:
        from openlineage.client.event_v2 import OutputDataset
        from openlineage.client.facet_v2 import output_statistics_output_dataset as stats

        name = event.subject
        facets: dict[str, DatasetFacet | None] = {}
        output_facets = {}
        if event.stage == "ingest" or state == "COMPLETE":  # a contract declares its columns
            facets["schema"] = self._schema(name)
        if event.stage == "build":
            facets["columnLineage"] = self._column_lineage(name)
        if state != "START":
            facets["dataQualityMetrics"] = self._output_quality(name, event)
        if state == "COMPLETE" and event.detail.get("rows") is not None:
            output_facets["outputStatistics"] = stats.OutputStatisticsOutputDatasetFacet(
                rowCount=int(event.detail["rows"]), producer=PRODUCER
            )
        return [
            OutputDataset(
                namespace=self.namespace,
                name=name,
                facets={k: v for k, v in facets.items() if v is not None},
                outputFacets=dict(output_facets),
            )
        ]

    def _reads(self, event: Event) -> tuple[str, ...]:
        model = self.project.models.get(event.subject)
        return model.depends_on if event.stage == "build" and model is not None else ()

    # --- schemas

    def schema_of(self, name: str) -> list[tuple[str, str | None]] | None:
        """A table's columns and types: a raw table's as its contract declares them (or as
        pinned when it first landed), a model's as the warehouse has them."""
        if name not in self.columns:
            raw = self._raw_schema().get(name)
            if raw is not None:
                self.columns[name] = list(raw.items())
            elif name in self.project.models:
                lineage = self._lineages().get(name)
                found: list[tuple[str, str | None]] | None
                if self._ephemeral(name):  # never in the warehouse: its columns as traced
                    found = [(c, None) for c in lineage.outputs] if lineage else None
                else:
                    found = self._warehouse_columns(name)
                if found is not None:
                    self.columns[name] = found
        return self.columns.get(name)

    def _ephemeral(self, name: str) -> bool:
        return self.project.models[name].config.kind is ModelKind.EPHEMERAL

    def _schema(self, name: str) -> DatasetFacet | None:
        from openlineage.client.facet_v2 import schema_dataset as schema

        columns = self.schema_of(name)
        if not columns:
            return None
        fields = [schema.SchemaDatasetFacetFields(name=c, type=t) for c, t in columns]
        return schema.SchemaDatasetFacet(fields=fields, producer=PRODUCER)

    def _warehouse_columns(self, relation: str) -> list[tuple[str, str | None]] | None:
        cursor = self.stores.engine.cursor()  # the caller may be any worker thread
        try:
            return [(c, t) for c, t in cursor.columns(relation).items()]
        except Exception:  # not there (never built, ephemeral): no schema to tell
            return None
        finally:
            cursor.close()

    def _raw_schema(self) -> dict[str, dict[str, str]]:
        if self._raw is None:
            from headwater.orchestrate.lineage import raw_schema

            self._raw = raw_schema(self.project, self._pinned())
        return self._raw

    def _pinned(self) -> dict[str, dict[str, str]]:
        """Columns pinned when a table whose contract declares none first landed."""
        import json

        out = {}
        for contract in self.project.contracts.values():
            if not contract.columns:
                props = self.stores.lake.properties(contract.table)
                pinned = props.get(f"schema.{contract.schema_version}")
                if pinned:
                    out[contract.table] = {c["name"]: c["type"] for c in json.loads(pinned)}
        return out

    # --- column lineage

    def _lineages(self) -> dict[str, ModelLineage]:
        if self._lineage is None:
            from headwater.orchestrate.lineage import record_lineage

            try:  # traced once a run; the catalog keeps what did not change since
                found = record_lineage(self.project, self.stores.catalog, self._pinned())
                self._lineage = found.models
            except Exception:
                log.debug("OpenLineage: no column lineage this run", exc_info=True)
                self._lineage = {}
        return self._lineage

    def _column_lineage(self, name: str) -> DatasetFacet | None:
        """Each output column's upstream columns; the columns that decide which rows the
        model has (WHERE, JOIN, GROUP BY, …) as the dataset's indirect lineage."""
        from openlineage.client.facet_v2 import column_lineage_dataset as cl

        from headwater.models.lineage import ROWS

        lineage = self._lineages().get(name)
        if lineage is None:
            return None
        fields, rows = {}, []
        for column, upstream in lineage.columns.items():
            ups = [u for u in upstream if u.column != ROWS]
            if column == ROWS:
                indirect = [cl.Transformation(type="INDIRECT")]
                rows = [
                    cl.InputField(self.namespace, u.table, u.column, transformations=indirect)
                    for u in ups
                ]
            elif ups:
                inputs = [cl.InputField(self.namespace, u.table, u.column) for u in ups]
                fields[column] = cl.Fields(inputFields=inputs)
        return cl.ColumnLineageDatasetFacet(fields=fields, dataset=rows, producer=PRODUCER)

    # --- data quality

    def _checks(self, target: str, run_id: str) -> _Quality | None:
        """What the checks of run `run_id` found on `target` (None: none ran on it)."""
        rules = self._rules(target)
        if not rules or not run_id:
            return None
        history = self.stores.catalog.check_history(target, limit=4 * len(rules) + 50)
        records = [r for r in history if r["run_id"] == run_id]
        return quality(records, rules) if records else None

    def _rules(self, target: str) -> dict[str, Rule]:
        owner = self.project.raw_tables.get(target) or self.project.models.get(target)
        return {r.name: r for r in owner.rules} if owner is not None else {}

    def _input_quality(self, name: str, run_id: str) -> dict[str, Any]:
        """The quality of a table a model reads, as this run's checks on it found it; its
        row count is that of the version read when no row_count rule counted it."""
        from openlineage.client.facet_v2 import data_quality_assertions_dataset as asserted
        from openlineage.client.facet_v2 import data_quality_metrics_input_dataset as dq

        found = self._checks(name, run_id) or _Quality()
        rows = found.rows if found.rows is not None else self.rows.get(name)
        facets: dict[str, Any] = {}
        if rows is not None or found.nulls:
            facets["dataQualityMetrics"] = dq.DataQualityMetricsInputDatasetFacet(
                columnMetrics={c: dq.ColumnMetrics(nullCount=n) for c, n in found.nulls.items()},
                rowCount=rows,
                producer=PRODUCER,
            )
        if found.assertions:
            facets["dataQualityAssertions"] = asserted.DataQualityAssertionsDatasetFacet(
                assertions=[asserted.Assertion(**a) for a in found.assertions],
                producer=PRODUCER,
            )
        return facets

    def _output_quality(self, name: str, event: Event) -> DatasetFacet | None:
        """What the task's own rules found on what it wrote: a landed batch, a model version."""
        from openlineage.client.facet_v2 import data_quality_metrics_dataset as dq

        found = self._checks(name, event.run_id)
        if found is None:
            return None
        return dq.DataQualityMetricsDatasetFacet(
            columnMetrics={c: dq.ColumnMetrics(nullCount=n) for c, n in found.nulls.items()},
            rowCount=found.rows,
            producer=PRODUCER,
        )
