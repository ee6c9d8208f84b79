"""`adserver serve` under each server: lifespan, events and a graceful SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from adserver.core.db import make_engine
from adserver.launcher import DEFAULT_SERVER, HEADER_TIMEOUT, KEEP_ALIVE_TIMEOUT, SERVERS
from tests.conftest import BROWSER_UA, OPS_TOKEN, SECRET
from tests.processes import AdserverProcess, adserver_env
from tests.seed import three_slot_site
from tests.waiting import free_port, wait_healthy

pytestmark = pytest.mark.slow


def test_uvicorn_is_the_default_and_granian_the_option() -> None:
    assert DEFAULT_SERVER == "uvicorn"
    assert set(SERVERS) == {"granian", "uvicorn"}


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("workers", [1, 2])
def test_serve_runs_the_lifespan_and_stops_gracefully(
    server: str, workers: int, sqlite_url: str, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    three_slot_site(engine)
    port = free_port()
    env = {
        **os.environ,
        "ADSERVER_DATABASE_URL": sqlite_url,
        "ADSERVER_SECRET_KEY": SECRET,
        "ADSERVER_SCHEDULER": "off",
        "ADSERVER_SPOOL_DIR": str(tmp_path / "spool"),
        "ADSERVER_METRICS_TOKEN": OPS_TOKEN,
    }
    command = ["serve", "--port", str(port), "--workers", str(workers), "--server", server]
    process = subprocess.Popen(
        [sys.executable, "-m", "adserver.cli", *command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        health = wait_healthy(process, base)
        assert health.status_code == 200
        assert health.json()["inventory"]["sites"] == 1  # the lifespan built the snapshot
        with httpx.Client(base_url=base, headers={"User-Agent": BROWSER_UA}) as client:
            answer = client.get("/v1/decide", params={"site": "news", "slots": "top,side"})
            decisions = answer.json()["decisions"]
            for decision in decisions.values():
                token = decision["impression_url"].rsplit("/", 1)[1]
                assert client.get(f"/v1/imp/{token}").status_code == 204
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    # uvicorn with one process re-raises the SIGTERM it handled once shut down.
    assert process.returncode in (0, -signal.SIGTERM)
    with engine.connect() as connection:
        imps = connection.execute(text("SELECT count(*) FROM event WHERE valid")).scalar_one()
        requests = connection.execute(text("SELECT sum(requests) FROM hourly_stat")).scalar_one()
    engine.dispose()
    assert imps == 2
    assert requests == 2  # counted in memory, written by the shutdown flush


def closed_after(sock: socket.socket, since: float) -> float:
    """Seconds from ``since`` until the server closed ``sock`` (read to its end)."""
    sock.settimeout(60)
    while sock.recv(65536):
        pass
    return time.monotonic() - since


@pytest.mark.parametrize("server", SERVERS)
def test_idle_and_trickling_connections_are_closed(
    server: str, sqlite_url: str, tmp_path: Path
) -> None:
    """An idle keep-alive connection is closed after KEEP_ALIVE_TIMEOUT (granian: its header
    timeout, which also covers the wait for the next request), and under granian a client that
    trickles its headers is cut off after HEADER_TIMEOUT. uvicorn has no header timeout: the
    proxy's test (tests/test_deploy.py) shows nginx cutting such clients off in front of it."""
    process = AdserverProcess(
        ["serve", "--port", "{port}", "--server", server], {}, tmp_path / "server.log"
    )
    process.env = adserver_env(sqlite_url, process.url, tmp_path / "spool")
    process.start()
    try:
        with (
            socket.create_connection(("127.0.0.1", process.port)) as idle,
            socket.create_connection(("127.0.0.1", process.port)) as trickling,
        ):
            idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert idle.recv(65536).startswith(b"HTTP/1.1 200 ")
            idle_since = time.monotonic()
            trickling.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            trickling_since = time.monotonic()
            expected = KEEP_ALIVE_TIMEOUT if server == "uvicorn" else HEADER_TIMEOUT
            assert expected - 0.5 < closed_after(idle, idle_since) < expected + 5
            if server == "granian":
                elapsed = closed_after(trickling, trickling_since)
                assert HEADER_TIMEOUT - 0.5 < elapsed < HEADER_TIMEOUT + 5
    finally:
        process.stop()
