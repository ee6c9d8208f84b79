"""The event writer on its own: how a group is stored and how its waiters are answered."""

from __future__ import annotations

import asyncio
import concurrent.futures
import fcntl
import multiprocessing
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from adserver.core.db import make_engine
from adserver.tracking.events import EventRecord, new_event_id, store
from adserver.tracking.writer import EventWriter, WriterStopped
from tests.records import event


def stored(engine: Engine) -> dict[str, tuple[bool, str | None, str | None]]:
    """Each stored event by id: (valid, reason, dedup key)."""
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, valid, reason, dedup_key FROM event"))
        return {row.id: (bool(row.valid), row.reason, row.dedup_key) for row in rows}


def store_group(engine: Engine, records: list[EventRecord]) -> None:
    with engine.begin() as connection:
        store(connection, records)


def test_a_group_decides_duplicates_and_missing_impressions(engine: Engine) -> None:
    earlier = event("a")
    store_group(engine, [earlier, event("b", "view")])
    group = {
        "again": event("a"),  # counted in an earlier group: the unique key refuses it
        "view_after_earlier_imp": event("a", "view"),
        "imp": event("c"),
        "same_imp": event("c"),  # a second one in the same group
        "view_with_imp_in_group": event("c", "view"),
        "click_without_imp": event("d", "click"),
        "bot": event("e", reason="bot"),
        "bot_again": event("e", reason="bot"),
    }
    store_group(engine, list(group.values()))
    rows = stored(engine)
    assert len(rows) == 2 + len(group)
    assert rows[earlier.id] == (True, None, "a:imp")
    got = {name: rows[record.id] for name, record in group.items()}
    assert got == {
        "again": (False, "duplicate", None),
        "view_after_earlier_imp": (True, None, "a:view"),
        "imp": (True, None, "c:imp"),
        "same_imp": (False, "duplicate", None),
        "view_with_imp_in_group": (True, None, "c:view"),
        "click_without_imp": (False, "no-impression", None),
        "bot": (False, "bot", None),
        "bot_again": (False, "bot", None),
    }


def test_a_group_of_only_refused_events_is_stored_as_duplicates(engine: Engine) -> None:
    first = [event(f"x{n}") for n in range(5)]
    store_group(engine, first)
    again = [event(f"x{n}") for n in range(5)]
    store_group(engine, again)
    rows = stored(engine)
    assert [rows[r.id] for r in again] == [(False, "duplicate", None)] * 5
    assert [rows[r.id][0] for r in first] == [True] * 5


def counting_wakeups(loop: asyncio.AbstractEventLoop) -> list[int]:
    """Count the writer's cross-thread calls into ``loop``."""
    calls: list[int] = []
    original: Callable[..., Any] = loop.call_soon_threadsafe

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
    return calls


def test_each_group_wakes_the_event_loop_once(engine: Engine, tmp_path: Path) -> None:
    groups: list[int] = []
    writer = EventWriter(
        engine,
        spool_dir=tmp_path,
        max_events=50,
        max_wait=0.05,
        observer=lambda size, seconds: groups.append(size),
    )
    writer.start()
    records = [event(secrets.token_urlsafe(12)) for _ in range(200)]

    async def send_all() -> int:
        wakeups = counting_wakeups(asyncio.get_running_loop())
        await asyncio.gather(*(writer.record(r) for r in records))
        return len(wakeups)

    try:
        wakeups = asyncio.run(send_all())
    finally:
        writer.stop()
    assert sum(groups) == len(records)
    assert max(groups) <= 50
    assert wakeups == len(groups) < len(records)
    assert all(valid for valid, _, _ in stored(engine).values())


def test_a_group_is_what_arrived_while_the_last_one_committed(
    engine: Engine, tmp_path: Path
) -> None:
    groups: list[int] = []
    first_done, go_on = threading.Event(), threading.Event()

    def observe(size: int, seconds: float) -> None:
        groups.append(size)
        if len(groups) == 1:  # hold the writer, as a slow commit would
            first_done.set()
            go_on.wait(10)

    writer = EventWriter(engine, spool_dir=tmp_path, observer=observe)
    writer.start()
    loop = asyncio.new_event_loop()
    try:
        first = loop.create_task(writer.record(event("alone")))
        loop.run_until_complete(asyncio.sleep(0))  # queued: the free writer takes it at once
        assert first_done.wait(10)
        later = [loop.create_task(writer.record(event(f"later{n}"))) for n in range(5)]
        loop.run_until_complete(asyncio.sleep(0))  # queued while the writer is busy
        go_on.set()
        loop.run_until_complete(asyncio.gather(first, *later))
    finally:
        go_on.set()
        writer.stop()
        loop.close()
    assert groups == [1, 5]
    assert len(stored(engine)) == 6


def test_writers_of_processes_sharing_a_sqlite_file_take_turns(
    sqlite_url: str, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    other = open(f"{engine.url.database}-events.lock", "ab")  # noqa: SIM115
    fcntl.flock(other, fcntl.LOCK_EX)  # another process's writer, in the middle of its commit
    writer = EventWriter(engine, spool_dir=tmp_path)
    writer.start()
    pool = concurrent.futures.ThreadPoolExecutor(1)
    record = event("waits")
    try:
        done = pool.submit(writer.record_blocking, record)
        with pytest.raises(concurrent.futures.TimeoutError):
            done.result(timeout=0.3)  # its turn has not come
        assert stored(engine) == {}
        fcntl.flock(other, fcntl.LOCK_UN)
        done.result(timeout=10)
        assert stored(engine)[record.id] == (True, None, "waits:imp")
    finally:
        fcntl.flock(other, fcntl.LOCK_UN)
        other.close()
        writer.stop()
        pool.shutdown()
        engine.dispose()


def test_stop_commits_what_waits_then_refuses_more(engine: Engine, tmp_path: Path) -> None:
    writer = EventWriter(engine, spool_dir=tmp_path, max_wait=0.5)
    writer.start()
    loop = asyncio.new_event_loop()
    try:
        waiting = [loop.create_task(writer.record(event(f"s{n}"))) for n in range(3)]
        loop.run_until_complete(asyncio.sleep(0))  # the three are queued
        writer.stop()
        loop.run_until_complete(asyncio.gather(*waiting))
        with pytest.raises(WriterStopped):
            loop.run_until_complete(writer.record(event("late")))
        with pytest.raises(WriterStopped):
            writer.record_blocking(event("late"))
    finally:
        loop.close()
    assert sorted(key for _, _, key in stored(engine).values()) == ["s0:imp", "s1:imp", "s2:imp"]


def test_record_blocking_waits_for_the_commit(engine: Engine, tmp_path: Path) -> None:
    writer = EventWriter(engine, spool_dir=tmp_path)
    writer.start()
    try:
        record = event("blocking")
        writer.record_blocking(record)
        assert stored(engine)[record.id] == (True, None, "blocking:imp")
    finally:
        writer.stop()


def send_event_id(out: multiprocessing.Queue[str]) -> None:
    out.put(new_event_id())


def test_forked_workers_draw_their_own_event_ids() -> None:
    """Server workers are forked from one parent: each must not continue the parent's ids."""
    context = multiprocessing.get_context("fork")
    out: multiprocessing.Queue[str] = context.Queue()
    children = [context.Process(target=send_event_id, args=(out,)) for _ in range(2)]
    for child in children:
        child.start()
    ids = {out.get(timeout=30) for _ in children}
    for child in children:
        child.join(timeout=30)
    assert len(ids) == 2
    assert new_event_id() not in ids
