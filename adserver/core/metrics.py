"""Prometheus metrics, one registry per app so several apps (tests, workers) never collide."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.decisions = Counter(
            "adserver_decisions",
            "Slot decisions by result (filled, empty), added at each delivery counters flush",
            ["result"],
            registry=self.registry,
        )
        self.events = Counter(
            "adserver_events",
            "Events received by kind and validity",
            ["kind", "reason"],
            registry=self.registry,
        )
        self.group_size = Histogram(
            "adserver_event_group_size",
            "Events committed per group commit",
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
            registry=self.registry,
        )
        self.group_seconds = Histogram(
            "adserver_event_group_seconds",
            "Time to commit one group of events",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        self.spool_depth = Gauge(
            "adserver_spool_depth",
            "Events waiting in the local spool for the database",
            registry=self.registry,
        )
        self.job_runs = Counter(
            "adserver_job_runs",
            "Scheduled job runs by job and outcome",
            ["job", "outcome"],
            registry=self.registry,
        )

        self._events: dict[tuple[str, str], Any] = {}

    def count_event(self, kind: str, reason: str | None) -> None:
        """One event received; the labelled child is looked up once, not on every request."""
        key = (kind, reason or "valid")
        child = self._events.get(key)
        if child is None:
            child = self._events[key] = self.events.labels(*key)
        child.inc()

    def observe_decisions(self, filled: int, empty: int) -> None:
        self.decisions.labels("filled").inc(filled)
        self.decisions.labels("empty").inc(empty)

    def observe_group(self, size: int, seconds: float) -> None:
        self.group_size.observe(size)
        self.group_seconds.observe(seconds)

    def track_spool(self, depth: Callable[[], int]) -> None:
        self.spool_depth.set_function(depth)
