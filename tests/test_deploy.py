"""docs/deploy.md, tried: behind Debian's nginx with TLS, several servers on one PostgreSQL with
one scheduler, systemd units, backups while serving and their restore, upgrades."""

from __future__ import annotations

import contextlib
import shlex
import shutil
import socket
import sqlite3
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from sqlalchemy import Engine, text
from sqlmodel import Session

from adserver.core.db import alembic_config, make_engine, migrate
from adserver.core.models import Slot
from tests.conftest import BROWSER_UA, postgres_database
from tests.processes import AdserverProcess, adserver_env, run_cli
from tests.proxy import (
    DOCS,
    PROXY_ADDRESS,
    SERVER_NAME,
    Nginx,
    ReaderHost,
    have_nginx,
    make_certificate,
    reader_host,
    site_config,
)
from tests.seed import add_campaign, add_creative, add_site, add_slot, publish
from tests.waiting import free_port, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not have_nginx(), reason="needs Debian's nginx (apt-get install nginx)"),
]
HOST = {"Host": SERVER_NAME, "User-Agent": BROWSER_UA}


def country_site(engine: Engine) -> None:
    """One slot, two campaigns: one for readers in India, a higher tier one for Australia. What
    the slot serves tells which country adserver believed the reader to be in."""
    with Session(engine) as session:
        site = add_site(session, domains=[SERVER_NAME, "localhost", "127.0.0.1"])
        top = add_slot(session, site, "top", ["728x90"])
        india = add_campaign(
            session, [top], advertiser="Chai", name="India", targeting={"countries": ["IN"]}
        )
        add_creative(session, india)
        australia = add_campaign(
            session,
            [top],
            advertiser="Tim Tam",
            name="Australia",
            tier="sponsorship",
            targeting={"countries": ["AU"]},
        )
        add_creative(session, australia)
        publish(session)


def campaign_names(engine: Engine) -> dict[int, str]:
    with engine.connect() as connection:
        return dict(connection.execute(text("SELECT id, name FROM campaign")).all())  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """adserver as docs/deploy.md sets it up: on 127.0.0.1 behind nginx with TLS, reached by a
    reader on another host."""
    directory = tmp_path_factory.mktemp("proxied")
    url = f"sqlite:///{directory / 'adserver.db'}"
    migrate(url)
    engine = make_engine(url)
    country_site(engine)
    server = AdserverProcess(
        ["serve", "--host", "127.0.0.1", "--port", "{port}"],
        adserver_env(
            url, f"https://{SERVER_NAME}", directory / "spool", FORWARDED_ALLOW_IPS="127.0.0.1"
        ),
        directory / "server.log",
    ).start()
    cert, key = make_certificate(directory)
    https_port, http_port = free_port(), free_port()
    nginx = None
    try:
        with reader_host() as reader:
            nginx = Nginx(directory / "nginx").start(
                site_config(
                    upstreams=[server.port],
                    https_port=https_port,
                    http_port=http_port,
                    cert=cert,
                    key=key,
                    # The documented 10 s, shortened so the trickling client's test is quick.
                    timeouts={"client_header_timeout": "1s", "client_body_timeout": "1s"},
                )
            )
            yield {
                "reader": reader,
                "server": server,
                "engine": engine,
                "https": f"https://{PROXY_ADDRESS}:{https_port}",
                "http": f"http://{PROXY_ADDRESS}:{http_port}",
                "https_port": https_port,
            }
    finally:
        if nginx is not None:
            nginx.stop()
        server.stop()
        engine.dispose()


def served_campaign(answer: dict[str, Any], names: dict[int, str]) -> str | None:
    assert answer.get("status") == 200, answer
    decision = httpx.Response(200, text=answer["text"]).json()["decisions"]["top"]
    return None if decision is None else names[decision["campaign"]]


def test_the_readers_address_comes_from_the_proxy_alone(proxied: dict[str, Any]) -> None:
    reader: ReaderHost = proxied["reader"]
    names = campaign_names(proxied["engine"])
    decide = f"{proxied['https']}/v1/decide?site=news&slots=top"

    # The reader's machine is in India (49.36.0.10): nginx says so, adserver believes it.
    assert served_campaign(reader.fetch("GET", decide, headers=HOST), names) == "India"
    # The reader claims to be in Australia: nginx replaces the header, nothing changes.
    spoofed = {**HOST, "X-Forwarded-For": "1.2.3.4"}
    assert served_campaign(reader.fetch("GET", decide, headers=spoofed), names) == "India"


def test_direct_requests_cannot_claim_an_address(proxied: dict[str, Any]) -> None:
    server: AdserverProcess = proxied["server"]
    names = campaign_names(proxied["engine"])
    # adserver listens on 127.0.0.1 only: the reader's machine cannot reach it at all ...
    direct = proxied["reader"].fetch("GET", f"http://{PROXY_ADDRESS}:{server.port}/healthz")
    assert "error" in direct
    # ... and a local client that is not the proxy (127.0.0.2) is not believed either.
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=transport, headers=HOST) as client:
        answer = client.get(
            f"{server.url}/v1/decide",
            params={"site": "news", "slots": "top"},
            headers={"X-Forwarded-For": "49.36.0.10"},
        )
    assert answer.status_code == 200, answer.text
    assert served_campaign({"status": 200, "text": answer.text}, names) is None


def test_plain_http_is_sent_to_https_on_the_servers_own_name(proxied: dict[str, Any]) -> None:
    reader: ReaderHost = proxied["reader"]
    answer = reader.fetch(
        "GET", f"{proxied['http']}/v1/decide?site=news", headers={"Host": "evil.example"}
    )
    assert answer["status"] == 301
    assert answer["headers"]["location"] == f"https://{SERVER_NAME}/v1/decide?site=news"


def test_slow_and_oversized_requests_stop_at_the_proxy(proxied: dict[str, Any]) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((PROXY_ADDRESS, proxied["https_port"]), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=SERVER_NAME) as tls,
    ):
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: " + SERVER_NAME.encode() + b"\r\n")
        started = time.monotonic()
        # No more header lines: nginx drops the connection after client_header_timeout.
        assert tls.recv(1024) == b""
        assert time.monotonic() - started < 8
    with httpx.Client(verify=False, headers=HOST) as client:
        answer = client.post(
            f"{proxied['https']}/v1/decide?site=news&slots=top", content=b"x" * (2 << 20)
        )
    assert answer.status_code == 413


def page_views(base: str, views: int) -> int:
    """``views`` page views through the proxy: a decide and its impression beacon each;
    returns the impressions acknowledged."""
    acknowledged = 0
    with httpx.Client(verify=False, headers=HOST, timeout=30) as client:
        for _ in range(views):
            answer = client.get(f"{base}/v1/decide", params={"site": "news", "slots": "top"})
            decision = answer.json()["decisions"]["top"]
            beacon = decision["impression_url"].replace(f"https://{SERVER_NAME}", base)
            if client.post(beacon).status_code == 204:
                acknowledged += 1
    return acknowledged


@pytest.mark.postgres
def test_several_servers_on_one_postgresql_with_one_scheduler(tmp_path: Path) -> None:
    with postgres_database() as url:
        migrate(url)
        engine = make_engine(url)
        with Session(engine) as session:
            site = add_site(session, domains=[SERVER_NAME])
            top = add_slot(session, site, "top", ["728x90"])
            add_creative(session, add_campaign(session, [top]))
            publish(session)
        env = adserver_env(url, f"https://{SERVER_NAME}", tmp_path / "spool")
        servers = [
            AdserverProcess(["serve", "--port", "{port}"], env, tmp_path / f"server{n}.log")
            for n in (1, 2)
        ]
        scheduler = AdserverProcess(["scheduler"], env, tmp_path / "scheduler.log")
        cert, key = make_certificate(tmp_path)
        port = free_port()
        nginx = Nginx(tmp_path / "nginx")
        # The proxy's public address lives on the reader link; this host sends the traffic.
        with contextlib.ExitStack() as stack:
            stack.enter_context(reader_host())
            stack.callback(engine.dispose)
            stack.callback(nginx.stop)
            for process in [*servers, scheduler]:
                stack.callback(process.kill)
            for server in servers:
                server.start()
            nginx.start(
                site_config(
                    upstreams=[s.port for s in servers],
                    https_port=port,
                    http_port=free_port(),
                    cert=cert,
                    key=key,
                )
            )
            acknowledged = page_views(f"https://{PROXY_ADDRESS}:{port}", 40)
            upstreams = {line.split()[-1] for line in nginx.access_log()}
            assert upstreams == {f"127.0.0.1:{s.port}" for s in servers}

            # The servers run no jobs (ADSERVER_SCHEDULER=off): the one scheduler tallies what
            # both of them recorded, each impression once.
            scheduler.start(wait_healthy=False)

            def tallied() -> int:
                scheduler.assert_running()
                with engine.connect() as connection:
                    return int(
                        connection.execute(
                            text("SELECT coalesce(sum(impressions), 0) FROM hourly_stat")
                        ).scalar_one()
                    )

            assert wait_for(tallied, "the scheduler's first tally", seconds=60) == acknowledged
            assert acknowledged == 40


def unit_command(unit: str) -> list[str]:
    """The ExecStart of a unit file, pointed at this checkout's environment."""
    for line in (DOCS / unit).read_text().splitlines():
        if line.startswith("ExecStart="):
            words = shlex.split(line.removeprefix("ExecStart="))
            assert words[0] == "/opt/adserver/.venv/bin/adserver"
            return words[1:]
    raise AssertionError(f"{unit} has no ExecStart")


@pytest.mark.parametrize("unit", ["adserver.service", "adserver-scheduler.service"])
def test_the_systemd_units_are_valid_and_their_commands_run(unit: str, tmp_path: Path) -> None:
    if shutil.which("systemd-analyze"):
        installed = (DOCS / unit).read_text()
        for old, new in (
            ("/opt/adserver/.venv/bin/adserver", shutil.which("adserver") or "/bin/true"),
            ("/etc/adserver/adserver.env", str(DOCS / "adserver.env")),
            ("User=adserver", "User=root"),
            ("Group=adserver", "Group=root"),
        ):
            installed = installed.replace(old, new)
        (tmp_path / unit).write_text(installed)
        verify = subprocess.run(
            ["systemd-analyze", "verify", str(tmp_path / unit)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    url = f"sqlite:///{tmp_path / 'adserver.db'}"
    migrate(url)
    args = unit_command(unit)
    port = free_port()
    args = [str(port) if a == "8000" else a for a in args]
    process = AdserverProcess(
        args, adserver_env(url, "http://127.0.0.1", tmp_path / "spool"), tmp_path / "unit.log"
    )
    process.port = port
    try:
        if args[0] == "serve":
            process.start()
            assert process.stop() == 0  # SIGTERM, as systemd stops it
        else:
            process.start(wait_healthy=False)
            wait_for(lambda: "scheduler running" in process.log(), "the scheduler to start")
            assert process.stop() == 0
    finally:
        process.kill()


class Beacons:
    """Impressions fired at a server from a thread, remembering which were acknowledged."""

    def __init__(self, server: AdserverProcess) -> None:
        self.server = server
        self.acknowledged: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Beacons:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        with httpx.Client(base_url=self.server.url, headers={"User-Agent": BROWSER_UA}) as client:
            while not self._stop.is_set():
                answer = client.get("/v1/decide", params={"site": "news", "slots": "top"})
                decision = answer.json()["decisions"]["top"]
                if client.post(decision["impression_url"]).status_code == 204:
                    self.acknowledged.add(decision["id"])


def simple_site(url: str) -> None:
    engine = make_engine(url)
    with Session(engine) as session:
        site = add_site(session)
        top = add_slot(session, site, "top", ["728x90"])
        add_creative(session, add_campaign(session, [top]))
        publish(session)
    engine.dispose()


def stored_decisions(url: str) -> set[str]:
    engine = make_engine(url)
    with engine.connect() as connection:
        found = {
            str(d) for d in connection.execute(text("SELECT decision_id FROM event")).scalars()
        }
    engine.dispose()
    return found


def backup_while_serving(url: str, target: Path, tmp_path: Path) -> tuple[set[str], Any]:
    """Run ``adserver backup`` while impressions keep arriving; returns what was acknowledged
    before the backup started and the command's result."""
    env = adserver_env(url, "http://127.0.0.1", tmp_path / "spool")
    server = AdserverProcess(["serve", "--port", "{port}"], env, tmp_path / "server.log")
    server.port = free_port()
    server.env = {**env, "ADSERVER_BASE_URL": server.url}
    server.start()
    try:
        with Beacons(server) as beacons:
            wait_for(lambda: len(beacons.acknowledged) >= 50, "50 acknowledged impressions")
            before = set(beacons.acknowledged)
            result = run_cli(env, "backup", str(target))
            wait_for(lambda: len(beacons.acknowledged) >= len(before) + 20, "more impressions")
    finally:
        server.stop()
    return before, result


def test_a_sqlite_backup_taken_while_serving_restores(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'adserver.db'}"
    migrate(url)
    simple_site(url)
    backup = tmp_path / "backup.db"
    before, result = backup_while_serving(url, backup, tmp_path)
    assert result.returncode == 0, result.stderr
    assert str(backup) in result.stdout
    with sqlite3.connect(backup) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    # Restore: the copy becomes the database of a new server, which serves from it.
    restored = tmp_path / "restored" / "adserver.db"
    restored.parent.mkdir()
    shutil.copy(backup, restored)
    restored_url = f"sqlite:///{restored}"
    # Everything acknowledged before the backup began is in it; nothing is invented.
    kept = stored_decisions(restored_url)
    assert before <= kept <= stored_decisions(url)
    assert run_cli(adserver_env(restored_url, "", tmp_path), "backup", str(backup)).returncode == 2
    server = AdserverProcess(
        ["serve", "--port", "{port}"],
        adserver_env(restored_url, "http://127.0.0.1", tmp_path / "spool2"),
        tmp_path / "restored.log",
    ).start()
    try:
        answer = httpx.get(f"{server.url}/v1/decide", params={"site": "news", "slots": "top"})
        assert answer.json()["decisions"]["top"] is not None
    finally:
        server.stop()


@pytest.mark.postgres
def test_a_postgresql_dump_taken_while_serving_restores(tmp_path: Path) -> None:
    with postgres_database() as url, postgres_database() as restored_url:
        migrate(url)
        simple_site(url)
        dump = tmp_path / "adserver.dump"
        before, result = backup_while_serving(url, dump, tmp_path)
        assert result.returncode == 0, result.stderr
        restore = subprocess.run(
            ["pg_restore", "--no-owner", "--dbname", restored_url.replace("+psycopg", ""),
             str(dump)],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        assert restore.returncode == 0, restore.stderr
        assert before <= stored_decisions(restored_url) <= stored_decisions(url)
        env = adserver_env(restored_url, "http://127.0.0.1", tmp_path / "spool2")
        assert run_cli(env, "migrate").returncode == 0  # already at the newest revision
        server = AdserverProcess(["serve", "--port", "{port}"], env, tmp_path / "r.log").start()
        try:
            answer = httpx.get(f"{server.url}/v1/decide", params={"site": "news", "slots": "top"})
            assert answer.json()["decisions"]["top"] is not None
        finally:
            server.stop()


def test_an_upgrade_migrates_and_keeps_the_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'adserver.db'}"
    command.upgrade(alembic_config(url), "0001")  # a database of the first release
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO site (id, key, name, domains, timezone, currency, created_at) "
                "VALUES (1, 'news', 'News', '[\"127.0.0.1\"]', 'UTC', 'INR', '2026-01-01')"
            )
        )
        connection.execute(
            text("INSERT INTO slot (id, site_id, name, sizes) VALUES (1, 1, 'top', '[\"728x90\"]')")
        )
    engine.dispose()
    env = adserver_env(url, "http://127.0.0.1", tmp_path / "spool")

    refused = run_cli(env, "serve", "--port", str(free_port()))
    assert refused.returncode == 2
    assert "run `adserver migrate` first" in refused.stderr
    migrated = run_cli(env, "migrate")
    assert migrated.returncode == 0, migrated.stderr

    engine = make_engine(url)
    with Session(engine) as session:
        slot = session.get(Slot, 1)
        assert slot is not None and slot.status == "active"
        add_creative(session, add_campaign(session, [slot]))
        publish(session)
    engine.dispose()
    server = AdserverProcess(["serve", "--port", "{port}"], env, tmp_path / "s.log").start()
    try:
        answer = httpx.get(f"{server.url}/v1/decide", params={"site": "news", "slots": "top"})
        assert answer.json()["decisions"]["top"] is not None
    finally:
        server.stop()
