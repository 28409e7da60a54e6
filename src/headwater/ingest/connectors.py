"""Open the reader of a contract's connector (each kind's driver is imported only when used)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from headwater.contracts.secrets import Secrets
from headwater.errors import SpecError
from headwater.ingest.source import Checkpoint, Reader, StreamBatch


def open_reader(
    connector: Any,
    *,
    root: Path,
    state: Checkpoint,
    secrets: Secrets,
    columns: Sequence[str] = (),
    whole: bool = False,
    name: str = "",
    lake: Callable[[], Mapping[str, Any]] | None = None,
) -> Reader:
    """The reader of one run of `connector`, resuming from `state` (`columns`: the contract's
    declared columns, which a CSV header must name some of; `whole`: a files connector reads
    every file again when any changed, a full copy for `load: snapshot`).

    Raises:
        SpecError: no source is registered for the connector's kind.
    """
    opener = SOURCES.get(connector.kind)
    if opener is None:
        close = difflib.get_close_matches(str(connector.kind), SOURCES, n=1)
        raise SpecError(
            f"no source reads connectors of kind {connector.kind!r}",
            hint=f"did you mean {close[0]!r}?" if close else f"kinds are: {', '.join(SOURCES)}",
        )
    return opener(
        connector,
        root=root,
        state=state,
        secrets=secrets,
        columns=columns,
        whole=whole,
        name=name,
        lake=lake,
    )


def _files(connector: Any, *, name: str = "", lake: Any = None, **options: Any) -> Reader:
    from headwater.ingest.files import FilesReader

    return FilesReader(connector, **options)


def _http(connector: Any, *, state: Checkpoint, secrets: Secrets, **_: Any) -> Reader:
    from headwater.ingest.http import HttpReader

    return HttpReader(connector, state=state, secrets=secrets)


def _database(connector: Any, *, state: Checkpoint, secrets: Secrets, **_: Any) -> Reader:
    from headwater.ingest.databases import DatabaseReader

    return DatabaseReader(connector, state=state, secrets=secrets)


def _kafka(
    connector: Any, *, root: Path, state: Checkpoint, secrets: Secrets, name: str, **_: Any
) -> Reader:
    from headwater.ingest.kafka import KafkaReader

    return KafkaReader(connector, root=root, state=state, secrets=secrets, name=name)


def _cdc(
    connector: Any,
    *,
    root: Path,
    state: Checkpoint,
    secrets: Secrets,
    lake: Callable[[], Mapping[str, Any]] | None = None,
    **_: Any,
) -> Reader:
    from headwater.ingest.cdc import CdcReader

    return CdcReader(connector, root=root, state=state, secrets=secrets, lake=lake)


# connector kind → what opens its reader (each kind's driver is imported only when used); a
# new source registers here, and `contracts.connectors` gives its spec the same `kind`
SOURCES: dict[str, Callable[..., Reader]] = {
    "files": _files,
    "http": _http,
    "postgres": _database,
    "sql": _database,
    "kafka": _kafka,
    "postgres_cdc": _cdc,
}


class Follower(Protocol):
    """A stream source read for as long as a worker runs (`headwater ingest --follow`)."""

    def next_batch(self, stop: Callable[[], bool]) -> StreamBatch | None:
        """The next batch to land (None: nothing came for a moment, or `stop` said so)."""
        ...

    def rewind(self) -> None:
        """Another worker landed meanwhile: drop what was read, read on from the lake."""
        ...

    def lag(self) -> dict[str, int]:
        """Messages (or changes) the source holds that have not landed, per partition."""
        ...

    def close(self) -> None: ...


def open_follower(
    connector: Any,
    *,
    root: Path,
    secrets: Secrets,
    group: str,
    lake: Callable[[], Mapping[str, Any]],
) -> Follower:
    """A follower of a stream connector; `lake` reads what the raw table's newest commit
    recorded (its checkpoint is where the follower resumes).

    Raises:
        SpecError: the connector's kind is not a stream (files, HTTP and databases land with
            `headwater ingest`, batch by batch).
    """
    if connector.kind == "kafka":
        from headwater.ingest.kafka import KafkaFollower, lake_offsets

        return KafkaFollower(
            connector, root=root, secrets=secrets, group=group, lake=lambda: lake_offsets(lake())
        )
    if connector.kind == "postgres_cdc":
        from headwater.ingest.cdc import CdcFollower

        return CdcFollower(connector, root=root, secrets=secrets, lake=lake)
    raise SpecError(
        f"a {connector.kind} connector is not a stream: --follow reads kafka and postgres_cdc "
        "connectors",
        hint="land it with `headwater ingest` (a schedule runs it regularly)",
    )


def source_lag(connector: Any, secrets: Secrets, properties: Mapping[str, Any]) -> dict[str, int]:
    """What a stream source holds that raw does not, as of the raw table's newest commit
    (`properties`): messages per Kafka partition, or the bytes of WAL a CDC slot keeps.

    Raises:
        HeadwaterError: the source cannot be reached (a `SourceError` naming it).
    """
    if connector.kind == "kafka":
        from headwater.ingest.kafka import consumer_lag, lake_offsets

        return consumer_lag(connector, secrets, lake_offsets(properties))
    if connector.kind == "postgres_cdc":
        from headwater.ingest.cdc import slot_lag

        held = slot_lag(connector, secrets)
        return {} if held is None else {"wal_bytes": held}
    return {}
