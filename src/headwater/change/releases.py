"""Releases: who made one and from which code, which stay restorable, and what restoring one
reads.

A release is retained while it is one of the newest `keep` of its environment or younger than
`retention` (`headwater.yml: releases:`); the janitor keeps every table a retained release
reads, and a rollback restores only a retained release whose tables all still exist.
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from headwater.change.versions import copy_name
from headwater.contracts.specs import Releases
from headwater.contracts.thresholds import parse_duration
from headwater.errors import UsageError
from headwater.zones.catalog import Catalog, ModelVersion, Pointer, Release


def who() -> str:
    """`user@host`, or `HEADWATER_USER` when set (a CI job names the person it runs for)."""
    named = os.environ.get("HEADWATER_USER")
    if named:
        return named
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def code_version(root: Path) -> str | None:
    """The git commit the project folder is at, `+dirty` when its files differ from it (or
    it has files git does not know yet); None outside a git work tree (or without git)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            # headwater's own state is not code, whether or not .gitignore says so
            ["git", "-C", str(root), "status", "--porcelain", "--", ".", ":(exclude).headwater"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = head.stdout.strip()[:12]
    return commit + ("+dirty" if dirty.stdout.strip() else "")


def check_summary(results: Iterable[Any]) -> dict[str, Any]:
    """What a release records of a run's rule results (`quality.CheckResult`s): how many
    passed, and each that did not, with its severity."""
    out: dict[str, Any] = {"passed": 0, "failed": []}
    for result in results:
        if result.passed:
            out["passed"] += 1
        else:
            out["failed"].append(
                {"rule": result.rule.name, "target": result.target, "blocking": result.blocking}
            )
    return out


def retained(
    heads: Iterable[tuple[int, str, datetime]], policy: Releases, *, now: datetime
) -> set[int]:
    """Ids of the releases still restorable: per environment the newest `policy.keep`, and
    every one younger than `policy.retention`."""
    horizon = now - timedelta(seconds=parse_duration(policy.retention))
    kept: set[int] = set()
    per_env: dict[str, int] = {}
    for release_id, env, created_at in sorted(heads, key=lambda h: -h[0]):
        per_env[env] = per_env.get(env, 0) + 1
        if per_env[env] <= policy.keep or created_at >= horizon:
            kept.add(release_id)
    return kept


def pinned(catalog: Catalog, policy: Releases, *, now: datetime) -> set[tuple[str, str | None]]:
    """(physical, data_key) of the data every retained release shows: a version written in
    place is first copied aside if its data is among them."""
    return catalog.released_data(retained(catalog.release_heads(), policy, now=now))


@dataclass(frozen=True)
class Restorable:
    release: Release
    tables: dict[str, Pointer]  # model → where its data of then is now (version or copy)


def restorable(
    catalog: Catalog,
    release: Release,
    versions: Mapping[tuple[str, str], ModelVersion],
    existing: set[str],
    policy: Releases,
    *,
    now: datetime,
) -> Restorable:
    """Where each model's data of `release` is now: its version's table if that still
    holds the same data, else the frozen copy made before it was written over.

    Raises:
        UsageError: the release is past the retention horizon, or a table it reads is gone.
    """
    heads = catalog.release_heads()
    kept = retained(heads, policy, now=now)
    oldest = min((i for i, env, _ in heads if i in kept and env == release.env), default=None)
    horizon = (
        f"the oldest restorable release of {release.env!r} is {oldest}"
        if oldest is not None
        else f"{release.env!r} has no restorable release"
    )
    if release.id not in kept:
        raise UsageError(
            f"release {release.id} is past the retention horizon (releases: keep "
            f"{policy.keep}, retention {policy.retention}); {horizon}",
            hint="raise `releases: {keep, retention}` in headwater.yml to keep more; nothing "
            "was changed",
        )
    copies = catalog.frozen_copies()
    copy_names = {copy for copy, _ in copies.values()}
    tables: dict[str, Pointer] = {}
    for name, pointer in release.pointers.items():
        version = versions.get((name, pointer.fingerprint))
        table: str | None = None
        if pointer.physical in copy_names or (
            version is not None
            and version.physical == pointer.physical
            and version.data_key == pointer.data_key
        ):  # a rollback's release reads a copy itself
            table = pointer.physical
        elif pointer.data_key is not None and (pointer.physical, pointer.data_key) in copies:
            table = copies[(pointer.physical, pointer.data_key)][0]
        elif pointer.data_key is not None:  # set aside by a run killed before recording it
            table = copy_name(pointer.physical, pointer.data_key)
        if table is None or table not in existing:
            raise UsageError(
                f"release {release.id} can no longer be restored exactly: the data "
                f"{name} showed then ({pointer.physical}) was written over or removed "
                "without a copy",
                hint=f"{horizon}; nothing was changed",
            )
        tables[name] = Pointer(
            name, table, pointer.fingerprint, pointer.data_key, pointer.rows, pointer.raw
        )
    return Restorable(release, tables)
