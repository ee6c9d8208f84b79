"""The hourly statistics' upserts."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, text

from adserver.reporting.hourly import add_invalid
from tests.seed import add_hourly


def utc(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())  # type: ignore[misc]


def test_add_hourly_and_add_invalid_accumulate(engine: Engine) -> None:
    key = {"hour": utc(2026, 1, 1), "site_id": 1, "slot_id": 2, "campaign_id": 3, "creative_id": 4}
    other = {**key, "creative_id": 5}
    with engine.begin() as connection:
        add_hourly(connection, [{**key, "requests": 2, "served": 1}])
        add_hourly(connection, [{**key, "served": 4, "impressions": 3}, {**other, "requests": 1}])
        add_invalid(connection, [{**key, "kind": "imp", "reason": "bot", "count": 2}])
        add_invalid(
            connection,
            [
                {**key, "kind": "imp", "reason": "bot", "count": 1},
                {**key, "kind": "click", "reason": "bot", "count": 1},
            ],
        )
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT creative_id, requests, served, impressions, clicks FROM hourly_stat "
                "ORDER BY creative_id"
            )
        ).all()
        invalid = connection.execute(
            text("SELECT kind, reason, count FROM invalid_stat ORDER BY kind")
        ).all()
    assert [tuple(r) for r in rows] == [(4, 2, 5, 3, 0), (5, 1, 0, 0, 0)]
    assert [tuple(r) for r in invalid] == [("click", "bot", 1), ("imp", "bot", 3)]
