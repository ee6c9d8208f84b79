"""The HTTP cases: each server under test against the baseline, run after run, interleaved.

A comparison keeps both servers up (idle costs next to nothing) and alternates wrk runs
between them, so machine noise lands on both; ratios are medians of per-pair ratios.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text, update
from sqlmodel import SQLModel

from adserver.core.db import bump_inventory_version, make_engine
from adserver.tracking.tokens import TokenClaims, TokenSigner, new_decision_id, raw_decision_id
from bench import cpu, load
from bench.fixture import Fixture
from bench.servers import LOAD_CPUS, ServerProcess


@dataclass
class Run:
    """How a bench run is set up: passed to every case."""

    workdir: Path
    duration: float
    repeats: int
    connections: int
    secret: str
    log: Callable[[str], None] = print

    @property
    def warmup(self) -> float:
        return min(2.0, self.duration)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def summary(runs: list[load.LoadResult], server: ServerProcess | None = None) -> dict[str, Any]:
    cpu_us = [r.cpu["us_per_request"] for r in runs if r.cpu is not None]
    return {
        "rps": round(median([r.rps for r in runs]), 1),
        "p50_ms": round(median([r.p50_ms for r in runs]), 2),
        "p99_ms": round(median([r.p99_ms for r in runs]), 2),
        # None where /proc could not be read: no figure rather than a 0 that reads as one.
        "cpu_us_per_request": round(median(cpu_us), 1) if cpu_us else None,
        "errors": sum(r.errors for r in runs),
        "peak_rss_mb": round(server.peak_rss_kb / 1024, 1) if server else None,
        "runs": [r.as_dict() for r in runs],
    }


def measured(
    run: Run, server: ServerProcess, paths: Path, *, cpus: str | None = LOAD_CPUS
) -> load.LoadResult:
    """One load run on ``server``, with the CPU the server spent per request."""
    pids = server.pids()
    before = cpu.sample(pids)
    result = load.run(
        server.url,
        paths,
        duration=run.duration,
        connections=run.connections,
        workdir=run.workdir,
        cpus=cpus,
    )
    spent = cpu.usage(before, cpu.sample(pids), result.requests)
    if spent is not None:
        result.cpu = spent.as_dict()
    return result


def describe(result: load.LoadResult, server: ServerProcess) -> str:
    """A run's figures for the log: throughput, latency, and where the server's CPU went."""
    line = f"{result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms"
    if result.cpu is not None:
        line += f", {result.cpu['us_per_request']:.0f} us CPU/request"
        busy = result.cpu["core_busy"].get(server.cpus or "")
        if busy is not None:
            line += f" (core {server.cpus} {busy:.0%} busy)"
    if result.errors:
        line += f", {result.errors} errors"
    return line


def decide_paths(run: Run, fixture: Fixture) -> Path:
    """One 3-slot decide URL per site and page, cycled by the load generator."""
    slots = ",".join(fixture.slot_names)
    lines = []
    for page in range(4):
        for key in fixture.sites:
            keywords = "&keywords=travel,food" if page == 3 else ""
            lines.append(
                f"/v1/decide?site={key}&slots={slots}"
                f"&url=http%3A%2F%2F127.0.0.1%2Fnews%2Fstory-{page}.html{keywords}"
            )
    return load.write_paths(run.workdir / "decide.paths", lines)


def imp_paths(run: Run, fixture: Fixture, count: int, name: str) -> Path:
    """``count`` impression beacons, each for a distinct decision, signed as the server does.

    The decisions' ids carry issue times as the server's do: one every 0.1 ms (about the bench's
    pace), each beacon up to a second late (a page loading), so beacons arrive roughly, not
    exactly, in the order their ids were issued.
    """
    signer = TokenSigner(run.secret)
    rng = random.Random(name)
    started = time.time()
    now = int(started)
    placements = fixture.placements
    lines = []
    for i in range(count):
        p = placements[i % len(placements)]
        issued = started + i * 0.0001 - rng.random()
        claims = TokenClaims(
            new_decision_id(raw_decision_id(issued, rng.getrandbits(56))),
            p.site_id,
            p.slot_id,
            p.campaign_id,
            p.creative_id,
            now,
        )
        lines.append(f"/v1/imp/{signer.sign(claims)}")
    return load.write_paths(run.workdir / f"{name}.paths", lines)


def compare(
    run: Run,
    name: str,
    case: ServerProcess,
    baseline: ServerProcess,
    paths: Callable[[str], Path],
    *,
    cpus: str | None = LOAD_CPUS,
    before_run: Callable[[], None] | None = None,
    after_run: Callable[[load.LoadResult], None] | None = None,
) -> dict[str, Any]:
    """Alternate load runs on ``case`` and ``baseline``; ``paths(label)`` gives each run's
    request list (called per run, so beacons can get fresh tokens)."""
    run.log(f"  {name}: warming up")
    for label, server in (("warm-base", baseline), ("warm-case", case)):
        load.run(server.url, paths(label), duration=run.warmup, workdir=run.workdir, cpus=cpus)
    case_runs: list[load.LoadResult] = []
    base_runs: list[load.LoadResult] = []
    with case.sampling_rss(), baseline.sampling_rss():
        for repeat in range(run.repeats):
            order = [("base", baseline), ("case", case)]
            if repeat % 2:
                order.reverse()
            for label, server in order:
                requests = paths(f"{label}-{repeat}")
                if label == "case" and before_run is not None:
                    before_run()
                result = measured(run, server, requests, cpus=cpus)
                (base_runs if label == "base" else case_runs).append(result)
                if label == "case" and after_run is not None:
                    after_run(result)
                run.log(f"  {name} {label} #{repeat + 1}: {describe(result, server)}")
    figures = summary(case_runs, case)
    figures["baseline"] = summary(base_runs, baseline)
    figures["ratio_rps"] = round(
        median([c.rps / b.rps for c, b in zip(case_runs, base_runs, strict=True)]), 3
    )
    figures["ratio_p99"] = round(
        median([c.p99_ms / b.p99_ms for c, b in zip(case_runs, base_runs, strict=True)]), 3
    )
    return figures


def solo(
    run: Run,
    name: str,
    server: ServerProcess,
    paths: Path,
    *,
    repeats: int | None = None,
    cpus: str | None = LOAD_CPUS,
) -> dict[str, Any]:
    """Load runs on one server (no baseline), with its peak memory."""
    load.run(server.url, paths, duration=run.warmup, workdir=run.workdir, cpus=cpus)
    results = []
    with server.sampling_rss():
        for repeat in range(repeats or run.repeats):
            result = measured(run, server, paths, cpus=cpus)
            results.append(result)
            run.log(f"  {name} #{repeat + 1}: {describe(result, server)}")
    return summary(results, server)


@dataclass
class EventCount:
    """Counts the event table around each beacon run: acknowledged must mean stored."""

    engine: Engine
    acknowledged: int = 0
    stored: int = 0
    _before: int = 0

    def total(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM event")).scalar_one())

    def before_run(self) -> None:
        self._before = self.total()

    def after_run(self, result: load.LoadResult) -> None:
        # wrk counts answered requests; "status" errors (non-2xx) are among its errors.
        self.acknowledged += result.requests - result.errors
        self.stored += self.total() - self._before

    def report(self) -> dict[str, Any]:
        with self.engine.connect() as connection:
            rows = dict(
                connection.execute(
                    text("SELECT coalesce(reason, 'valid'), count(*) FROM event GROUP BY 1")
                ).all()
            )
        return {
            "acknowledged": self.acknowledged,
            "stored": self.stored,
            "durable": self.stored >= self.acknowledged,
            "by_reason": rows,
        }


class Editor(threading.Thread):
    """Edits a campaign and bumps the inventory version every ``interval`` seconds, as an
    admin saving forms would, so the servers keep rebuilding their snapshots."""

    def __init__(self, database_url: str, campaign_ids: list[int], interval: float = 0.1):
        super().__init__(name="bench-editor", daemon=True)
        self._url = database_url
        self._ids = campaign_ids
        self._interval = interval
        self._halt = threading.Event()
        self.edits = 0

    def run(self) -> None:
        engine = make_engine(self._url)
        campaigns = SQLModel.metadata.tables["campaign"]
        rng = random.Random(5)
        try:
            while not self._halt.wait(self._interval):
                targeting = rng.choice(({}, {"keywords": ["travel"]}, {"devices": ["desktop"]}))
                with engine.begin() as connection:
                    connection.execute(
                        update(campaigns)
                        .where(campaigns.c.id == rng.choice(self._ids))
                        .values(weight=rng.randint(1, 10), targeting=targeting)
                    )
                    bump_inventory_version(connection)
                self.edits += 1
        finally:
            engine.dispose()

    def stop(self) -> None:
        self._halt.set()
        self.join()


@contextmanager
def editing(database_url: str, campaign_ids: list[int]) -> Iterator[Editor]:
    editor = Editor(database_url, campaign_ids)
    editor.start()
    try:
        yield editor
    finally:
        editor.stop()


def with_and_without_edits(
    run: Run, server: ServerProcess, paths: Path, database_url: str, fixture: Fixture
) -> dict[str, Any]:
    """Decide load while campaigns are edited every 100 ms, alternated with runs without."""
    # Never the house campaigns: they keep every slot fillable.
    editable = fixture.campaign_ids[len(fixture.slot_names) * len(fixture.sites) :]
    load.run(server.url, paths, duration=run.warmup, workdir=run.workdir)
    quiet: list[load.LoadResult] = []
    edited: list[load.LoadResult] = []
    edits = 0
    for repeat in range(run.repeats):
        for mode in ("quiet", "edits") if repeat % 2 == 0 else ("edits", "quiet"):
            if mode == "edits":
                with editing(database_url, editable) as editor:
                    result = measured(run, server, paths)
                edits += editor.edits
                edited.append(result)
            else:
                result = measured(run, server, paths)
                quiet.append(result)
            run.log(f"  decide with {mode} #{repeat + 1}: {describe(result, server)}")
    figures = summary(edited, server)
    figures["without_edits"] = summary(quiet)
    figures["edits"] = edits
    figures["ratio_rps"] = round(
        median([e.rps / q.rps for e, q in zip(edited, quiet, strict=True)]), 3
    )
    figures["ratio_p99"] = round(
        median([e.p99_ms / q.p99_ms for e, q in zip(edited, quiet, strict=True)]), 3
    )
    return figures
