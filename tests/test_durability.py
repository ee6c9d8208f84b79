"""An acknowledged event is never lost: not on kill -9, not while the database is away.

These run real server processes (`python -m adserver.cli serve`) and, for the outage, a private
PostgreSQL cluster in a temporary folder on its own port: the shared one on 5432 is never
stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import Engine, text

from adserver.core.db import make_engine, migrate
from adserver.reporting.tally import run_tally
from adserver.tracking.writer import EventWriter
from tests.conftest import BROWSER_UA, OPS, OPS_TOKEN, SECRET
from tests.records import event
from tests.seed import three_slot_site
from tests.test_principal import cli_token
from tests.waiting import free_port, wait_for

pytestmark = pytest.mark.slow

PG_BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass
class ServerProcess:
    """`adserver serve` in its own process group, so SIGKILL takes all of it."""

    database_url: str
    spool_dir: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            **os.environ,
            "ADSERVER_DATABASE_URL": self.database_url,
            "ADSERVER_SECRET_KEY": SECRET,
            "ADSERVER_BASE_URL": self.url,
            "ADSERVER_SCHEDULER": "off",
            "ADSERVER_SPOOL_DIR": str(self.spool_dir),
            "ADSERVER_METRICS_TOKEN": OPS_TOKEN,
        }
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "adserver.cli", "serve", "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(self._ready, seconds=60, what="the server to answer /healthz")

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the server exited:\n{self.log_path.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """A graceful stop (SIGTERM), as an operator's service manager does."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"User-Agent": BROWSER_UA}, timeout=30)


@contextlib.contextmanager
def server_process(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(database_url, tmp_path / "spool", tmp_path / "server.log")
    server.start()
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=30)


def decisions(server: ServerProcess, calls: int) -> list[dict[str, Any]]:
    """Decisions for the three filled slots of tests.seed.three_slot_site, ``calls`` times."""
    found: list[dict[str, Any]] = []
    with server.client() as client:
        for _ in range(calls):
            answer = client.get("/v1/decide", params={"site": "news", "slots": "top,below,side"})
            assert answer.status_code == 200, answer.text
            found += [d for d in answer.json()["decisions"].values() if d is not None]
    return found


@dataclass
class Load:
    """Threads posting beacons; remembers every one answered 204 (acknowledged)."""

    server: ServerProcess
    jobs: list[tuple[str, str]]  # (decision id, beacon URL)
    threads: int = 6
    pause: float = 0.0
    acknowledged: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[str, int]] = field(default_factory=list)
    failed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        work: queue.Queue[tuple[str, str]] = queue.Queue()
        for job in self.jobs:
            work.put(job)
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, args=(work,), name=f"load-{n}")
            worker.start()
            self._workers.append(worker)

    def _run(self, work: queue.Queue[tuple[str, str]]) -> None:
        with self.server.client() as client:
            while True:
                try:
                    decision, url = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    answer = client.post(url)
                except httpx.HTTPError:
                    with self._lock:
                        self.failed += 1
                    if self.server.process and self.server.process.poll() is not None:
                        return  # the server is gone: what was answered is what counts
                    continue
                with self._lock:
                    if answer.status_code == 204:
                        self.acknowledged.append((decision, url))
                    else:
                        self.refused.append((url, answer.status_code))
                time.sleep(self.pause)

    def count(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def join(self) -> None:
        for worker in self._workers:
            worker.join(timeout=120)
            assert not worker.is_alive()


def valid_decisions(engine: Engine, kind: str) -> set[str]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT decision_id FROM event WHERE kind = :kind AND valid"), {"kind": kind}
        )
        return {row.decision_id for row in rows}


def stats_totals(
    server: ServerProcess,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> dict[str, Any]:
    token = cli_token(monkeypatch, capsys, database_url, "durability")
    with server.client() as client:
        answer = client.get(
            "/v1/stats",
            params={"from": "2000-01-01", "to": "2999-12-31"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 200, answer.text
    return answer.json()["totals"]  # type: ignore[no-any-return]


def test_acknowledged_impressions_survive_kill_9(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    migrate(url)
    engine = make_engine(url)
    three_slot_site(engine)
    with server_process(url, tmp_path) as server:
        found = decisions(server, 400)
        load = Load(server, [(d["id"], d["impression_url"]) for d in found], threads=8)
        load.start()
        wait_for(lambda: load.count() >= 300, seconds=60, what="300 acknowledged impressions")
        server.kill()
        load.join()
        acknowledged = {decision for decision, _ in load.acknowledged}
        assert load.failed > 0 and len(acknowledged) < len(found), "the kill came too late"
        assert not load.refused
        stored = valid_decisions(engine, "imp")
        assert acknowledged <= stored, f"lost {len(acknowledged - stored)} acknowledged events"
        server.start()  # the same database and spool folder, after the crash
        assert run_tally(engine) == len(stored)
        totals = stats_totals(server, url, monkeypatch, capsys)
    assert totals["impressions"] == len(acknowledged | stored) == len(stored)
    assert totals["invalid_impressions"] == 0
    engine.dispose()


@dataclass
class PrivatePostgres:
    """A throwaway PostgreSQL cluster that a test may stop and start at will."""

    directory: Path
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/adserver"

    def _pg(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def init(self) -> None:
        shutil.chown(self.directory, "postgres")
        self._pg(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.directory / "data"),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        self.start()
        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True
        ) as admin:
            admin.execute("CREATE DATABASE adserver")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        self._pg(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.directory / "data"),
            "-l",
            str(self.directory / "pg.log"),
            "-o",
            options,
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._pg(str(PG_BIN / "pg_ctl"), "-D", str(self.directory / "data"), "-m", "fast", "stop")


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    if os.geteuid() != 0 or not (PG_BIN / "initdb").exists() or not shutil.which("runuser"):
        pytest.skip("a private PostgreSQL cluster needs root, runuser and PostgreSQL 15")
    directory = Path(tempfile.mkdtemp(prefix="adserver-pg-"))
    cluster = PrivatePostgres(directory)
    try:
        cluster.init()
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


def health(server: ServerProcess) -> tuple[int, dict[str, Any]]:
    answer = httpx.get(f"{server.url}/healthz", headers=OPS, timeout=10)
    return answer.status_code, answer.json()


def test_beacons_during_a_database_outage_are_spooled_then_counted_once(
    private_postgres: PrivatePostgres,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = private_postgres.url
    migrate(url)
    engine = make_engine(url)
    three_slot_site(engine)
    with server_process(url, tmp_path) as server:
        found = decisions(server, 300)
        # Each decision's impression, and for half of them a view after it (same thread).
        jobs = [(d["id"], d["impression_url"]) for d in found]
        views = [(d["id"], d["view_url"]) for d in found[::2]]
        load = Load(server, jobs, threads=6, pause=0.002)
        load.start()
        wait_for(lambda: load.count() >= 150, seconds=60, what="150 acknowledged impressions")
        private_postgres.stop()
        stopped_at = load.count()
        wait_for(
            lambda: load.count() >= stopped_at + 200,
            seconds=60,
            what="impressions acknowledged while the database is down",
        )
        status, body = health(server)
        # The spool takes what readers send: degraded, but not a reason to leave the pool.
        assert status == 200 and body["status"] == "degraded"
        assert body["database"].startswith("unavailable")
        assert body["spool_depth"] > 0
        # Decisions come from the process's snapshot: the outage does not stop them.
        during = decisions(server, 3)
        assert {d["campaign"] for d in during} == {d["campaign"] for d in found}
        load.join()
        view_load = Load(server, views, threads=3)
        view_load.start()
        view_load.join()
        assert health(server)[1]["spool_depth"] > 0
        private_postgres.start()

        def drained() -> bool:
            status, body = health(server)
            return status == 200 and body["spool_depth"] == 0

        wait_for(drained, seconds=60, what="the spool to drain into the database")
        assert not load.refused and not view_load.refused and not load.failed
        assert len(load.acknowledged) == len(jobs)
        assert len(view_load.acknowledged) == len(views)
        assert run_tally(engine) == len(jobs) + len(views)
        totals = stats_totals(server, url, monkeypatch, capsys)
        assert valid_decisions(engine, "imp") == {d for d, _ in jobs}
        assert valid_decisions(engine, "view") == {d for d, _ in views}
    assert totals["impressions"] == len(jobs)
    assert totals["viewable"] == len(views)
    assert totals["invalid_impressions"] == totals["invalid_views"] == 0
    assert totals["invalid"] == {}
    engine.dispose()


def test_a_spool_bigger_than_one_statement_is_replayed(engine: Engine, tmp_path: Path) -> None:
    """A long outage spools more events than one INSERT may carry parameters; a process that
    died with such a spool leaves it for the next writer, which stores it all, once."""
    spool = tmp_path / "spool"
    spool.mkdir()
    records = [event(secrets.token_urlsafe(12)) for _ in range(12_000)]
    lines = b"".join(json.dumps(asdict(r)).encode() + b"\n" for r in records)
    (spool / "events-1-dead.spool").write_bytes(lines + b'{"torn": ')
    writer = EventWriter(engine, spool_dir=spool)
    assert writer.spool_depth == 12_000  # /healthz counts a dead process's spool too
    writer.start()
    try:
        wait_for(
            lambda: not (spool / "events-1-dead.spool").exists(),
            seconds=60,
            what="the orphaned spool to be replayed",
        )
        # A second replay of the same records (a crash before the spool was removed) is a no-op.
        (spool / "events-2-dead.spool").write_bytes(lines[: len(lines) // 2])
        wait_for(
            lambda: not (spool / "events-2-dead.spool").exists(),
            seconds=60,
            what="the second spool to be replayed",
        )
        assert writer.spool_depth == 0
    finally:
        writer.stop()
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT count(*), sum(CASE WHEN valid THEN 1 ELSE 0 END) FROM event")
        ).one()
    assert tuple(stored) == (12_000, 12_000)
