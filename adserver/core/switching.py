"""Short GIL switches while a request's work runs in a worker thread.

CPython hands the GIL from a running thread to a waiting one only after the switch interval,
5 ms by default. A management write in a worker thread gives the GIL up at each database
call; while decisions keep the event loop busy, it then waits the whole interval to get it
back, and a write's dozen calls took 50-120 ms. A short interval for the whole process would
also make the event writer and the loop trade the GIL ten times as often (SQLite impressions
measured 0.8x of the default in alternated runs, docs/performance.md), so the interval is
short only while such work is under way: a write or two a second, a few ms each.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: The switch interval while a request's work runs in a worker thread (seconds).
SHORT_S = 0.0005


class QuickSwitches:
    """Counts the requests whose work is in a worker thread; while there is one, the switch
    interval is ``SHORT_S``, and the process's own interval again after the last."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._normal = sys.getswitchinterval()

    @contextmanager
    def during(self) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                self._normal = sys.getswitchinterval()
                sys.setswitchinterval(min(SHORT_S, self._normal))
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    sys.setswitchinterval(self._normal)


#: One per process: the switch interval is the interpreter's.
quick_switches = QuickSwitches()
