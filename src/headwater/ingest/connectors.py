"""Open the reader of a contract's connector (each kind's driver is imported only when used)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from headwater.contracts.secrets import Secrets
from headwater.ingest.source import Reader, State


def open_reader(
    connector: Any,
    *,
    root: Path,
    state: State,
    secrets: Secrets,
    columns: Sequence[str] = (),
    whole: bool = False,
) -> Reader:
    """The reader of one run of `connector`, resuming from `state` (`columns`: the contract's
    declared columns, which a CSV header must name some of; `whole`: a files connector reads
    every file again when any changed, a full copy for `load: snapshot`)."""
    if connector.kind == "files":
        from headwater.ingest.files import FilesReader

        return FilesReader(
            connector, root=root, state=state, secrets=secrets, columns=columns, whole=whole
        )
    if connector.kind == "http":
        from headwater.ingest.http import HttpReader

        return HttpReader(connector, state=state, secrets=secrets)
    from headwater.ingest.databases import DatabaseReader

    return DatabaseReader(connector, state=state, secrets=secrets)
