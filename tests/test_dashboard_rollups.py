"""The daily rollups always agree with the hourly statistics they sum.

They are written with the hourly rows (by the counters flush and the tally alike), rebuilt for a
site whose time zone changed, and filled by the migration for statistics that came before them;
/v1/stats reads them for whole days and must give what the hours give.
"""

from __future__ import annotations

import random
from datetime import date
from typing import Any

from alembic import command
from sqlalchemy import Engine, text, update

from adserver.core.db import alembic_config, make_engine
from adserver.core.models import Site, table
from adserver.reporting.hourly import add_invalid
from adserver.reporting.rollups import disagreements, rebuild
from adserver.reporting.stats import Figures, StatsQuery, run_stats
from tests.conftest import LiveServer
from tests.factories import api_client, token
from tests.seed import add_hourly
from tests.test_stats import KOLKATA, LONDON, hour, seed_world, stat

Rows = dict[tuple[Any, ...], dict[str, Any]]


def by_day_from_hours(engine: Engine, start: date, end: date) -> Rows:
    """Per (day, site, campaign) figures summed from the hourly rows (``by`` with hour)."""
    query = StatsQuery(start=start, end=end, by=("hour", "day", "site", "campaign"))
    with engine.connect() as connection:
        result = run_stats(connection, query)
    folded: dict[tuple[Any, ...], Figures] = {}
    for (_hour, *key), figures in result.rows:
        folded.setdefault(tuple(key), Figures()).add(figures)
    return {k: v.as_dict(delivery_counts=True) for k, v in folded.items()}


def by_day_from_days(engine: Engine, start: date, end: date) -> Rows:
    query = StatsQuery(start=start, end=end, by=("day", "site", "campaign"))
    with engine.connect() as connection:
        result = run_stats(connection, query)
    return {key: figures.as_dict(delivery_counts=True) for key, figures in result.rows}


def random_traffic(engine: Engine, ids: dict[str, int], seed: int) -> None:
    """Hourly and invalid rows at random hours of March 2026 in both sites' zones, written in
    several transactions like flushes and tally batches."""
    rng = random.Random(seed)
    places = [
        ("delhi", KOLKATA, "top", "a1", "c1"),
        ("delhi", KOLKATA, "side", "b1", "c3"),
        ("london", LONDON, "ltop", "a2", "c2"),
    ]
    for _batch in range(5):
        rows, invalid = [], []
        for _ in range(40):
            site, zone, slot, campaign, creative = rng.choice(places)
            at = hour(zone, 2026, 3, rng.randint(1, 31), rng.randint(0, 23))
            n = rng.randint(1, 50)
            rows.append(stat(at, ids[site], ids[slot], requests=n))
            rows.append(
                stat(
                    at,
                    ids[site],
                    ids[slot],
                    ids[campaign],
                    ids[creative],
                    served=n,
                    impressions=n - 1,
                    viewable=n // 2,
                    clicks=n // 10,
                    spend_nanos=n * 1_000_000,
                )
            )
            invalid.append(
                {**stat(at, ids[site], ids[slot], ids[campaign], ids[creative]), "kind": "imp"}
                | {"reason": rng.choice(["bot", "duplicate"]), "count": rng.randint(1, 3)}
            )
        with engine.begin() as connection:
            add_hourly(connection, rows)
            add_invalid(connection, invalid)


def test_rollups_written_with_the_hours_agree_with_them(engine: Engine) -> None:
    ids = seed_world(engine)
    random_traffic(engine, ids, seed=7)
    with engine.connect() as connection:
        assert disagreements(connection) == []
        daily = connection.execute(text("SELECT count(*) FROM daily_stat")).scalar_one()
        hourly = connection.execute(text("SELECT count(*) FROM hourly_stat")).scalar_one()
    assert 0 < daily < hourly
    start, end = date(2026, 3, 1), date(2026, 3, 31)
    from_days = by_day_from_days(engine, start, end)
    assert from_days == by_day_from_hours(engine, start, end)
    assert any(row["invalid"] for row in from_days.values())


def test_a_changed_time_zone_is_rebuilt_into_its_new_days(engine: Engine) -> None:
    ids = seed_world(engine)
    random_traffic(engine, ids, seed=8)
    with engine.begin() as connection:
        connection.execute(
            update(table(Site)).where(table(Site).c.id == ids["london"]).values(timezone="UTC")
        )
    with engine.connect() as connection:
        # The London hours now fall into UTC days: the rollups of that site are stale ...
        assert any("site " + str(ids["london"]) in d for d in disagreements(connection))
    with engine.begin() as connection:
        rebuild(connection, [ids["london"]])
    with engine.connect() as connection:
        assert disagreements(connection) == []
    start, end = date(2026, 3, 1), date(2026, 3, 31)
    assert by_day_from_days(engine, start, end) == by_day_from_hours(engine, start, end)


def test_rebuilding_everything_gives_the_same_rollups(engine: Engine) -> None:
    ids = seed_world(engine)
    random_traffic(engine, ids, seed=9)
    with engine.connect() as connection:
        before = connection.execute(text("SELECT * FROM daily_stat ORDER BY 1, 2, 3, 4, 5")).all()
    with engine.begin() as connection:
        rebuild(connection)
    with engine.connect() as connection:
        after = connection.execute(text("SELECT * FROM daily_stat ORDER BY 1, 2, 3, 4, 5")).all()
        assert disagreements(connection) == []
    assert before == after


def test_the_migration_fills_the_rollups_of_statistics_kept_before_it(database_url: str) -> None:
    config = alembic_config(database_url)
    command.downgrade(config, "0002")
    engine = make_engine(database_url)
    try:
        # Plain SQL: the schema is as it was at 0002, not as the models are now.
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO site (id, key, name, domains, timezone, currency, status, "
                    "created_at, updated_at) VALUES (1, 'delhi', 'Delhi', '[]', 'Asia/Kolkata', "
                    "'INR', 'active', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                )
            )
        ids = (1, 2, 3, 4)
        with engine.begin() as connection:
            for day, local_hour in ((10, 0), (10, 23), (11, 3)):
                at = hour(KOLKATA, 2026, 3, day, local_hour)
                connection.execute(
                    text(
                        "INSERT INTO hourly_stat VALUES "
                        "(:h, :s, :l, :c, :k, 5, 4, 3, 2, 1, 0, 0, 0, 3000)"
                    ),
                    dict(zip("hslck", (at, *ids), strict=True)),
                )
                connection.execute(
                    text("INSERT INTO invalid_stat VALUES (:h, :s, :l, :c, :k, 'imp', 'bot', 2)"),
                    dict(zip("hslck", (at, *ids), strict=True)),
                )
        command.upgrade(config, "head")
        with engine.connect() as connection:
            assert disagreements(connection) == []
            days = connection.execute(
                text("SELECT day, impressions FROM daily_stat ORDER BY day")
            ).all()
            invalid = connection.execute(
                text("SELECT day, count FROM invalid_daily ORDER BY day")
            ).all()
        assert [tuple(r) for r in days] == [("2026-03-10", 6), ("2026-03-11", 3)]
        assert [tuple(r) for r in invalid] == [("2026-03-10", 4), ("2026-03-11", 2)]
    finally:
        engine.dispose()


def test_a_site_moved_to_another_zone_through_the_api_keeps_its_rollups_true(
    live_server: LiveServer, engine: Engine
) -> None:
    ids = seed_world(engine)
    random_traffic(engine, ids, seed=10)
    with api_client(live_server, token(engine)) as admin:
        answer = admin.patch("/v1/manage/sites/london", json={"timezone": "America/New_York"})
        assert answer.status_code == 200, answer.text
    with engine.connect() as connection:
        assert disagreements(connection) == []
    start, end = date(2026, 3, 1), date(2026, 3, 31)
    assert by_day_from_days(engine, start, end) == by_day_from_hours(engine, start, end)
