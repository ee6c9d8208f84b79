"""The GIL switch interval is short only while a request's work runs in a worker thread."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import httpx
import pytest

from adserver.core.switching import SHORT_S, QuickSwitches
from tests.conftest import LiveServer
from tests.factories import admin, api_client, created, server_engine  # noqa: F401


@pytest.fixture
def normal_interval() -> Iterator[float]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    yield 0.005
    sys.setswitchinterval(before)


def test_short_from_the_first_start_until_the_last_end(normal_interval: float) -> None:
    switches = QuickSwitches()
    first, second = switches.during(), switches.during()
    first.__enter__()
    assert sys.getswitchinterval() == SHORT_S
    second.__enter__()
    first.__exit__(None, None, None)
    assert sys.getswitchinterval() == SHORT_S, "the second is still under way"
    second.__exit__(None, None, None)
    assert sys.getswitchinterval() == normal_interval


def test_restored_when_the_work_fails(normal_interval: float) -> None:
    switches = QuickSwitches()
    with pytest.raises(RuntimeError), switches.during():
        raise RuntimeError("the write failed")
    assert sys.getswitchinterval() == normal_interval


def test_a_shorter_interval_is_kept() -> None:
    before = sys.getswitchinterval()
    sys.setswitchinterval(SHORT_S / 2)
    try:
        with QuickSwitches().during():
            assert sys.getswitchinterval() == SHORT_S / 2
    finally:
        sys.setswitchinterval(before)


def test_management_requests_leave_the_process_interval_as_it_was(
    live_server: LiveServer,
    admin: httpx.Client,  # noqa: F811
) -> None:
    """The live server runs in this process: its writes, reads and refusals must all give the
    interval back."""
    before = sys.getswitchinterval()
    made = created(admin.post("/v1/manage/advertisers", json={"name": "Acme"}))
    assert admin.patch(f"/v1/manage/advertisers/{made['id']}", json={"name": "Acme 2"}).is_success
    assert admin.get("/v1/manage/advertisers/999999").status_code == 404
    with api_client(live_server, "not-a-token") as stranger:
        assert stranger.get("/v1/manage/advertisers").status_code == 401
    assert sys.getswitchinterval() == before
