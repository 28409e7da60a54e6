"""Open the reader of a contract's connector (each kind's driver is imported only when used)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from headwater.contracts.secrets import Secrets
from headwater.errors import SpecError
from headwater.ingest.source import Checkpoint, Reader


def open_reader(
    connector: Any,
    *,
    root: Path,
    state: Checkpoint,
    secrets: Secrets,
    columns: Sequence[str] = (),
    whole: bool = False,
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
    return opener(connector, root=root, state=state, secrets=secrets, columns=columns, whole=whole)


def _files(connector: Any, **options: Any) -> Reader:
    from headwater.ingest.files import FilesReader

    return FilesReader(connector, **options)


def _http(connector: Any, *, state: Checkpoint, secrets: Secrets, **_: Any) -> Reader:
    from headwater.ingest.http import HttpReader

    return HttpReader(connector, state=state, secrets=secrets)


def _database(connector: Any, *, state: Checkpoint, secrets: Secrets, **_: Any) -> Reader:
    from headwater.ingest.databases import DatabaseReader

    return DatabaseReader(connector, state=state, secrets=secrets)


def _kafka(connector: Any, *, root: Path, state: Checkpoint, secrets: Secrets, **_: Any) -> Reader:
    from headwater.ingest.kafka import KafkaReader

    return KafkaReader(connector, root=root, state=state, secrets=secrets)


# connector kind → what opens its reader (each kind's driver is imported only when used); a
# new source registers here, and `contracts.connectors` gives its spec the same `kind`
SOURCES: dict[str, Callable[..., Reader]] = {
    "files": _files,
    "http": _http,
    "postgres": _database,
    "sql": _database,
    "kafka": _kafka,
}
