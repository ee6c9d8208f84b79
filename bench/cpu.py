"""The CPU a server spent per request during a load run, by thread, and how busy its core was.

Requests per second move with the machine's speed from moment to moment; CPU per request says
where a request's cost went (the Python thread, granian's I/O threads, the event writer) and a
core that is not fully busy says the server waited (for a commit, say) rather than worked. Read
from ``/proc`` (Linux); elsewhere a usage is None.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Sample:
    #: CPU seconds (user + system) by thread name, summed over the server's processes.
    threads: dict[str, float]
    #: (all, idle) jiffies of each core, by core number.
    cores: dict[int, tuple[int, int]]


def stat_fields(stat: str) -> list[str]:
    """The fields after the name in a ``/proc/*/stat`` line (a name may hold spaces and ")")."""
    return stat[stat.rindex(")") + 2 :].split()


def sample(pids: list[int]) -> Sample | None:
    """The threads of ``pids`` and the machine's cores now; None without ``/proc``."""
    if not Path("/proc/stat").exists():
        return None
    threads: dict[str, float] = {}
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue  # gone since it was listed
        for tid in tids:
            try:
                stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            except OSError:
                continue
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat_fields(stat)
            # utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
            seconds = (int(fields[11]) + int(fields[12])) / _TICK
            threads[name] = threads.get(name, 0.0) + seconds
    cores: dict[int, tuple[int, int]] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        label, *values = line.split()
        if label.startswith("cpu") and label != "cpu":
            jiffies = [int(v) for v in values]
            cores[int(label[3:])] = (sum(jiffies), jiffies[3] + jiffies[4])  # idle + iowait
    return Sample(threads, cores)


@dataclass(frozen=True)
class Usage:
    #: CPU microseconds per request, all of the server's threads.
    us_per_request: float
    #: The same by thread name ("python", "tokio-rt-worker", ...), largest first.
    by_thread: dict[str, float]
    #: The busy share of each core over the run.
    core_busy: dict[int, float]

    def as_dict(self) -> dict[str, object]:
        return {
            "us_per_request": round(self.us_per_request, 1),
            "by_thread": {name: round(us, 1) for name, us in self.by_thread.items()},
            "core_busy": {str(core): round(busy, 3) for core, busy in self.core_busy.items()},
        }


def usage(before: Sample | None, after: Sample | None, requests: int) -> Usage | None:
    """What the server used between two samples, per request; threads that ended between the
    samples are not counted (a server's threads live as long as it does)."""
    if before is None or after is None or requests <= 0:
        return None
    spent = {
        name: seconds - before.threads.get(name, 0.0) for name, seconds in after.threads.items()
    }
    by_thread = {
        name: seconds * 1e6 / requests
        for name, seconds in sorted(spent.items(), key=lambda item: -item[1])
        if seconds > 0
    }
    core_busy = {}
    for core, (total, idle) in after.cores.items():
        was_total, was_idle = before.cores.get(core, (total, idle))
        if total > was_total:
            core_busy[core] = 1 - (idle - was_idle) / (total - was_total)
    return Usage(sum(by_thread.values()), by_thread, core_busy)
