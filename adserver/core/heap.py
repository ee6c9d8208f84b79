"""What lives as long as the serving process, kept out of the cycle collector's sight.

A collection traverses every object in the generations it collects and holds the GIL while it
does, a pause every request in flight feels. A full inventory snapshot is tens of thousands of
such objects (about 72,000 with 10,000 campaigns) and lives until the next rebuild: left in
the collector's generations, the first collection of the older generation after each rebuild
took 26-47 ms of the event loop's time. ``gc.freeze`` moves every object the collector tracks
to a permanent generation it never traverses; reference counting still frees them.

A snapshot holds no reference cycles (``tests/test_heap.py`` holds it), so the snapshot a
rebuild replaces is freed at once even though it was frozen. What freezing costs is cyclic
garbage: a cycle frozen while alive (or frozen as garbage not yet collected) is never
collected while frozen. So the frozen count is watched: when it has grown by more than
``RECLAIM_GROWTH`` since the last full collection, everything is unfrozen, collected and
frozen again (one pause of about a full collection, 100 ms with 10,000 campaigns), as
CPython's own collector waits for its oldest generation to grow by a quarter.
"""

from __future__ import annotations

import gc
import threading

#: A full collection runs when the frozen objects have grown by this share since the last one.
RECLAIM_GROWTH = 0.25


class LongLived:
    """Freezes what the process keeps: after start-up (``settle_all``) and after each full
    snapshot is published (``settle``); ``release`` gives everything back to the collector."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: Frozen objects right after the last full collection.
        self._baseline = 0
        #: Full collections and freezes without one so far.
        self.reclaims = 0
        self.freezes = 0

    def settle_all(self) -> None:
        """Collect everything (frozen objects included), then freeze what survived."""
        with self._lock:
            self._reclaim()

    def settle(self) -> None:
        """Freeze what the process holds now, without a collection; when the frozen objects
        have then grown past ``RECLAIM_GROWTH`` since the last full collection, collect
        everything and freeze what survived."""
        with self._lock:
            gc.freeze()
            if gc.get_freeze_count() > self._baseline * (1 + RECLAIM_GROWTH):
                self._reclaim()
            else:
                self.freezes += 1

    def release(self) -> None:
        """Give every frozen object back to the collector."""
        with self._lock:
            gc.unfreeze()
            self._baseline = 0

    def _reclaim(self) -> None:
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self._baseline = gc.get_freeze_count()
        self.reclaims += 1


#: One per process: the collector's generations are the interpreter's.
long_lived = LongLived()
