"""Hand-offs from the request path to a flushing thread without a lock.

The request path appends to a ``collections.deque`` (one atomic step in C) and the flush takes
from its other end: neither ever waits for the other, and nothing is lost or taken twice.
"""

from __future__ import annotations

from collections import deque
from itertools import islice
from typing import TypeVar

T = TypeVar("T")


def drain(pending: deque[T]) -> list[T]:
    """What ``pending`` holds now, taken from its left while others may append on its right
    (popped in C, one by one, so an append made meanwhile waits for the next drain). Only one
    thread may drain a deque at a time."""
    return list(islice(iter(pending.popleft, None), len(pending)))
