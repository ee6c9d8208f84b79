"""The benchmark's CPU accounting, ``bench.cpu``: what a process spent per request, from /proc."""

from __future__ import annotations

import os
import sys
import time

import pytest

from bench.cpu import sample, stat_fields, usage

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def burn(seconds: float) -> None:
    """Keep this thread on the CPU for ``seconds`` of its own CPU time."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def test_the_cpu_a_process_spends_is_shared_out_per_request() -> None:
    before = sample([os.getpid()])
    burn(0.3)
    spent = usage(before, sample([os.getpid()]), requests=1000)
    assert spent is not None
    # 0.3 s over 1,000 requests is 300 us each; /proc counts in ticks of 10 ms.
    assert 250 <= spent.us_per_request <= 1000
    assert spent.us_per_request == pytest.approx(sum(spent.by_thread.values()))
    assert list(spent.by_thread.values()) == sorted(spent.by_thread.values(), reverse=True)
    assert spent.core_busy and all(0 <= busy <= 1 for busy in spent.core_busy.values())
    assert max(spent.core_busy.values()) > 0.3  # some core ran the burn


def test_no_figures_without_requests_or_samples() -> None:
    now = sample([os.getpid()])
    assert usage(now, now, requests=0) is None
    assert usage(None, now, requests=10) is None


def test_a_process_gone_before_sampling_counts_for_nothing() -> None:
    gone = sample([2**22 + 12345])  # above the kernel's pid limit, so never a live process
    assert gone is not None and gone.threads == {}


def test_stat_fields_start_after_a_name_holding_spaces_and_brackets() -> None:
    line = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 310 0 0 0 7 3 0 0 20 0 1\n"
    fields = stat_fields(line)
    assert fields[:2] == ["S", "1"]  # state, then the parent's pid
    assert (fields[11], fields[12]) == ("7", "3")  # utime, stime
