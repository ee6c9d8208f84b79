"""``python -m bench.soak``: two servers and a scheduler on PostgreSQL under steady load.

Two ``adserver serve`` processes (ADSERVER_SCHEDULER=off) and one ``adserver scheduler`` share
one PostgreSQL database, as two machines and their scheduler would. The soak first measures
the most the pair answers (wrk, unpaced, a page's mix: a decide, an impression, a view and now
and then a click, each beacon with its own signed token), then holds 70% of that for the given
minutes with paced wrk, sampling each server's memory. At the end the servers stop (SIGTERM),
the tally runs, and the figures say: how many answers were 5xx (the goal: none), whether memory
stayed flat (the last minute's median resident memory against the second minute's), and whether
every acknowledged event (each 204 beacon and 302 click) is stored and tallied once.

Not part of ``make bench`` (it takes its minutes); figures go to bench/results/soak-*.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text

from adserver.core.db import make_engine, migrate
from adserver.tracking.tokens import TokenClaims, TokenSigner, new_decision_id, raw_decision_id
from bench import report
from bench.fixture import Fixture, generate
from bench.load import HEADERS
from bench.servers import ServerProcess, adserver_command, running

POSTGRES = "postgres@127.0.0.1:5432"
#: Share of the measured maximum the soak holds.
LOAD_SHARE = 0.7
CONNECTIONS = 32
STORY = "http%3A%2F%2F127.0.0.1%2Fstory-"

# Each connection cycles through its thread's share of the paths, waiting ``delay_ms`` between
# answers (0: unpaced), and counts answers by status class; done() prints the counts as JSON.
LUA = r"""
local counter = 0
local threads = {}
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  local nthreads = tonumber(args[2])
  pause_ = tonumber(args[3])
  requests_ = {}
  local n = 0
  local i = 0
  for line in io.lines(args[1]) do
    if i % nthreads == id then
      local method, path = line:match("^(%S+) (%S+)$")
      n = n + 1
      requests_[n] = wrk.format(method, path)
    end
    i = i + 1
  end
  total_ = n
  next_ = 0
  s2xx, s204, s302, s3xx, s4xx, s5xx = 0, 0, 0, 0, 0, 0
end
function request()
  next_ = next_ % total_ + 1
  return requests_[next_]
end
function delay()
  return pause_
end
function response(status, headers, body)
  if status == 204 then s204 = s204 + 1
  elseif status == 302 then s302 = s302 + 1
  elseif status < 300 then s2xx = s2xx + 1
  elseif status < 400 then s3xx = s3xx + 1
  elseif status < 500 then s4xx = s4xx + 1
  else s5xx = s5xx + 1 end
end
function done(summary, latency, requests)
  local t = {s2xx = 0, s204 = 0, s302 = 0, s3xx = 0, s4xx = 0, s5xx = 0}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(t) do t[name] = t[name] + thread:get(name) end
  end
  io.write(string.format(
    'SOAK {"requests":%d,"duration_us":%d,"errors":%d,"p99_us":%d,' ..
    '"s2xx":%d,"s204":%d,"s302":%d,"s3xx":%d,"s4xx":%d,"s5xx":%d}\n',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout, latency:percentile(99),
    t.s2xx, t.s204, t.s302, t.s3xx, t.s4xx, t.s5xx))
end
"""


def page_paths(
    fixture: Fixture, site_keys: dict[int, str], secret: str, pages: int, seed: int
) -> list[str]:
    """``pages`` page views as request lines: a decide, an impression and a view of one of its
    decisions, and a click for one page in twenty. Each page has its own decision; when wrk
    cycles through the list again, the repeats are stored as duplicates, never counted twice."""
    signer = TokenSigner(secret)
    rng = random.Random(seed)
    slots = ",".join(fixture.slot_names)
    now = int(time.time())
    lines = []
    for page in range(pages):
        p = fixture.placements[page % len(fixture.placements)]
        site = site_keys[p.site_id]
        decision = new_decision_id(raw_decision_id(now + page * 0.001, rng.getrandbits(56)))
        token = signer.sign(
            TokenClaims(decision, p.site_id, p.slot_id, p.campaign_id, p.creative_id, now)
        )
        lines += [
            f"GET /v1/decide?site={site}&slots={slots}&url={STORY}{page % 50}",
            f"POST /v1/imp/{token}",
            f"POST /v1/view/{token}",
        ]
        if page % 20 == 0:
            lines.append(f"GET /v1/click/{token}")
    return lines


def wrk(
    server: ServerProcess, paths: Path, workdir: Path, *, seconds: float, delay_ms: int
) -> dict[str, Any]:
    script = workdir / "soak.lua"
    script.write_text(LUA)
    headers = [arg for name, value in HEADERS.items() for arg in ("-H", f"{name}: {value}")]
    output = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
         *headers, "-s", str(script), server.url, "--", str(paths), "1", str(delay_ms)],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=True,
    ).stdout  # fmt: skip
    line = next(x for x in output.splitlines() if x.startswith("SOAK "))
    figures: dict[str, Any] = json.loads(line[len("SOAK ") :])
    figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
    return figures


def on_both(
    servers: list[ServerProcess], paths: list[Path], workdir: Path, **options: Any
) -> list[dict[str, Any]]:
    """One wrk per server, at the same time."""
    results: list[dict[str, Any]] = [{} for _ in servers]

    def drive(index: int) -> None:
        results[index] = wrk(servers[index], paths[index], workdir, **options)

    threads = [threading.Thread(target=drive, args=(i,)) for i in range(len(servers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@contextmanager
def postgres_database() -> Iterator[str]:
    name = f"adserver_soak_{secrets.token_hex(4)}"
    with psycopg.connect(f"postgresql://{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://{POSTGRES}/{name}"
    finally:
        with psycopg.connect(f"postgresql://{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def memory_sampler(
    servers: list[ServerProcess], every: float
) -> tuple[list[list[tuple[float, int]]], threading.Event, threading.Thread]:
    samples: list[list[tuple[float, int]]] = [[] for _ in servers]
    stop = threading.Event()
    started = time.monotonic()

    def sample() -> None:
        while not stop.wait(every):
            for index, server in enumerate(servers):
                samples[index].append((time.monotonic() - started, server.rss_kb()))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    return samples, stop, thread


def flatness(samples: list[tuple[float, int]], minutes: float) -> dict[str, Any]:
    """Median resident memory in the second minute and in the last one (MB), and their ratio."""
    end = minutes * 60
    second = [kb for at, kb in samples if 60 <= at < 120] or [kb for _, kb in samples[:6]]
    last = [kb for at, kb in samples if at >= end - 60] or [kb for _, kb in samples[-6:]]
    early, late = statistics.median(second) / 1024, statistics.median(last) / 1024
    return {
        "second_minute_mb": round(early, 1),
        "last_minute_mb": round(late, 1),
        "growth": round(late / early, 3),
        "peak_mb": round(max(kb for _, kb in samples) / 1024, 1),
    }


def stored(url: str) -> dict[str, int]:
    engine = make_engine(url)
    with engine.connect() as connection:
        events = connection.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE tally_batch IS NULL), "
                "count(*) FILTER (WHERE kind = 'imp') FROM event"
            )
        ).one()
        tallied = connection.execute(
            text("SELECT coalesce(sum(impressions + invalid_impressions), 0) FROM hourly_stat")
        ).scalar_one()
    engine.dispose()
    return {
        "events": int(events[0]),
        "untallied": int(events[1]),
        "impression_events": int(events[2]),
        "impressions_tallied": int(tallied),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to hold the load")
    parser.add_argument("--probe", type=float, default=20.0, help="seconds to find the maximum")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("wrk not found (make wrk, or apt-get install -y wrk)")
    workdir = Path(tempfile.mkdtemp(prefix="adserver-soak-"))
    secret = secrets.token_urlsafe(32)
    figures: dict[str, Any] = {"machine": report.machine(), "minutes": args.minutes}
    try:
        with postgres_database() as url, ExitStack() as stack:
            migrate(url)
            engine = make_engine(url)
            fixture = generate(engine, campaigns=1000, sites=50)
            with engine.connect() as connection:
                site_keys = {
                    int(i): str(k) for i, k in connection.execute(text("SELECT id, key FROM site"))
                }
            engine.dispose()
            env = {
                "ADSERVER_DATABASE_URL": url,
                "ADSERVER_SECRET_KEY": secret,
                "ADSERVER_SCHEDULER": "off",
                "ADSERVER_SPOOL_DIR": str(workdir / "spool"),
                "ADSERVER_METRICS_TOKEN": "public",
            }
            servers = [
                stack.enter_context(
                    running(f"server{n}", adserver_command("uvicorn", 1), env=env,
                            workdir=workdir, cpus=None)
                )
                for n in (1, 2)
            ]  # fmt: skip
            scheduler = subprocess.Popen(
                [sys.executable, "-m", "adserver.cli", "scheduler"],
                env={**os.environ, **env},
                stdout=open(workdir / "scheduler.log", "wb"),  # noqa: SIM115
                stderr=subprocess.STDOUT,
            )
            stack.callback(scheduler.wait, 60)
            stack.callback(scheduler.terminate)
            pages = 250_000 if args.minutes >= 5 else 50_000
            probe_paths: list[Path] = []
            soak_paths: list[Path] = []
            for n in range(2):
                probe_paths.append(workdir / f"probe{n}.paths")
                lines = page_paths(fixture, site_keys, secret, 5000, seed=n)
                probe_paths[-1].write_text("\n".join(lines) + "\n")
                soak_paths.append(workdir / f"soak{n}.paths")
                lines = page_paths(fixture, site_keys, secret, pages, seed=10 + n)
                soak_paths[-1].write_text("\n".join(lines) + "\n")
            print(f"finding the maximum ({args.probe:.0f} s, unpaced)", flush=True)
            probe = on_both(servers, probe_paths, workdir, seconds=args.probe, delay_ms=0)
            maximum = sum(p["rps"] for p in probe)
            target = maximum * LOAD_SHARE
            # A connection's rate is about 1 / (latency + delay); latency is small at 70%.
            delay_ms = max(1, round(CONNECTIONS * 2 * 1000 / target))
            print(
                f"maximum {maximum:,.0f} req/s; holding about {target:,.0f} req/s "
                f"(delay {delay_ms} ms per connection) for {args.minutes} min",
                flush=True,
            )
            samples, stop, sampler = memory_sampler(servers, every=10.0)
            soak = on_both(
                servers, soak_paths, workdir, seconds=args.minutes * 60, delay_ms=delay_ms
            )
            stop.set()
            sampler.join()
            for server in servers:
                server.stop()
            scheduler.terminate()
            scheduler.wait(60)
            subprocess.run(
                [sys.executable, "-m", "adserver.cli", "tally"],
                env={**os.environ, **env},
                check=True,
                capture_output=True,
            )
            acknowledged = sum(s["s204"] + s["s302"] for s in [*probe, *soak])
            totals = stored(url)
            figures.update(
                maximum_rps=round(maximum),
                target_rps=round(target),
                soak_rps=round(sum(s["rps"] for s in soak)),
                probe=probe,
                soak=soak,
                server_5xx=sum(s["s5xx"] for s in [*probe, *soak]),
                connection_errors=sum(s["errors"] for s in soak),
                memory=[flatness(s, args.minutes) for s in samples],
                acknowledged_events=acknowledged,
                stored=totals,
                # Requests still in flight when wrk stopped may be stored yet never counted as
                # answered: at most one per connection, so the excess is bounded.
                every_acknowledged_event_stored=(
                    acknowledged <= totals["events"] <= acknowledged + 2 * CONNECTIONS
                ),
                every_stored_impression_tallied=(
                    totals["untallied"] == 0
                    and totals["impressions_tallied"] == totals["impression_events"]
                ),
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({k: v for k, v in figures.items() if k not in {"probe", "soak"}}, indent=2))
    path = report.write(figures, prefix="soak-")
    print(f"figures written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
