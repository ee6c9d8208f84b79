"""/admin, the publisher's overview: today and this month by site and slot as /v1/stats gives
them, campaigns behind pace, ending soon or unable to deliver, creatives waiting for approval;
for admins only."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import Engine, insert
from sqlmodel import Session

from adserver.accounts.passwords import hash_password
from adserver.core.clock import local_hour_start
from adserver.core.models import User, table
from adserver.delivery.pacing import refresh_delivery
from adserver.reporting.overview import build_overview
from tests.accounts_helpers import PASSWORD, login
from tests.conftest import LiveServer
from tests.factories import api_client, token
from tests.seed import add_campaign, add_creative, add_hourly, add_site, add_slot, publish
from tests.test_stats import stat

KOLKATA = ZoneInfo("Asia/Kolkata")


def seed(engine: Engine, now: datetime) -> dict[str, int]:
    """Two sites (London, Kolkata), campaigns in every state the overview tells apart, and
    statistics today and earlier this month."""

    def wall(zone: ZoneInfo) -> datetime:
        return now.astimezone(zone).replace(tzinfo=None)

    # Flight times are each site's wall clock: London for "top", Kolkata for "box".
    local, london = wall(KOLKATA), wall(ZoneInfo("Europe/London"))
    with Session(engine) as session:
        news = add_site(session, key="news", timezone="Europe/London")
        delhi = add_site(session, key="delhi", timezone="Asia/Kolkata")
        top = add_slot(session, news, "top", ["728x90"])
        box = add_slot(session, delhi, "box", ["300x250"])
        behind = add_campaign(
            session,
            [top],
            advertiser="Acme",
            name="Slow spring sale",
            goal_kind="impressions",
            goal_total=10_000,
            starts_at=london - timedelta(days=10),
            ends_at=london + timedelta(days=10),
        )
        add_creative(session, behind)
        on_pace = add_campaign(
            session,
            [box],
            advertiser="Bolt",
            name="Bolt on pace",
            goal_kind="impressions",
            goal_total=100,
            starts_at=local - timedelta(days=1),
            ends_at=local + timedelta(days=3),
            price_micros=2_000_000,
        )
        add_creative(session, on_pace, width=300, height=250)
        add_creative(session, on_pace, name="new banner", width=300, height=250, status="pending")
        nowhere = add_campaign(session, [], advertiser="Acme", name="No slot at all")
        add_creative(session, nowhere)
        misfit = add_campaign(session, [box], advertiser="Acme", name="Wrong size")
        add_creative(session, misfit, width=728, height=90)
        bare = add_campaign(session, [top], advertiser="Acme", name="No creative")
        over = add_campaign(
            session,
            [top],
            advertiser="Acme",
            name="Already over",
            ends_at=local - timedelta(days=1),
        )
        add_creative(session, over)
        publish(session)
        ids = {
            "news": news.id,
            "delhi": delhi.id,
            "top": top.id,
            "box": box.id,
            "behind": behind.id,
            "on_pace": on_pace.id,
            "nowhere": nowhere.id,
            "misfit": misfit.id,
            "bare": bare.id,
            "over": over.id,
        }
    i = {k: int(v or 0) for k, v in ids.items()}
    london_now = local_hour_start(now.timestamp(), ZoneInfo("Europe/London"))
    delhi_now = local_hour_start(now.timestamp(), KOLKATA)
    rows = [
        stat(london_now, i["news"], i["top"], requests=200),
        stat(london_now, i["news"], i["top"], i["behind"], 1, served=150, impressions=100),
        stat(delhi_now, i["delhi"], i["box"], requests=400),
        stat(
            delhi_now,
            i["delhi"],
            i["box"],
            i["on_pace"],
            2,
            served=300,
            impressions=250,
            viewable=200,
            clicks=5,
            invalid_impressions=50,
            spend_nanos=250 * 2_000_000,
        ),
    ]
    if now.astimezone(KOLKATA).day > 2 and now.astimezone(ZoneInfo("Europe/London")).day > 2:
        earlier = now - timedelta(days=1, hours=12)
        rows.append(
            stat(
                local_hour_start(earlier.timestamp(), KOLKATA),
                i["delhi"],
                i["box"],
                i["on_pace"],
                2,
                served=10,
                impressions=10,
            )
        )
    with engine.begin() as connection:
        add_hourly(connection, rows)
    refresh_delivery(engine, now=now.timestamp())
    return i


def test_the_overview_sorts_campaigns_into_what_needs_a_look(engine: Engine) -> None:
    now = datetime.now(UTC)
    ids = seed(engine, now)
    with engine.connect() as connection:
        overview = build_overview(connection, now=now)
    assert [n.id for n in overview.behind] == [ids["behind"]]
    assert overview.behind[0].pace is not None and overview.behind[0].pace.delivered == 100
    assert overview.behind[0].pace.expected == 5000
    assert [n.id for n in overview.ending] == [ids["on_pace"]]
    reasons = {n.id: n.reason for n in overview.unable}
    assert reasons == {
        ids["nowhere"]: "no slot",
        ids["misfit"]: "no creative fits its slots",
        ids["bare"]: "no active creative",
        ids["over"]: "its end has passed",
    }
    assert overview.pending_count == 1 and overview.pending[0].name == "new banner"
    today, month = overview.totals["USD"]
    assert today.impressions == 350 and today.clicks == 5
    assert today.fill_rate is not None and str(today.fill_rate) == "75.00"  # 450 / 600
    assert str(today.invalid_share) == "12.50"  # 50 / 400
    assert month.impressions >= today.impressions
    lines = {(line.site_key, line.slot): line for line in overview.lines}
    assert lines[("delhi", "box")].today.revenue == "0.50"
    assert str(lines[("delhi", "box")].today.viewable) == "80.00"


def test_the_admin_sees_the_figures_v1_stats_gives(live_server: LiveServer, engine: Engine) -> None:
    now = datetime.now(UTC)
    seed(engine, now)
    hashed = hash_password(PASSWORD)
    with engine.begin() as connection:
        connection.execute(
            insert(table(User)),
            [
                {"email": "ops@example.com", "role": "admin", "password_hash": hashed},
                {"email": "buyer@acme.test", "role": "advertiser", "password_hash": hashed},
            ],
        )
    day = now.astimezone(KOLKATA).date().isoformat()
    with api_client(live_server, token(engine)) as api:
        stats = api.get(
            "/v1/stats", params={"from": day, "to": day, "by": "site,slot", "site": "delhi"}
        ).json()
    with live_server.client() as client:
        assert client.get("/admin", follow_redirects=False).status_code == 303
        assert login(client, "ops@example.com").status_code == 303
        page = client.get("/admin")
        assert page.status_code == 200, page.text
        row = re.search(r"<tr>\s*<td><a href=\"/admin/sites/delhi\">.*?</tr>", page.text, re.S)
        assert row is not None
        cells = [
            re.sub(r"<[^>]+>", "", c).strip()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(0), re.S)
        ]
        figures = stats["rows"][0]
        assert cells[2] == f"{figures['impressions']:,}"
        assert cells[4] == str(figures["clicks"])
        assert cells[5] == f"{figures['spend']} USD"
        for name in ("Slow spring sale", "Wrong size", "No slot at all", "new banner"):
            assert name in page.text
    with live_server.client() as client:
        assert login(client, "buyer@acme.test").status_code == 303
        assert client.get("/admin").status_code == 403
    with httpx.Client() as anyone:
        assert anyone.get(live_server.url + "/admin", follow_redirects=False).status_code == 303


def test_an_empty_database_has_an_overview_that_says_so(engine: Engine) -> None:
    started = time.perf_counter()
    with engine.connect() as connection:
        overview = build_overview(connection, now=datetime.now(UTC))
    assert overview.totals == {} and overview.lines == [] and overview.pending_count == 0
    assert time.perf_counter() - started < 5
