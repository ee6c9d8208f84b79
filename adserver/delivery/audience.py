"""What forecasts scale by targeting: requests per slot and site-local day by device class and
country, and a small sample of page paths and keywords per slot.

Kept as the delivery counters are: a request appends one tuple (no work on the request path
beyond that), and a flush every few seconds sums them into ``audience_day`` and refreshes each
slot's sample (a reservoir of ``SAMPLE_SIZE`` pages, from one request in ``SAMPLE_EVERY``).
Nothing is kept about a single reader: no address, no user agent, no time finer than a day.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable
from datetime import datetime
from operator import itemgetter
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from adserver.core.db import insert_for
from adserver.core.handoff import drain
from adserver.core.models import AudienceDay, AudienceSample, table

log = logging.getLogger(__name__)

#: Pages kept per slot for path and keyword targeting.
SAMPLE_SIZE = 200
#: One request in this many is offered to the sample: a sample needs no more (at a hundred
#: requests a second a site's slots fill theirs in about two minutes), and the flush then holds
#: the GIL for a few milliseconds where one in 16 kept it for tens.
SAMPLE_EVERY = 64
#: The periodic flush writes the samples one time in this many (once a minute at 5 s).
SAMPLE_WRITE_EVERY = 12
#: (local day, site id, slot id, device, country)
DayKey = tuple[str, int, int, str, str]
#: What a request records: (hour bucket, site id, slot ids, device, country, path, keywords).
Seen = tuple[int, int, tuple[int, ...], str, str, str, frozenset[str]]
#: A request's key for ``audience_day``: its first five fields.
_COUNTED = itemgetter(0, 1, 2, 3, 4)


class Audience:
    def __init__(
        self, engine: Engine, zone_of: Callable[[int], ZoneInfo], rng: random.Random | None = None
    ) -> None:
        self._engine = engine
        self._zone_of = zone_of
        self._rng = rng or random.Random()
        self._flushing = threading.Lock()
        #: One per request, appended on the request path and drained by the flush
        #: (``core.handoff``); every ``SAMPLE_EVERY``-th is offered to the sample there.
        self._pending: deque[Seen] = deque()
        #: Requests drained so far, which says where the next sampled one falls.
        self._requests = 0
        #: Sums a failed flush keeps for the next one.
        self._days: Counter[DayKey] = Counter()
        self._samples: dict[tuple[int, int], list[list[object]]] = {}
        #: Slots whose sample changed since it was last written.
        self._touched: set[tuple[int, int]] = set()
        self._ticks = 0
        self._seen: Counter[tuple[int, int]] = Counter()

    def record(
        self,
        hour: int,
        site_id: int,
        slot_ids: tuple[int, ...],
        device: str | None,
        country: str | None,
        path: str,
        keywords: frozenset[str],
    ) -> None:
        """One request of a page (its slots), as the decide handler saw it: one append."""
        self._pending.append((hour, site_id, slot_ids, device or "", country or "", path, keywords))

    def tick(self) -> None:
        """The periodic flush: the counts every time, the samples every ``SAMPLE_WRITE_EVERY``-th
        (a sample is 200 pages per slot: written every few seconds, it held the GIL for tens of
        milliseconds each time, a stall every decide in flight felt)."""
        self._ticks += 1
        self.flush(samples=not self._ticks % SAMPLE_WRITE_EVERY)

    def fold(self) -> None:
        """Count what requests recorded and offer the sample its share, in memory, for the next
        flush to write. Run often (every half second while serving), so that few records wait:
        each fold holds the GIL briefly, and the collector has few of them to walk."""
        with self._flushing:
            self._fold()

    def _fold(self) -> None:
        pending = drain(self._pending)
        # The requests numbered SAMPLE_EVERY, 2 * SAMPLE_EVERY ... since the process began.
        first = (SAMPLE_EVERY - 1 - self._requests) % SAMPLE_EVERY
        self._requests += len(pending)
        self._count(map(_COUNTED, pending))
        self._touched |= self._sample(pending[first::SAMPLE_EVERY])

    def flush(self, *, samples: bool = True) -> None:
        """Add what was recorded to ``audience_day``, and with ``samples`` write the samples
        that changed since they were last written."""
        with self._flushing:
            self._fold()
            touched = self._touched if samples else set()
            if not self._days and not touched:
                return
            rows = [
                {"day": d, "site_id": s, "slot_id": sl, "device": dv, "country": c, "requests": n}
                for (d, s, sl, dv, c), n in self._days.items()
            ]
            sample_rows = [
                {"site_id": site, "slot_id": slot, "samples": self._samples[(site, slot)]}
                for site, slot in touched
            ]
            try:
                with self._engine.begin() as connection:
                    insert = insert_for(connection)
                    if rows:
                        days = table(AudienceDay)
                        statement = insert(days)
                        connection.execute(
                            statement.on_conflict_do_update(
                                index_elements=["day", "site_id", "slot_id", "device", "country"],
                                set_={"requests": days.c.requests + statement.excluded.requests},
                            ),
                            rows,
                        )
                    if sample_rows:
                        statement = insert(table(AudienceSample))
                        connection.execute(
                            statement.on_conflict_do_update(
                                index_elements=["site_id", "slot_id"],
                                set_={"samples": statement.excluded.samples},
                            ),
                            sample_rows,
                        )
                self._days.clear()
                if samples:
                    self._touched = set()
            except Exception:
                log.exception("could not write audience figures; keeping them for the next flush")

    def _count(self, pending: Iterable[tuple[int, int, tuple[int, ...], str, str]]) -> None:
        days: dict[tuple[int, int], str] = {}
        # Counted in C first: a page's readers send the same few keys over and over.
        for (hour, site_id, slot_ids, device, country), n in Counter(pending).items():
            day = days.get((hour, site_id))
            if day is None:
                day = datetime.fromtimestamp(hour, self._zone_of(site_id)).date().isoformat()
                days[(hour, site_id)] = day
            for slot_id in slot_ids:
                self._days[(day, site_id, slot_id, device, country)] += n

    def _sample(self, pages: Iterable[Seen]) -> set[tuple[int, int]]:
        """A reservoir of ``SAMPLE_SIZE`` pages per slot (of what this process has seen)."""
        touched: set[tuple[int, int]] = set()
        for _, site_id, slot_ids, _, _, path, keywords in pages:
            page: list[object] = [path, sorted(keywords)]
            for slot_id in slot_ids:
                key = (site_id, slot_id)
                self._seen[key] += 1
                sample = self._samples.setdefault(key, [])
                if len(sample) < SAMPLE_SIZE:
                    sample.append(page)
                else:
                    kept = self._rng.randrange(self._seen[key])
                    if kept < SAMPLE_SIZE:
                        sample[kept] = page
                touched.add(key)
        return touched
