"""Specification of the delivery counters, ``adserver.counters``: requests and served per slot,
summed in memory and written to the hourly statistics by each flush."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import Engine, select

from adserver.core.db import make_engine, migrate
from adserver.core.models import HourlyStat, table
from adserver.tracking.counters import DeliveryCounters

HOUR = 1_796_083_200
STATS = table(HourlyStat)


def stats(engine: Engine) -> dict[tuple[int, int, int, int], tuple[int, int]]:
    """(site, slot, campaign, creative) -> (requests, served), every row of the hour."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                STATS.c.site_id,
                STATS.c.slot_id,
                STATS.c.campaign_id,
                STATS.c.creative_id,
                STATS.c.requests,
                STATS.c.served,
            ).where(STATS.c.hour == HOUR)
        )
        return {tuple(row[:4]): (row.requests, row.served) for row in rows}  # type: ignore[misc]


def test_a_flush_writes_requests_per_slot_and_served_per_creative(engine: Engine) -> None:
    counters = DeliveryCounters(engine)
    counters.count([(HOUR, 1, 10, 100, 1000), (HOUR, 1, 11, None, None)])
    counters.count([(HOUR, 1, 10, 100, 1000), (HOUR, 1, 11, 101, 1010)])
    counters.count([(HOUR, 2, 20, None, None)])
    counters.flush()
    assert stats(engine) == {
        (1, 10, 0, 0): (2, 0),
        (1, 10, 100, 1000): (0, 2),
        (1, 11, 0, 0): (2, 0),
        (1, 11, 101, 1010): (0, 1),
        (2, 20, 0, 0): (1, 0),
    }


def test_flushes_add_up(engine: Engine) -> None:
    counters = DeliveryCounters(engine)
    for _ in range(3):
        counters.count([(HOUR, 1, 10, 100, 1000)])
        counters.flush()
    counters.flush()  # nothing new: writes nothing
    assert stats(engine) == {(1, 10, 0, 0): (3, 0), (1, 10, 100, 1000): (0, 3)}


def test_counts_survive_a_failed_flush_and_are_written_by_the_next(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'later.db'}"
    engine = make_engine(url)  # no schema yet: the first flush fails
    counters = DeliveryCounters(engine)
    counters.count([(HOUR, 1, 10, 100, 1000)])
    counters.flush()
    counters.count([(HOUR, 1, 10, None, None)])
    migrate(url)
    counters.flush()
    assert stats(engine) == {(1, 10, 0, 0): (2, 0), (1, 10, 100, 1000): (0, 1)}
    engine.dispose()


def test_no_count_is_lost_while_threads_count_and_flush(engine: Engine) -> None:
    counters = DeliveryCounters(engine)
    per_thread = 2000
    counting = [
        threading.Thread(
            target=lambda: [counters.count([(HOUR, 1, 10, 100, 1000)]) for _ in range(per_thread)]
        )
        for _ in range(4)
    ]
    for thread in counting:
        thread.start()
    while any(thread.is_alive() for thread in counting):
        counters.flush()
    counters.flush()
    assert stats(engine) == {
        (1, 10, 0, 0): (4 * per_thread, 0),
        (1, 10, 100, 1000): (0, 4 * per_thread),
    }


def test_each_flush_tells_the_observer_how_many_slots_were_filled_and_empty(
    engine: Engine,
) -> None:
    told: list[tuple[int, int]] = []
    counters = DeliveryCounters(engine, observer=lambda filled, empty: told.append((filled, empty)))
    counters.count([(HOUR, 1, 10, 100, 1000), (HOUR, 1, 11, None, None), (HOUR, 1, 12, None, None)])
    counters.flush()
    counters.flush()  # nothing asked since: nothing told
    counters.count([(HOUR, 1, 10, 100, 1000)])
    counters.flush()
    assert told == [(1, 2), (1, 0)]


def test_a_fold_sums_in_memory_and_the_next_flush_writes_it(engine: Engine) -> None:
    told: list[tuple[int, int]] = []
    counters = DeliveryCounters(engine, observer=lambda filled, empty: told.append((filled, empty)))
    counters.count([(HOUR, 1, 10, 100, 1000), (HOUR, 1, 11, None, None)])
    counters.fold()
    counters.count([(HOUR, 1, 10, 100, 1000)])
    counters.fold()
    assert stats(engine) == {}
    assert told == [(1, 1), (1, 0)]
    counters.flush()
    assert stats(engine) == {
        (1, 10, 0, 0): (2, 0),
        (1, 10, 100, 1000): (0, 2),
        (1, 11, 0, 0): (1, 0),
    }
