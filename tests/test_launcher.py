"""`adserver serve` under each server: lifespan, events and a graceful SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from adserver.core.db import make_engine
from adserver.launcher import DEFAULT_SERVER, SERVERS
from tests.conftest import BROWSER_UA, OPS_TOKEN, SECRET
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
