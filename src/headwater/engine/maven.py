"""Jars from Maven Central into a cache folder, for the engines that run on a JVM (Spark).

No Maven, no Ivy: each jar an engine needs is self-contained (Iceberg's Spark runtime is
shaded, the JDBC drivers have no dependencies), so it is one download, checked against the
SHA-1 Maven publishes beside it and moved into place whole — a half-written jar is never
found by the next run. The cache is `$HEADWATER_CACHE/jars` (default `~/.cache/headwater`);
`HEADWATER_MAVEN_REPO` points at a mirror.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from headwater.errors import StoreError

CENTRAL = "https://repo1.maven.org/maven2"


@dataclass(frozen=True)
class Artifact:
    """`group:name:version` of one jar."""

    group: str
    name: str
    version: str

    @classmethod
    def parse(cls, coordinates: str) -> Artifact:
        group, name, version = coordinates.split(":")
        return cls(group, name, version)

    @property
    def file(self) -> str:
        return f"{self.name}-{self.version}.jar"

    def url(self, repository: str) -> str:
        folder = f"{self.group.replace('.', '/')}/{self.name}/{self.version}"
        return f"{repository.rstrip('/')}/{folder}/{self.file}"

    def __str__(self) -> str:
        return f"{self.group}:{self.name}:{self.version}"


def cache_folder() -> Path:
    """Where jars are kept between runs."""
    return Path(os.environ.get("HEADWATER_CACHE") or Path.home() / ".cache" / "headwater") / "jars"


def resolve(artifacts: Sequence[Artifact | str], *, folder: Path | None = None) -> list[Path]:
    """The local paths of `artifacts`, downloading those the cache lacks.

    Raises:
        StoreError: a jar cannot be downloaded, or its checksum does not match (named, with
            the URL tried and what to do without a network).
    """
    folder = folder or cache_folder()
    folder.mkdir(parents=True, exist_ok=True)
    repository = os.environ.get("HEADWATER_MAVEN_REPO") or CENTRAL
    paths = []
    for item in artifacts:
        artifact = item if isinstance(item, Artifact) else Artifact.parse(item)
        path = folder / artifact.file
        if not path.exists():
            _download(artifact, repository, path)
        paths.append(path)
    return paths


def _download(artifact: Artifact, repository: str, path: Path) -> None:
    import httpx

    url = artifact.url(repository)
    hint = (
        f"download {url} into {path.parent} by hand, or set HEADWATER_MAVEN_REPO to a mirror "
        "(HEADWATER_CACHE moves the cache)"
    )
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    digest = hashlib.sha1(usedforsecurity=False)
    try:
        with httpx.Client(follow_redirects=True, timeout=60) as client:
            expected = client.get(f"{url}.sha1")
            expected.raise_for_status()
            with client.stream("GET", url) as response, partial.open("wb") as out:
                response.raise_for_status()
                for chunk in response.iter_bytes(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
    except (httpx.HTTPError, OSError) as err:
        partial.unlink(missing_ok=True)
        raise StoreError(f"cannot download {artifact}: {err}", hint=hint) from err
    want = expected.text.split()[0].strip().lower() if expected.text.split() else ""
    if digest.hexdigest() != want:
        partial.unlink(missing_ok=True)
        raise StoreError(
            f"{artifact} downloaded from {url} does not match its SHA-1 "
            f"({digest.hexdigest()} != {want or 'none published'})",
            hint=hint,
        )
    partial.replace(path)
