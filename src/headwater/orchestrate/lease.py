"""One run of a project at a time: a run holds the catalog's lease `run` while it works,
renewing it from a background thread, and gives it back when it ends however it ends.

A second run finds the lease held and stops at once with who holds it (`Busy`, exit 75);
the lease of a run killed with SIGKILL is taken over by the next run as soon as its process
is gone (same host) or its heartbeat has stopped for `STALE_AFTER` (another host).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from headwater.errors import HeadwaterError
from headwater.zones.catalog import Catalog

RUN = "run"
HEARTBEAT_S = 30.0


@dataclass
class Lease:
    """A lease held: `took_over` says whose stale lease it replaced; `lost` turns true if
    another run took it over meanwhile (this one had stopped renewing it for too long)."""

    token: str
    took_over: str | None
    lost: bool = False


class LeaseLost(HeadwaterError):
    """Another run took over this run's lease: it must not land or publish any more."""


@contextmanager
def held(catalog: Catalog, command: str, *, every: float = HEARTBEAT_S) -> Iterator[Lease]:
    """Hold the project's run lease for the block.

    Raises:
        Busy: another live run holds it.
    """
    token, took_over = catalog.acquire_lease(RUN, command=command)
    lease = Lease(token, took_over)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            try:
                if not catalog.renew_lease(RUN, token):
                    lease.lost = True
                    return
            except Exception:  # a catalog hiccup (busy, reconnecting): the next beat tries again
                continue

    beating = threading.Thread(target=beat, name="hw-lease", daemon=True)
    beating.start()
    try:
        yield lease
    finally:
        stop.set()
        beating.join()
        with suppress(Exception):  # a lease left behind is taken over: never mask an error
            catalog.release_lease(RUN, token)
