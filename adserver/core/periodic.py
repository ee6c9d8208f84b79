"""A background thread that calls a function every few seconds until stopped.

Used instead of asyncio tasks wrapping ``to_thread`` so that stopping waits for a run in
progress: nothing touches the database after the lifespan has disposed of the engine.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, interval: float, work: Callable[[], object]) -> None:
        self._interval = interval
        self._work = work
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"adserver-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop after the run in progress, if any, and wait for it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._work()
            except Exception:
                log.exception(
                    "%s failed; trying again in %.1f s", self._thread.name, self._interval
                )
