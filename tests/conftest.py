"""Shared fixtures: real databases (SQLite files and PostgreSQL) and a real HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
import uvicorn
from sqlalchemy import Engine

from adserver.app import AdServer, create_app
from adserver.config import Settings
from adserver.core.db import make_engine, migrate
from adserver.runtime import Runtime

POSTGRES_HOST = "127.0.0.1:5432"
SECRET = "test-secret-key-0123456789"
#: ADSERVER_METRICS_TOKEN of test servers: /metrics and /healthz's details ask for it.
OPS_TOKEN = "test-ops-token-0123456789"
OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}
BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the shared PostgreSQL, dropped afterwards."""
    name = f"adserver_test_{secrets.token_hex(6)}"
    with psycopg.connect(
        f"postgresql://postgres@{POSTGRES_HOST}/postgres", autocommit=True
    ) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@{POSTGRES_HOST}/{name}"
    finally:
        with psycopg.connect(
            f"postgresql://postgres@{POSTGRES_HOST}/postgres", autocommit=True
        ) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, migrated database: a SQLite file, then the same tests on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'adserver.db'}"
        migrate(url)
        yield url
        return
    with postgres_database() as url:
        migrate(url)
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'adserver.db'}"
    migrate(url)
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@dataclass
class LiveServer:
    """An adserver app served by uvicorn on 127.0.0.1 in a background thread."""

    url: str
    settings: Settings
    app: AdServer
    server: uvicorn.Server
    thread: threading.Thread

    def client(self, **kwargs: object) -> httpx.Client:
        headers = {"User-Agent": BROWSER_UA}
        return httpx.Client(base_url=self.url, headers=headers, **kwargs)  # type: ignore[arg-type]

    @property
    def runtime(self) -> Runtime:
        assert self.app.runtime is not None, "the server has not started"
        return self.app.runtime

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def start_server(settings: Settings, sock: socket.socket) -> LiveServer:
    app = create_app(settings)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # surfaced to the test below
            failure.append(exc)

    thread = threading.Thread(target=run, name="live-server", daemon=True)
    thread.start()
    while not server.started:
        thread.join(timeout=0.02)
        if not thread.is_alive():
            raise RuntimeError(f"the test server did not start: {failure}")
    return LiveServer(settings.base_url, settings, app, server, thread)


def bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def make_settings(database_url: str, port: int, spool_dir: Path) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key=SECRET,
        base_url=f"http://127.0.0.1:{port}",
        scheduler=False,
        spool_dir=spool_dir,
        counter_flush_interval=0.2,
        inventory_poll_interval=0.05,
        metrics_token=OPS_TOKEN,
    )


@pytest.fixture
def server_settings(database_url: str, tmp_path: Path) -> Iterator[tuple[Settings, socket.socket]]:
    sock = bound_socket()
    yield make_settings(database_url, sock.getsockname()[1], tmp_path / "spool"), sock
    sock.close()


@pytest.fixture
def live_server(server_settings: tuple[Settings, socket.socket]) -> Iterator[LiveServer]:
    """A running server on the (parametrised) test database; data may be added before or after
    it starts, the inventory notices within a poll interval."""
    settings, sock = server_settings
    server = start_server(settings, sock)
    yield server
    server.stop()
