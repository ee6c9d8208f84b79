"""Event intake: classify each impression, view and click, then record it by group commit.

One writer thread per process takes events from a queue and commits them in groups (up to
``max_events`` or ``max_wait`` seconds, whichever first). A request is answered only after its
group committed, so an acknowledged event survives ``kill -9``. When the database cannot be
reached, the group is appended to a local spool file (fsynced) instead and replayed when the
database is back: acknowledged still means durable.

Validity: the request handler marks what it can see (bot, prefetch, expired, forged); the writer
decides ``duplicate`` (a unique index on ``decision:kind``, no read-then-write) and
``no-impression`` (a view or click whose decision has no counted impression).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from adserver.models import Event, table

log = logging.getLogger(__name__)

EVENTS = table(Event)
INVALID_REASONS = ("bot", "duplicate", "expired", "forged", "no-impression", "prefetch")


@dataclass(slots=True)
class EventRecord:
    """One event as it will be stored; ``reason`` None means it may still count."""

    id: str
    decision_id: str
    kind: str
    at: int
    hour: int
    site_id: int
    slot_id: int
    campaign_id: int
    creative_id: int
    reason: str | None

    @classmethod
    def new(cls, **fields: Any) -> EventRecord:
        return cls(id=secrets.token_urlsafe(16), **fields)

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (``dataclasses.asdict`` deep-copies: ten times slower)."""
        return {name: getattr(self, name) for name in _RECORD_FIELDS}


_RECORD_FIELDS = tuple(f.name for f in fields(EventRecord))


@dataclass(slots=True)
class _Pending:
    record: EventRecord
    done: Callable[[BaseException | None], None]


class WriterStopped(RuntimeError):
    pass


class EventWriter:
    """The per-process writer thread; ``record`` returns once the event is durable."""

    def __init__(
        self,
        engine: Engine,
        *,
        spool_dir: Path,
        max_events: int = 500,
        max_wait: float = 0.002,
        observer: Callable[[int, float], None] | None = None,
    ) -> None:
        self._engine = engine
        self._insert = _dialect_insert(engine)
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._max_events = max_events
        self._max_wait = max_wait
        self._observer = observer
        self._spool = Spool(spool_dir)
        self._thread = threading.Thread(target=self._run, name="adserver-events", daemon=True)
        self._stopping = False
        self.database_ok = True

    @property
    def spool_depth(self) -> int:
        """Events waiting in the spool folder: ours, and any a dead process left behind."""
        return self._spool.depth() + self._spool.others_depth()

    def start(self) -> None:
        self._spool.open()
        self._thread.start()

    def stop(self) -> None:
        """Commit what is queued, then stop the thread."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._spool.close()

    async def record(self, record: EventRecord) -> None:
        """Queue ``record`` and wait until it is committed or spooled."""
        if self._stopping:
            raise WriterStopped("the event writer is shutting down")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def done(error: BaseException | None) -> None:
            loop.call_soon_threadsafe(_settle, future, error)

        self._queue.put(_Pending(record, done))
        await future

    def record_blocking(self, record: EventRecord) -> None:
        """For threads with no event loop (tests, tools)."""
        finished = threading.Event()
        failure: list[BaseException] = []

        def done(error: BaseException | None) -> None:
            if error is not None:
                failure.append(error)
            finished.set()

        self._queue.put(_Pending(record, done))
        finished.wait()
        if failure:
            raise failure[0]

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=1.0)
            except queue.Empty:
                self._replay_spool()
                continue
            if first is None:
                self._stopping = True
                self._drain_and_exit()
                return
            batch = [first]
            stop_after = self._fill(batch)
            self._flush(batch)
            if stop_after:
                self._stopping = True
                self._drain_and_exit()
                return

    def _fill(self, batch: list[_Pending]) -> bool:
        """Add more events until the group is full or its time is up; True if told to stop."""
        deadline = time.monotonic() + self._max_wait
        while len(batch) < self._max_events:
            remaining = deadline - time.monotonic()
            try:
                item = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                return False
            if item is None:
                return True
            batch.append(item)
        return False

    def _drain_and_exit(self) -> None:
        rest: list[_Pending] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                rest.append(item)
        for start in range(0, len(rest), self._max_events):
            self._flush(rest[start : start + self._max_events])

    def _flush(self, batch: list[_Pending]) -> None:
        started = time.monotonic()
        records = [p.record for p in batch]
        error: BaseException | None = None
        try:
            if self._spool.depth():
                self._replay_spool()
            with self._engine.begin() as connection:
                store(connection, self._insert, records)
            self.database_ok = True
        except DBAPIError as exc:
            log.warning("database unavailable, spooling %d events: %s", len(records), exc)
            self.database_ok = False
            try:
                self._spool.append(records)
            except OSError as spool_error:
                error = spool_error
        except Exception as exc:  # answer every waiter, never leave one hanging
            log.exception("event group failed")
            error = exc
        for pending in batch:
            pending.done(error)
        if self._observer is not None and error is None:
            self._observer(len(batch), time.monotonic() - started)

    def _replay_spool(self) -> None:
        if not self._spool.depth() and not self._spool.orphans():
            return
        try:
            self._spool.replay(self._replay_records)
            self.database_ok = True
        except DBAPIError as exc:
            self.database_ok = False
            log.info("spool replay deferred, database still unavailable: %s", exc)
        except Exception:  # the writer thread must outlive any replay failure
            log.exception("spool replay failed; it will be tried again")

    def _replay_records(self, records: list[EventRecord]) -> None:
        # In groups no bigger than a flush: a long outage spools more events than one statement
        # may carry parameters (65,535 on PostgreSQL), and such a replay would never succeed.
        with self._engine.begin() as connection:
            for start in range(0, len(records), self._max_events):
                group = records[start : start + self._max_events]
                present = set(
                    connection.scalars(
                        select(EVENTS.c.id).where(EVENTS.c.id.in_([r.id for r in group]))
                    )
                )
                store(connection, self._insert, [r for r in group if r.id not in present])


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _dialect_insert(engine: Engine) -> Any:
    return postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert


def store(connection: Connection, dialect_insert: Any, records: list[EventRecord]) -> None:
    """Insert one group of events, deciding duplicates and missing impressions on the way."""
    if not records:
        return
    rows: list[dict[str, Any]] = []
    candidates: list[dict[str, Any]] = []
    for record in records:
        row = record.as_dict()
        reason = row.pop("reason")
        row.update(valid=reason is None, reason=reason, dedup_key=None)
        if reason is None:
            row["dedup_key"] = f"{record.decision_id}:{record.kind}"
            candidates.append(row)
        else:
            rows.append(row)
    _mark_missing_impressions(connection, candidates)
    seen: set[str] = set()
    fresh: list[dict[str, Any]] = []
    for row in candidates:
        if not row["valid"]:
            rows.append(row)
        elif row["dedup_key"] in seen:
            _invalidate(row, "duplicate")
            rows.append(row)
        else:
            seen.add(row["dedup_key"])
            fresh.append(row)
    if fresh:
        # One statement executed for all rows: SQLAlchemy compiles it once and batches the rows
        # into multi-row INSERTs itself ("insertmanyvalues"), where .values(fresh) would compile
        # a new statement for every group, about half a millisecond per event.
        inserted = set(
            connection.scalars(
                dialect_insert(Event)
                .on_conflict_do_nothing(index_elements=["dedup_key"])
                .returning(EVENTS.c.dedup_key),
                fresh,
            )
        )
        for row in fresh:
            if row["dedup_key"] not in inserted:
                _invalidate(row, "duplicate")
                rows.append(row)
    if rows:
        connection.execute(insert(Event), rows)


def _mark_missing_impressions(connection: Connection, candidates: list[dict[str, Any]]) -> None:
    """A view or click counts only if its decision's impression counted (here or earlier)."""
    wanted = {f"{row['decision_id']}:imp" for row in candidates if row["kind"] != "imp"}
    if not wanted:
        return
    in_group = {row["dedup_key"] for row in candidates if row["kind"] == "imp"}
    missing = wanted - in_group
    if missing:
        found = set(
            connection.scalars(
                select(EVENTS.c.dedup_key).where(EVENTS.c.dedup_key.in_(sorted(missing)))
            )
        )
        missing -= found
    for row in candidates:
        if row["kind"] != "imp" and f"{row['decision_id']}:imp" in missing:
            _invalidate(row, "no-impression")


def _invalidate(row: dict[str, Any], reason: str) -> None:
    row.update(valid=False, reason=reason, dedup_key=None)


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
