"""Jars come from a Maven repository into the cache whole and checked, once (engine/maven.py),
against a real HTTP server on 127.0.0.1 laid out as a Maven repository."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from headwater.engine.maven import Artifact, resolve
from headwater.errors import StoreError

JAR = Artifact("org.example", "thing", "1.2.3")


class _Logged(SimpleHTTPRequestHandler):
    asked: list[str] = []

    def log_message(self, format: str, *args: object) -> None:
        _Logged.asked.append(self.path)


@pytest.fixture
def repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A Maven repository folder served over HTTP; HEADWATER_MAVEN_REPO points at it."""
    root = tmp_path / "repo"
    root.mkdir()
    _Logged.asked = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Logged, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HEADWATER_MAVEN_REPO", f"http://127.0.0.1:{server.server_port}/")
    try:
        yield root
    finally:
        server.shutdown()
        server.server_close()


def _publish(root: Path, body: bytes, sha1: str | None = None) -> None:
    folder = root / "org/example/thing/1.2.3"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / JAR.file).write_bytes(body)
    digest = sha1 or hashlib.sha1(body, usedforsecurity=False).hexdigest()
    (folder / f"{JAR.file}.sha1").write_text(f"{digest}  {JAR.file}\n")


def test_a_jar_is_downloaded_once_and_checked(repository: Path, tmp_path: Path) -> None:
    _publish(repository, b"PK\x03\x04 a jar")
    cache = tmp_path / "cache"
    (path,) = resolve(["org.example:thing:1.2.3"], folder=cache)
    assert path == cache / "thing-1.2.3.jar" and path.read_bytes() == b"PK\x03\x04 a jar"
    asked = len(_Logged.asked)
    assert resolve([JAR], folder=cache) == [path]
    assert len(_Logged.asked) == asked  # from the cache: the repository is not asked again


def test_a_jar_that_does_not_match_its_checksum_is_not_kept(
    repository: Path, tmp_path: Path
) -> None:
    _publish(repository, b"PK tampered", sha1="0" * 40)
    cache = tmp_path / "cache"
    with pytest.raises(StoreError, match="does not match its SHA-1") as caught:
        resolve([JAR], folder=cache)
    assert "by hand" in (caught.value.hint or "")
    assert list(cache.iterdir()) == []  # no jar, no partial file


def test_a_missing_jar_names_the_url_and_what_to_do(repository: Path, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"cannot download org\.example:thing:1\.2\.3") as caught:
        resolve([JAR], folder=tmp_path / "cache")
    assert "HEADWATER_MAVEN_REPO" in (caught.value.hint or "")
    assert "org/example/thing/1.2.3/thing-1.2.3.jar" in (caught.value.hint or "")
