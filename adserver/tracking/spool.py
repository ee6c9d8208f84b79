"""The spool: events the database could not take yet, kept durable on local disk."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from adserver.tracking.events import EventRecord

log = logging.getLogger(__name__)


class Spool:
    """An append-only file of events the database could not take yet, one JSON line each.

    Each process owns ``events-PID-RANDOM.spool`` under an exclusive lock; a spool whose lock is
    free was left by a process that died, and any writer adopts and replays it.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._path = directory / f"events-{os.getpid()}-{secrets.token_hex(4)}.spool"
        self._file: Any = None
        self._lock = threading.Lock()
        self._depth = 0

    def open(self) -> None:
        self._directory.mkdir(parents=True, exist_ok=True)
        self._file = open(self._path, "a+b")  # noqa: SIM115  (held for the process's life)
        fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def close(self) -> None:
        if self._file is None:
            return
        empty = self._depth == 0
        self._file.close()
        self._file = None
        if empty:
            self._path.unlink(missing_ok=True)

    def depth(self) -> int:
        return self._depth

    def append(self, records: Iterable[EventRecord]) -> None:
        data = b"".join(json.dumps(r.as_dict()).encode() + b"\n" for r in records)
        with self._lock:
            self._file.write(data)
            self._file.flush()
            os.fsync(self._file.fileno())
            self._depth += data.count(b"\n")

    def others_depth(self) -> int:
        """Events in other processes' spool files (a crashed one's, until it is adopted)."""
        depth = 0
        for path in self.orphans():
            try:
                depth += path.read_bytes().count(b"\n")
            except FileNotFoundError:
                continue  # adopted and removed meanwhile
        return depth

    def orphans(self) -> list[Path]:
        return [p for p in self._directory.glob("events-*.spool") if p != self._path]

    def replay(self, commit: Callable[[list[EventRecord]], None]) -> None:
        """Commit our own spool, then any a dead process left; raises if the database is down."""
        with self._lock:
            if self._depth:
                self._file.seek(0)
                commit(_parse(self._file.read()))
                self._file.truncate(0)
                self._file.flush()
                os.fsync(self._file.fileno())
                self._depth = 0
        for path in self.orphans():
            self._adopt(path, commit)

    def _adopt(self, path: Path, commit: Callable[[list[EventRecord]], None]) -> None:
        try:
            handle = open(path, "rb")  # noqa: SIM115
        except FileNotFoundError:
            return
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # its process is alive and will replay it itself
            records = _parse(handle.read())
            if records:
                commit(records)
            path.unlink(missing_ok=True)


def _parse(data: bytes) -> list[EventRecord]:
    """Spooled records; a torn last line (a crash mid-write, never acknowledged) is skipped."""
    records = []
    for line in data.splitlines():
        try:
            records.append(EventRecord(**json.loads(line)))
        except (ValueError, TypeError):
            log.warning("skipping a torn spool line")
    return records
