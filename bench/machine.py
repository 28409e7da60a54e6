"""What the benchmarks need to know about the machine: CPU used by everyone, by us, and
waiting until the others are idle (a 2-core machine shared with other jobs moves wall times)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def wait_idle(*, limit: float = 0.1, probe: float = 2, timeout: float = 600) -> None:
    """Wait (at most `timeout` s) until other processes use under `limit` of a CPU."""
    deadline = time.monotonic() + timeout
    told = False
    while time.monotonic() < deadline:
        busy, ours = machine_cpu(), our_cpu()
        time.sleep(probe)
        if ((machine_cpu() - busy) - (our_cpu() - ours)) / probe < limit:
            return
        if not told:
            print("    waiting for other processes to finish ...", flush=True)
            told = True


def machine_cpu() -> float:
    """CPU seconds every process of the machine has used (Linux /proc/stat; else 0)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq = map(int, fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def our_cpu() -> float:
    """CPU seconds of this process and of its finished children (the measured jobs)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system
