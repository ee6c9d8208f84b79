"""A write through the management API is served within 2 s by another running process: the
write bumps the inventory version in its transaction, and every process polls it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from adserver.core.db import make_engine, migrate
from adserver.delivery import inventory
from tests.conftest import bound_socket, make_settings, postgres_database, start_server
from tests.factories import (
    api_client,
    inventory_through_api,
    make_creative,
    token,
)
from tests.processes import AdserverProcess, adserver_env
from tests.waiting import wait_for

pytestmark = pytest.mark.postgres


def decision(url: str) -> Any:
    answer = httpx.get(f"{url}/v1/decide", params={"site": "news", "slots": "top"}, timeout=5)
    if answer.status_code == 404:
        return None
    assert answer.status_code == 200, answer.text
    return answer.json()["decisions"]["top"]


def seconds_until(condition: Any, what: str) -> float:
    """How long after now ``condition`` holds (failing after 2 s)."""
    started = time.monotonic()
    wait_for(condition, what, seconds=2)
    return time.monotonic() - started


def test_a_new_or_edited_campaign_is_served_within_2_s_by_a_second_process(
    tmp_path: Path,
) -> None:
    with postgres_database() as database_url:
        migrate(database_url)
        sock = bound_socket()
        first = start_server(
            make_settings(database_url, sock.getsockname()[1], tmp_path / "spool-1"), sock
        )
        env = adserver_env(database_url, "http://127.0.0.1", tmp_path / "spool-2")
        second = AdserverProcess(["serve", "--port", "{port}"], env, tmp_path / "second.log")
        engine = make_engine(database_url)
        try:
            second.start()
            with api_client(first, token(engine)) as admin:
                ids = inventory_through_api(admin, servers=(first.url, second.url))
                took = seconds_until(lambda: decision(second.url), "the new campaign")
                assert decision(second.url)["campaign"] == ids["campaign"]

                url = f"/v1/manage/campaigns/{ids['campaign']}"
                assert admin.patch(url, json={"status": "paused"}).status_code == 200
                paused = seconds_until(lambda: decision(second.url) is None, "the pause")

                with engine.begin() as connection:  # the service layer, as the pages call it
                    extra = make_creative(connection, campaign=ids["campaign"], name="Second")
                admin.patch(f"/v1/manage/creatives/{ids['creative']}", json={"status": "paused"})
                admin.patch(url, json={"status": "active"})
                resumed = seconds_until(
                    lambda: (d := decision(second.url)) and d["creative"] == extra.id,
                    "the edited campaign with its new creative",
                )
            assert max(took, paused, resumed) < 2
        finally:
            second.stop()
            first.stop()
            sock.close()
            engine.dispose()


def test_a_new_slot_with_a_campaign_serves_within_2_s_while_a_full_rebuild_rests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with postgres_database() as database_url:
        migrate(database_url)
        engine = make_engine(database_url)
        bearer = token(engine)
        sock = bound_socket()
        # The server's first build rests as if it had taken a day's worth of its share: any
        # full rebuild after it waits far beyond this test. Patches rest by their own CPU.
        monkeypatch.setattr(inventory, "REBUILD_SHARE", 1e-7)
        server = start_server(
            make_settings(database_url, sock.getsockname()[1], tmp_path / "spool"), sock
        )
        monkeypatch.undo()
        try:
            with api_client(server, bearer) as admin:
                started = time.monotonic()
                ids = inventory_through_api(admin)
                wait_for(
                    lambda: (d := decision(server.url)) and d["campaign"] == ids["campaign"],
                    "the new slot's campaign",
                    seconds=2,
                )
                took = time.monotonic() - started
                health = admin.get("/healthz").json()["inventory"]
            assert took < 2
            # Served by patches alone: the only full rebuild is the server's first.
            assert health["rebuilds"] == 1
            assert health["patches"] >= 1
        finally:
            server.stop()
            sock.close()
            engine.dispose()
