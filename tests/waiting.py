"""Waiting on real things in tests: free ports and conditions polled until a deadline."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

import httpx

from tests.conftest import OPS

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    condition: Callable[[], T], what: str = "the condition", *, seconds: float = 60.0
) -> T:
    """Poll ``condition`` until it returns something true (and return that); fail with ``what``
    after ``seconds``. A wait on an observable condition, never a fixed sleep."""
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {seconds} s waiting for {what}")
        time.sleep(0.05)
    return result


def wait_healthy(process: subprocess.Popen[str], base: str) -> httpx.Response:
    """Wait for a server child process to answer /healthz; fail with its output if it exits.

    It asks with the test servers' operator token, so the answer carries the details."""

    def answer() -> httpx.Response | None:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            return httpx.get(f"{base}/healthz", headers=OPS, timeout=2)
        except httpx.TransportError:
            return None

    health = wait_for(answer, f"{base} to answer /healthz")
    assert health is not None  # wait_for returns only a true value
    return health
