"""The lease that lets one run of a project at a time: a row in `hw_leases`, taken with a
compare-and-swap, renewed by its holder's heartbeat, and taken over from a holder that is
gone (its process no longer exists on this host, or its heartbeat stopped).

Times here are the wall clock (`utcnow`), not a run's `now`: staleness is real time passing.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from headwater.errors import HeadwaterError
from headwater.zones.catalog.base import CatalogBase, utcnow
from headwater.zones.catalog.schema import leases

STALE_AFTER = timedelta(minutes=5)  # a holder silent this long is gone, wherever it ran
PLACE = " #"  # between a host's name and where on it its pids mean something


@functools.cache
def here() -> str:
    """This host's name, with its boot and pid namespace where the system tells them (Linux):
    a pid is only checked by a process that sees the same ones."""
    parts = []
    with contextlib.suppress(OSError):
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8])
    with contextlib.suppress(OSError):
        parts.append(os.readlink("/proc/self/ns/pid").removeprefix("pid:"))
    name = socket.gethostname()
    return f"{name}{PLACE}{'/'.join(parts)}" if parts else name


@dataclass(frozen=True)
class Holder:
    """Who holds a lease."""

    token: str
    host: str
    pid: int
    command: str
    acquired_at: datetime
    heartbeat_at: datetime

    def gone(self, now: datetime, stale_after: timedelta = STALE_AFTER) -> str | None:
        """Why this holder no longer holds anything (None: it may still be running). Its pid
        is looked at only where it means the same process: this host, this boot, this pid
        namespace (two containers may share a hostname, not their processes)."""
        if self.host == here() and not _alive(self.pid):
            return f"its process {self.pid} is no longer running"
        if now - self.heartbeat_at > stale_after:
            return f"it has not renewed its lease for {now - self.heartbeat_at}"
        return None

    def describe(self, now: datetime) -> str:
        since = self.acquired_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        seen = int((now - self.heartbeat_at).total_seconds())
        return (
            f"`headwater {self.command}` (process {self.pid} on {self.host.split(PLACE)[0]}, "
            f"started {since}, "
            f"last heard from {seen} s ago)"
        )


class Busy(HeadwaterError):
    """Another run holds the project's lease."""

    retryable = True
    exit_code = 75

    def __init__(self, holder: Holder, now: datetime):
        super().__init__(
            f"another run holds this project: {holder.describe(now)}",
            hint="wait for it to finish (or stop it); a run that was killed is taken over "
            "automatically once its process is gone",
        )
        self.holder = holder


class LeaseStore(CatalogBase):
    """The lease that lets one run of a project at a time."""

    def acquire_lease(self, name: str, *, command: str) -> tuple[str, str | None]:
        """Take the lease `name`: (its token, why a previous holder's lease was taken over).

        Raises:
            Busy: a live holder has it.
        """
        now = utcnow()
        token = uuid.uuid4().hex
        mine = {
            "token": token,
            "host": here(),
            "pid": os.getpid(),
            "command": command[:200],
            "acquired_at": now,
            "heartbeat_at": now,
        }
        for _ in range(3):  # a race with another taker: read again and decide again
            holder = self.lease_holder(name)
            try:
                with self._tx() as conn:
                    if holder is None:
                        conn.execute(leases.insert().values(name=name, **mine))
                        return token, None
                    why = holder.gone(now)
                    if why is None:
                        raise Busy(holder, now)
                    swapped = conn.execute(
                        leases.update()
                        .where(leases.c.name == name, leases.c.token == holder.token)
                        .values(**mine)
                    )
                    if swapped.rowcount == 1:
                        return token, f"took over from {holder.describe(now)}: {why}"
            except sa.exc.IntegrityError:
                continue
        holder = self.lease_holder(name)
        if holder is None:  # pragma: no cover - three lost races in a row, then released
            return self.acquire_lease(name, command=command)
        raise Busy(holder, now)

    def renew_lease(self, name: str, token: str) -> bool:
        """Renew the lease; False: it is no longer ours (taken over)."""
        with self._tx() as conn:
            done = conn.execute(
                leases.update()
                .where(leases.c.name == name, leases.c.token == token)
                .values(heartbeat_at=utcnow())
            )
        return done.rowcount == 1

    def release_lease(self, name: str, token: str) -> None:
        with self._tx() as conn:
            conn.execute(leases.delete().where(leases.c.name == name, leases.c.token == token))

    def lease_holder(self, name: str) -> Holder | None:
        with self.engine.connect() as conn:
            row = conn.execute(leases.select().where(leases.c.name == name)).first()
        if row is None:
            return None
        m = row._mapping
        return Holder(
            m["token"], m["host"], m["pid"], m["command"], m["acquired_at"], m["heartbeat_at"]
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return _zombie(pid) is False


def _zombie(pid: int) -> bool:
    """Whether `pid` has exited and waits for its parent to reap it (Linux; False elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
