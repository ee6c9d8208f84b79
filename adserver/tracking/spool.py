"""The spool: events the database could not take yet, kept durable on local disk."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import threading
import time
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
        self._since: float | None = None  # when the oldest event in our spool was added

    def open(self) -> None:
        """Take our spool file. A folder that cannot be written is logged, not fatal: the
        server still serves, ``append`` fails and the events are answered 503."""
        try:
            self._take_file()
        except OSError as exc:
            log.error("the spool %s cannot be opened: %s", self._path, exc)

    def _take_file(self) -> None:
        """Open and lock our spool file, or raise the OSError that says why not (the folder
        missing, not writable, on a full disk), which then reaches the health details."""
        self._directory.mkdir(parents=True, exist_ok=True)
        # Unbuffered: a failed write leaves nothing behind in a buffer to be flushed later.
        handle = open(self._path, "a+b", buffering=0)  # noqa: SIM115  (process's life)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise
        self._file = handle

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

    def age(self, now: float) -> float | None:
        """Seconds the oldest spooled event has waited: ours, or a dead process's file's."""
        oldest = [self._since] if self._since is not None else []
        for path in self.orphans():
            try:
                oldest.append(path.stat().st_mtime)
            except FileNotFoundError:
                continue
        return max(0.0, now - min(oldest)) if oldest else None

    def writable(self) -> bool:
        """Whether an append would likely succeed now: the file is open and its file system is
        neither read-only nor full (what a health check asks before any event fails)."""
        if self._file is None:
            return False
        try:
            stats = os.fstatvfs(self._file.fileno())
        except OSError:
            return False
        return not stats.f_flag & os.ST_RDONLY and stats.f_bavail * stats.f_frsize >= 65536

    def append(self, records: Iterable[EventRecord]) -> None:
        """Append ``records`` durably, or raise OSError having added nothing: a write cut short
        by a full disk is cut back off, so the file never holds half a line that the next
        append would run into."""
        data = b"".join(json.dumps(r.as_dict()).encode() + b"\n" for r in records)
        with self._lock:
            if self._file is None:
                self._take_file()
            fd = self._file.fileno()
            size = os.fstat(fd).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                    os.fsync(fd)
                raise
            if self._since is None:
                self._since = time.time()
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
                os.fsync(self._file.fileno())
                self._depth = 0
                self._since = None
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
