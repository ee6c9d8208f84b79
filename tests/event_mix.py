"""A known mix of events, sent from several OS processes, and the totals it must add up to.

Each process sends, through its own ``EventWriter`` (threads calling ``record_blocking``), one
scripted pattern per decision, plus an impression for every shared decision (which all processes
send: one counts, the others are duplicates). Halfway it stops until the parent says go, so the
parent can tally while the second half is still being inserted.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adserver.core.db import make_engine
from adserver.tracking.events import EventRecord
from adserver.tracking.writer import EventWriter
from tests.records import event

#: (kind, reason preset at the edge, reason expected once stored) per decision, by pattern.
PATTERNS: tuple[tuple[tuple[str, str | None, str], ...], ...] = (
    (("imp", None, "valid"), ("view", None, "valid"), ("click", None, "valid")),
    (
        ("imp", None, "valid"),
        ("imp", None, "duplicate"),
        ("view", None, "valid"),
        ("view", None, "duplicate"),
    ),
    (("imp", "bot", "bot"), ("click", None, "no-impression")),
    (("imp", "forged", "forged"),),
    (("imp", "expired", "expired"), ("view", "expired", "expired")),
    (("click", None, "no-impression"), ("imp", None, "valid"), ("click", None, "valid")),
)


@dataclass(frozen=True)
class Mix:
    processes: int
    threads: int
    decisions: int  # per thread
    shared: int  # decisions every process sends an impression for
    at: int
    hour: int
    ids: tuple[int, int, int, int]  # site, slot, campaign, creative

    def pattern(self, decision: int) -> tuple[tuple[str, str | None, str], ...]:
        return PATTERNS[decision % len(PATTERNS)]

    def expected(self) -> Counter[tuple[str, str]]:
        """(kind, reason or "valid") -> how many events the mix must leave in the statistics."""
        totals: Counter[tuple[str, str]] = Counter()
        for _ in range(self.processes * self.threads):
            for decision in range(self.decisions):
                for kind, _preset, outcome in self.pattern(decision):
                    totals[(kind, outcome)] += 1
        totals[("imp", "valid")] += self.shared
        totals[("imp", "duplicate")] += self.shared * (self.processes - 1)
        return totals

    def sent(self) -> int:
        return sum(self.expected().values())

    def record(self, decision_id: str, kind: str, reason: str | None) -> EventRecord:
        if reason == "forged":
            return event("", kind, reason, ids=(0, 0, 0, 0), at=self.at, hour=self.hour)
        return event(decision_id, kind, reason, ids=self.ids, at=self.at, hour=self.hour)


def send(mix: Mix, process: int, url: str, spool_dir: Path, halfway: Any, go: Any) -> None:
    """One sending process (the target of a spawned ``multiprocessing.Process``)."""
    engine = make_engine(url)
    writer = EventWriter(engine, spool_dir=spool_dir)
    writer.start()
    barrier = threading.Barrier(mix.threads, action=lambda: (halfway.set(), go.wait(120)))
    failures: list[BaseException] = []

    def thread(number: int) -> None:
        try:
            for decision in range(mix.decisions):
                if decision == mix.decisions // 2:
                    barrier.wait()
                decision_id = f"p{process}t{number}d{decision}"
                for kind, preset, _outcome in mix.pattern(decision):
                    writer.record_blocking(mix.record(decision_id, kind, preset))
        except BaseException as exc:
            failures.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=thread, args=(n,)) for n in range(mix.threads)]
    for t in threads:
        t.start()
    for shared in range(mix.shared):
        writer.record_blocking(mix.record(f"shared{shared}", "imp", None))
    for t in threads:
        t.join()
    writer.stop()
    engine.dispose()
    if failures:
        raise failures[0]
