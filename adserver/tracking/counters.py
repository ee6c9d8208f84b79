"""Requests and served counts, kept in memory and flushed every few seconds.

These say how often a slot asked and how often it got a creative (fill rate). They are not
billing data: a crash loses at most one flush interval of them, which is why they are not
written per request. Billable figures come only from recorded events.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable

from sqlalchemy import Engine

from adserver.core.handoff import drain
from adserver.reporting.hourly import TALLIED, add_counts

log = logging.getLogger(__name__)

#: (hour, site_id, slot_id, campaign_id, creative_id)
Key = tuple[int, int, int, int, int]
#: The tally's counters, which a flush adds 0 to.
_TALLIED_ZEROS = (0,) * len(TALLIED)
#: (hour, site_id, slot_id, campaign_id, creative_id): one slot that asked; the campaign and
#: creative are None when it got nothing.
Asked = tuple[int, int, int, int | None, int | None]


class DeliveryCounters:
    def __init__(
        self, engine: Engine, *, observer: Callable[[int, int], None] | None = None
    ) -> None:
        self._engine = engine
        #: Told (filled, empty) slot decisions at each flush: the metrics, off the request path.
        self._observer = observer
        #: One (hour, site, slot, campaign, creative) per slot asked; no creative: None, None.
        #: Appended by requests, drained by the flush (``core.handoff``).
        self._pending: deque[Asked] = deque()
        #: Sums a failed flush keeps for the next one; only ``flush`` touches them.
        self._requests: Counter[Key] = Counter()
        self._served: Counter[Key] = Counter()
        self._flushing = threading.Lock()

    def count(self, slots: Iterable[Asked]) -> None:
        """The slots of one request, each with what it got: appended as they are, for
        ``flush`` to sum off the request path. Keys are tuples of numbers, which the garbage
        collector stops tracking, so they do not bring on full collections."""
        self._pending.extend(slots)

    def fold(self) -> None:
        """Sum what requests appended into the figures the next flush writes. Run often (every
        half second while serving), so that few keys wait: each fold holds the GIL briefly, and
        the collector has few of them to walk."""
        with self._flushing:
            self._fold()

    def _fold(self) -> None:
        pending = drain(self._pending)
        requests, served = self._requests, self._served
        asked = filled = 0
        # Counted in C first, then each distinct key once.
        for (hour, site_id, slot_id, campaign_id, creative_id), n in Counter(pending).items():
            asked += n
            requests[(hour, site_id, slot_id, 0, 0)] += n
            if campaign_id is not None and creative_id is not None:
                filled += n
                served[(hour, site_id, slot_id, campaign_id, creative_id)] += n
        if self._observer is not None and asked:
            self._observer(filled, asked - filled)

    def flush(self) -> None:
        """Write what has been counted; on failure keep it for the next flush."""
        with self._flushing:
            self._fold()
            requests, served = self._requests, self._served
            rows = [(*key, n, 0, *_TALLIED_ZEROS) for key, n in requests.items()]
            rows += [(*key, 0, n, *_TALLIED_ZEROS) for key, n in served.items()]
            if not rows:
                return
            try:
                with self._engine.begin() as connection:
                    add_counts(connection, rows)
            except Exception:
                log.exception("could not write delivery counters; keeping them for the next flush")
                return
            self._requests, self._served = Counter(), Counter()
