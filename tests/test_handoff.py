"""A deque drained by one thread while others append: nothing lost, nothing taken twice."""

from __future__ import annotations

import threading
from collections import deque

from adserver.core.handoff import drain


def test_a_drain_takes_what_was_appended_in_order() -> None:
    pending: deque[int] = deque([1, 2, 3])
    assert drain(pending) == [1, 2, 3]
    assert drain(pending) == []


def test_no_append_is_lost_or_taken_twice_while_threads_append_and_one_drains() -> None:
    pending: deque[tuple[int, int]] = deque()
    per_thread = 100_000
    # Each thread appends half, waits until a drain has taken something, then appends the rest:
    # drains certainly run between appends.
    drained_once = threading.Event()

    def append(who: int) -> None:
        for n in range(per_thread):
            if n == per_thread // 2:
                drained_once.wait()
            pending.append((who, n))

    appending = [threading.Thread(target=append, args=(who,)) for who in range(4)]
    for thread in appending:
        thread.start()
    taken: list[tuple[int, int]] = []
    while any(thread.is_alive() for thread in appending):
        drained = drain(pending)
        if drained:
            drained_once.set()
        taken += drained
    taken += drain(pending)
    assert len(taken) == 4 * per_thread
    # Each thread's appends arrive once each, in the order made.
    for who in range(4):
        assert [n for by, n in taken if by == who] == list(range(per_thread))
