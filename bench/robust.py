"""Is a server as robust as the other? Lifespan, events, workers and a graceful SIGTERM.

For one server and worker count, on a fresh SQLite database: with several workers, one is
killed (-9) and must be replaced; /healthz shows the inventory the lifespan loaded; decisions
and impressions are answered and recorded; then SIGTERM lands while 200 impressions are in
flight. Every acknowledged impression must be stored, the request counters (written at the
latest by the shutdown flush) must add up, and the process must exit cleanly.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from adserver.core.db import make_engine, migrate
from adserver.tracking.tokens import TokenSigner
from bench import servers
from bench.cases import Run, imp_paths
from bench.fixture import generate
from bench.load import HEADERS

DECIDES = 30
IN_FLIGHT = 200


def check(
    server: str, workers: int, *, workdir: Path, env: dict[str, str], run: Run
) -> dict[str, Any]:
    url = f"sqlite:///{workdir / f'robust-{server}-{workers}.db'}"
    migrate(url)
    engine = make_engine(url)
    fixture = generate(engine, campaigns=30, sites=3)
    problems: list[str] = []
    process = servers.start(
        f"robust-{server}-{workers}",
        servers.adserver_command(server, workers),
        env={**env, "ADSERVER_DATABASE_URL": url},
        workdir=workdir,
        cpus=None,
    )
    tokens: list[str] = []
    acknowledged: list[str] = []
    flight: list[str] = []
    stop_seconds = -1.0
    try:
        # First, kill -9 a worker: the server must replace it (a crash loses only counters).
        if workers > 1 and not _worker_respawns(process):
            problems.append("a killed worker was not replaced")
        with httpx.Client(base_url=process.url, headers=HEADERS, timeout=10) as client:
            health = client.get("/healthz").json()
            if health.get("inventory", {}).get("sites") != len(fixture.sites):
                problems.append(f"lifespan did not load the inventory: {health}")
            for i in range(DECIDES):
                answer = client.get(
                    "/v1/decide",
                    params={"site": fixture.sites[i % 3], "slots": "top,side,below"},
                )
                for decision in answer.json()["decisions"].values():
                    if decision is None:
                        problems.append("a bench slot went unfilled")
                        continue
                    tokens.append(decision["impression_url"].rsplit("/", 1)[1])
            for token in tokens:
                if client.get(f"/v1/imp/{token}").status_code == 204:
                    acknowledged.append(token)
            if len(acknowledged) != len(tokens):
                problems.append(f"{len(tokens) - len(acknowledged)} impressions not answered 204")
        fresh = imp_paths(run, fixture, IN_FLIGHT, f"robust-{server}-{workers}")
        in_flight = [line.rsplit("/", 1)[1] for line in fresh.read_text().split()]
        flight, stop_seconds = asyncio.run(_imps_during_shutdown(process, in_flight))
        acknowledged += flight
    finally:
        code = process.stop()
    # uvicorn re-raises the SIGTERM it handled once it has shut down: -15 is a clean exit too.
    if code not in (0, -signal.SIGTERM):
        problems.append(f"exit code {code} after SIGTERM:\n{process.log_tail(10)}")
    with engine.connect() as connection:
        stored = {
            row[0]
            for row in connection.execute(text("SELECT decision_id FROM event WHERE kind = 'imp'"))
        }
        requests = connection.execute(
            text("SELECT coalesce(sum(requests), 0) FROM hourly_stat")
        ).scalar_one()
    engine.dispose()
    signer = TokenSigner(run.secret)
    missing = [t for t in acknowledged if _decision(signer, t) not in stored]
    if missing:
        problems.append(f"{len(missing)} acknowledged impressions were not stored")
    if int(requests) != DECIDES * len(fixture.slot_names):
        problems.append(
            f"request counters not flushed at shutdown: {requests} of "
            f"{DECIDES * len(fixture.slot_names)}"
        )
    return {
        "server": server,
        "workers": workers,
        "ok": not problems,
        "problems": problems,
        "acknowledged": len(acknowledged),
        "in_flight_at_sigterm_acknowledged": f"{len(flight)}/{IN_FLIGHT}",
        "stored": len(stored),
        "stop_seconds": round(stop_seconds, 2),
    }


def _worker_respawns(process: servers.ServerProcess) -> bool:
    """SIGKILL one worker: the server must keep answering and start a replacement."""
    workers = _workers(process)
    victim = workers[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = _workers(process)
        if victim not in now and len(now) >= len(workers):
            try:
                return httpx.get(process.url + "/healthz", timeout=5).status_code == 200
            except httpx.HTTPError:
                continue
    return False


def _workers(process: servers.ServerProcess) -> list[int]:
    """The processes under the server that answer requests (not multiprocessing's tracker)."""
    found = []
    for pid in process.pids():
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if pid != process.process.pid and b"resource_tracker" not in command:
            found.append(pid)
    return found


def _decision(signer: TokenSigner, token: str) -> str:
    claims = signer.verify(token, now=int(time.time()), ttl=3600).claims
    return claims.decision_id if claims else ""


async def _imps_during_shutdown(
    process: servers.ServerProcess, tokens: list[str]
) -> tuple[list[str], float]:
    """Fire impressions, SIGTERM the server while they are in flight: the acknowledged ones,
    and the seconds from SIGTERM to exit."""
    limits = httpx.Limits(max_connections=IN_FLIGHT)
    async with httpx.AsyncClient(
        base_url=process.url, headers=HEADERS, timeout=30, limits=limits
    ) as client:

        async def one(token: str) -> str | None:
            try:
                answer = await client.get(f"/v1/imp/{token}")
            except httpx.HTTPError:
                return None
            return token if answer.status_code == 204 else None

        tasks = [asyncio.create_task(one(t)) for t in tokens]
        # SIGTERM once the first answers are back: the rest are then in flight or queued.
        while sum(t.done() for t in tasks) < len(tasks) // 10:
            await asyncio.sleep(0.001)
        process.process.terminate()
        terminated = time.monotonic()
        done = await asyncio.gather(*tasks)
    await asyncio.to_thread(process.process.wait, 60)
    return [t for t in done if t is not None], time.monotonic() - terminated
