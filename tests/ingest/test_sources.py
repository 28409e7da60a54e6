"""Every connector kind a contract may name has a source that reads it, and no other."""

from __future__ import annotations

import typing
from pathlib import Path
from types import SimpleNamespace

import pytest

from headwater.contracts.connectors import Connector
from headwater.contracts.secrets import Secrets
from headwater.errors import SpecError
from headwater.ingest.connectors import SOURCES, open_reader
from headwater.ingest.source import Checkpoint


def _spec_kinds() -> set[str]:
    union = typing.get_args(Connector)[0]
    return {typing.get_args(c.model_fields["kind"].annotation)[0] for c in typing.get_args(union)}


def test_the_sources_are_exactly_the_connector_kinds_of_the_spec() -> None:
    assert (
        set(SOURCES)
        == _spec_kinds()
        == {"files", "http", "postgres", "sql", "kafka", "postgres_cdc"}
    )


def test_an_unregistered_kind_is_an_error_with_the_kinds_there_are(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        open_reader(
            SimpleNamespace(kind="mqtt"), root=tmp_path, state=Checkpoint(), secrets=Secrets({})
        )
    assert "mqtt" in caught.value.message and "sql" in (caught.value.hint or "")
    with pytest.raises(SpecError) as caught:
        open_reader(
            SimpleNamespace(kind="htp"), root=tmp_path, state=Checkpoint(), secrets=Secrets({})
        )
    assert caught.value.hint == "did you mean 'http'?"
