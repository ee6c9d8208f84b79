"""Load generation against 127.0.0.1: wrk (Debian's) with a Lua script, or a Python fallback.

Every case is a list of request paths that the load generator cycles through (one decide URL
per site, one fresh event token per beacon), so the baseline takes the very same request lines
and the load generator does the same work for both. Runs are bounded by time (and the Python
client also by a request count).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.servers import LOAD_CPUS, pinned

BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)
HEADERS = {"User-Agent": BROWSER_UA, "Accept-Encoding": "gzip"}

# Each wrk thread takes every n-th path (its own share, no two threads send the same one),
# builds every request once in init, then cycles; done() prints the figures as JSON.
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
  requests_ = {}
  local n = 0
  local i = 0
  for line in io.lines(args[1]) do
    if i % nthreads == id then
      n = n + 1
      requests_[n] = wrk.format("GET", line)
    end
    i = i + 1
  end
  total_ = n
  next_ = 0
end
function request()
  next_ = next_ % total_ + 1
  return requests_[next_]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""

#: Added to ``LUA`` for paced runs only: wrk puts every request of a script with a ``delay``
#: function on a timer, even a 0 ms one, which would slow the unpaced runs.
PAUSE_LUA = """
function delay()
  return {pause_ms}
end
"""


@dataclass
class LoadResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    tool: str
    #: The server's CPU over the run (``bench.cpu.Usage.as_dict``), when it was measured.
    cpu: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def write_paths(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def run(
    base_url: str,
    paths_file: Path,
    *,
    duration: float,
    connections: int = 64,
    threads: int = 1,
    cpus: str | None = LOAD_CPUS,
    workdir: Path,
    pause_ms: int = 0,
) -> LoadResult:
    """Drive ``base_url`` with the request paths in ``paths_file`` for ``duration`` seconds;
    with ``pause_ms`` (wrk only), each connection waits that long before each request, which
    paces the load below the server's maximum."""
    if have_wrk():
        return _wrk(base_url, paths_file, duration, connections, threads, cpus, workdir, pause_ms)
    return asyncio.run(_python(base_url, paths_file, duration, connections))


def _wrk(
    base_url: str,
    paths_file: Path,
    duration: float,
    connections: int,
    threads: int,
    cpus: str | None,
    workdir: Path,
    pause_ms: int = 0,
) -> LoadResult:
    if pause_ms:
        script = workdir / f"bench-pause-{pause_ms}.lua"
        script.write_text(LUA + PAUSE_LUA.format(pause_ms=int(pause_ms)))
    else:
        script = workdir / "bench.lua"
        script.write_text(LUA)
    headers = [arg for name, value in HEADERS.items() for arg in ("-H", f"{name}: {value}")]
    command = pinned(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "5s",
            *headers,
            "-s",
            str(script),
            base_url,
            "--",
            str(paths_file),
            str(threads),
        ],
        cpus,
    )
    output = subprocess.run(
        command, capture_output=True, text=True, timeout=duration + 120, check=True
    ).stdout
    line = next((x for x in output.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no figures:\n{output}")
    figures = json.loads(line[len("BENCH ") :])
    seconds = figures["duration_us"] / 1e6
    errors = sum(figures[k] for k in ("connect", "read", "write", "status", "timeout"))
    return LoadResult(
        requests=figures["requests"],
        seconds=seconds,
        rps=figures["requests"] / seconds,
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        errors=errors,
        tool="wrk",
    )


async def _python(base_url: str, paths_file: Path, duration: float, connections: int) -> LoadResult:
    """A bounded async client: ``connections`` workers, stopped by time or 1,000,000 requests."""
    paths = paths_file.read_text().split()
    latencies: list[float] = []
    errors = 0
    limit = 1_000_000
    deadline = time.monotonic() + duration
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base_url, headers=HEADERS, limits=limits) as client:

        async def worker(offset: int) -> None:
            nonlocal errors
            i = offset
            while time.monotonic() < deadline and len(latencies) < limit:
                started = time.perf_counter()
                try:
                    answer = await client.get(paths[i % len(paths)])
                    if answer.status_code >= 400:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append(time.perf_counter() - started)
                i += connections

        started = time.monotonic()
        await asyncio.gather(*(worker(n) for n in range(connections)))
        seconds = time.monotonic() - started
    latencies.sort()
    return LoadResult(
        requests=len(latencies),
        seconds=seconds,
        rps=len(latencies) / seconds,
        p50_ms=statistics.median(latencies) * 1000 if latencies else 0.0,
        p99_ms=latencies[int(len(latencies) * 0.99)] * 1000 if latencies else 0.0,
        errors=errors,
        tool="python-httpx",
    )
