"""Scheduled reports end to end: due times and periods in each site's own days, the figures
equal to /v1/stats for the same period (HTML, text and CSV), mail over a real SMTP server with
STARTTLS and login, one-click unsubscribe, the archive and its API."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import Engine, select, update

from adserver.config import Settings
from adserver.core.db import make_engine
from adserver.core.models import Advertiser, Outbox, Report, ReportSchedule, table
from adserver.notify.mail import Mailer
from adserver.notify.outbox import drain, prune
from adserver.notify.reports import run_due_reports
from adserver.reporting.report_periods import (
    last_complete_period,
    latest_occurrence,
    period_containing,
)
from adserver.reporting.report_render import money_text, number
from tests.conftest import LiveServer
from tests.factories import api_client, token
from tests.report_world import KOLKATA, add_schedule, seed, utc
from tests.smtp_server import SmtpServer, smtp_server

NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")


# -- periods and due times (pure) ---------------------------------------------------------


def test_periods_are_whole_calendar_periods() -> None:
    assert period_containing(date(2026, 3, 11), "week").start == date(2026, 3, 9)
    assert period_containing(date(2026, 3, 11), "week").end == date(2026, 3, 15)
    march = period_containing(date(2026, 3, 29), "month")
    assert (march.start, march.end) == (date(2026, 3, 1), date(2026, 3, 31))
    feb = last_complete_period(date(2028, 3, 1), "month")
    assert (feb.start, feb.end) == (date(2028, 2, 1), date(2028, 2, 29))
    assert last_complete_period(date(2026, 1, 1), "day").start == date(2025, 12, 31)
    assert last_complete_period(date(2026, 3, 16), "week").start == date(2026, 3, 9)


def test_weekly_kolkata_is_due_at_its_local_hour() -> None:
    def occurrence(now: Any) -> Any:
        return latest_occurrence(period="week", hour=9, zone=KOLKATA, now=now, weekday=0, day=None)

    # Monday 2026-03-16 09:00 in Kolkata is 03:30 UTC.
    before, after = occurrence(utc(2026, 3, 16, 3, 29)), occurrence(utc(2026, 3, 16, 3, 30))
    assert after.due == utc(2026, 3, 16, 3, 30)
    assert (after.period.start, after.period.end) == (date(2026, 3, 9), date(2026, 3, 15))
    assert before.due == utc(2026, 3, 9, 3, 30)
    assert before.period.start == date(2026, 3, 2)


def test_a_local_hour_that_does_not_exist_is_due_at_the_next_valid_time() -> None:
    # 02:00 does not happen in New York on 2026-03-08: clocks jump from 02:00 EST to 03:00 EDT.
    def occurrence(now: Any) -> Any:
        return latest_occurrence(
            period="day", hour=2, zone=NEW_YORK, now=now, weekday=None, day=None
        )

    assert occurrence(utc(2026, 3, 8, 6, 59)).period.start == date(2026, 3, 6)
    due = occurrence(utc(2026, 3, 8, 7, 0))
    assert due.due == utc(2026, 3, 8, 7, 0)  # 03:00 EDT, the first instant after the gap
    assert due.due.astimezone(NEW_YORK).hour == 3
    assert due.period.start == date(2026, 3, 7)
    # The next day, 02:00 EDT again.
    assert occurrence(utc(2026, 3, 9, 6, 0)).due == utc(2026, 3, 9, 6, 0)


def test_monthly_on_a_day_falls_back_to_the_previous_month() -> None:
    occurrence = latest_occurrence(
        period="month", hour=8, zone=LONDON, now=utc(2026, 4, 3, 6), weekday=None, day=5
    )
    assert occurrence.due == utc(2026, 3, 5, 8)
    assert occurrence.period.start == date(2026, 2, 1)
    summer = latest_occurrence(
        period="month", hour=8, zone=LONDON, now=utc(2026, 4, 5, 7), weekday=None, day=5
    )
    assert summer.due == utc(2026, 4, 5, 7)  # 08:00 BST
    assert (summer.period.start, summer.period.end) == (date(2026, 3, 1), date(2026, 3, 31))


# -- against /v1/stats over a real server --------------------------------------------------


@pytest.fixture
def world(live_server: LiveServer) -> Iterator[tuple[Engine, dict[str, int]]]:
    engine = make_engine(live_server.settings.database_url)
    ids = seed(engine)
    yield engine, ids
    engine.dispose()


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    with smtp_server(tmp_path, security="starttls") as server:
        yield server


def _stats(server: LiveServer, bearer: str, **params: str) -> httpx.Response:
    with api_client(server, bearer) as client:
        answer = client.get("/v1/stats", params=params)
    assert answer.status_code == 200, answer.text
    return answer


def _send(engine: Engine, server: LiveServer, smtp: SmtpServer, at: Any) -> str:
    mailer = Mailer.from_url(smtp.url(), ssl_context=smtp.client_context)
    settings = server.settings.with_changes(mail_from="ads@news.example")
    note = run_due_reports(engine, settings, now=at)
    drain(engine, mailer, holder="test", now=at)
    return str(note)


def _part(message: EmailMessage, subtype: str) -> str:
    body = message.get_body((subtype,))
    assert body is not None
    return str(body.get_content())


def test_weekly_report_mails_the_same_figures_as_stats(
    live_server: LiveServer, world: tuple[Engine, dict[str, int]], smtp: SmtpServer
) -> None:
    engine, ids = world
    add_schedule(
        engine,
        advertiser_id=ids["acme"],
        period="week",
        weekday=0,
        hour=9,
        timezone="Asia/Kolkata",
        recipients=["ann@acme.example", "bob@acme.example"],
    )
    note = _send(engine, live_server, smtp, utc(2026, 3, 16, 3, 31))
    assert note == "built 1 reports, queued 2 messages"
    messages = smtp.recorder.messages
    assert sorted(str(m["To"]) for m in messages) == ["ann@acme.example", "bob@acme.example"]
    ann = next(m for m in messages if m["To"] == "ann@acme.example")
    assert ann["From"] == "ads@news.example"
    assert str(ann["Subject"]) == "Acme: 9 Mar to 15 Mar 2026"

    # What the advertiser's own token reads from /v1/stats for that week.
    admin = token(engine, name="acme", advertiser_id=ids["acme"])
    period = {"from": "2026-03-09", "to": "2026-03-15", "advertiser": str(ids["acme"])}
    stats_csv = _stats(live_server, admin, by="day", format="csv", **period).text
    (attachment,) = list(ann.iter_attachments())
    assert attachment.get_filename() == "acme-2026-03-09-2026-03-15.csv"
    assert attachment.get_content() == stats_csv
    days = list(csv.DictReader(io.StringIO(stats_csv)))
    assert [d["day"] for d in days] == ["2026-03-09", "2026-03-12", "2026-03-15"]

    totals = _stats(live_server, admin, by="day", **period).json()["totals"]
    assert totals["impressions"] == 140  # not the Sunday before, nor the Monday after
    text, html = _part(ann, "plain"), _part(ann, "html")
    for figure in (
        number(totals["impressions"]),
        money_text(totals["spend"], "INR"),
        money_text(totals["ecpm"], "INR"),
        f"{totals['ctr'] * 100:.2f}%",
    ):
        assert figure in text
        assert figure in html
    for name in ("campaign", "slot", "creative"):
        rows = _stats(live_server, admin, by=name, **period).json()["rows"]
        for row in rows:
            label = row[f"{name}_name"]
            assert f"{label}" in text and f"{label}" in html
            assert number(row["impressions"]) in text
    # Invalid traffic: filtered out, its share stated.
    assert "10 invalid impressions (6.7% of all)" in text
    # The chart is an inline PNG the HTML part shows.
    assert 'src="cid:chart"' in html
    (chart,) = [p for p in ann.walk() if p.get("Content-ID") == "<chart>"]
    assert chart.get_content_type() == "image/png"
    assert chart.get_content()[:8] == b"\x89PNG\r\n\x1a\n"
    # The publisher's name and logo, and a link to the dashboard.
    assert 'src="https://delhi.example/logo.png"' in html and 'alt="Delhi Daily"' in html
    assert f"{live_server.url}/dashboard" in html
    # RFC 8058 one-click unsubscribe.
    assert ann["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert str(ann["List-Unsubscribe"]).startswith(f"<{live_server.url}/v1/unsubscribe/")

    # The archive has it once, with the same CSV, and the messages as sent.
    with engine.connect() as connection:
        reports = connection.execute(select(table(Report))).all()
        states = connection.execute(select(table(Outbox).c.status)).scalars().all()
    assert len(reports) == 1 and reports[0].csv == stats_csv and not reports[0].late
    assert states == ["sent", "sent"]

    # Running again in the same period builds and sends nothing more.
    assert _send(engine, live_server, smtp, utc(2026, 3, 16, 9)) == (
        "built 0 reports, queued 0 messages"
    )
    assert len(smtp.recorder.messages) == 2


def test_monthly_london_across_dst_shows_each_currency_apart(
    live_server: LiveServer, world: tuple[Engine, dict[str, int]], smtp: SmtpServer
) -> None:
    engine, ids = world
    add_schedule(
        engine,
        advertiser_id=ids["bolt"],
        period="month",
        day=1,
        hour=7,
        timezone="Europe/London",
        recipients=["kim@bolt.example"],
    )
    _send(engine, live_server, smtp, utc(2026, 4, 1, 6, 5))  # 07:05 BST on 1 April
    (message,) = smtp.recorder.messages
    assert str(message["Subject"]) == "Bolt: March 2026"
    admin = token(engine, name="bolt", advertiser_id=ids["bolt"])
    period = {"from": "2026-03-01", "to": "2026-03-31", "advertiser": str(ids["bolt"])}
    text = _part(message, "plain")
    attachment = next(message.iter_attachments()).get_content()
    for currency in ("GBP", "INR"):
        answer = _stats(live_server, admin, by="day", currency=currency, **period).json()
        assert f"Sites billed in {currency}" in text
        assert money_text(answer["totals"]["spend"], currency) in text
        for row in answer["rows"]:
            assert f"{row['day']},{row['impressions']}," in attachment.replace("\r\n", "\n")
    london = _stats(live_server, admin, by="day", currency="GBP", **period).json()
    # The whole of March in London, 23-hour day included; not 28 Feb nor 1 April.
    assert london["totals"]["impressions"] == 66
    assert "2026-03-29" in [row["day"] for row in london["rows"]]


def test_one_click_unsubscribe_pauses_that_recipient_only(
    live_server: LiveServer, world: tuple[Engine, dict[str, int]], smtp: SmtpServer
) -> None:
    engine, ids = world
    add_schedule(
        engine,
        advertiser_id=ids["acme"],
        period="day",
        hour=6,
        timezone="Asia/Kolkata",
        recipients=["ann@acme.example", "bob@acme.example"],
    )
    _send(engine, live_server, smtp, utc(2026, 3, 10, 1))
    ann = next(m for m in smtp.recorder.messages if m["To"] == "ann@acme.example")
    link = str(ann["List-Unsubscribe"]).strip("<>")
    with httpx.Client() as client:
        page = client.get(link)
        assert page.status_code == 200 and "ann@acme.example" in page.text
        assert client.get(link[:-2] + "xx").status_code == 404
        # The mail client's one-click POST: no session, no CSRF token, just the signed link.
        done = client.post(link, content="List-Unsubscribe=One-Click")
        assert done.status_code == 200 and "no more" in done.text
    _send(engine, live_server, smtp, utc(2026, 3, 11, 1))
    later = [str(m["To"]) for m in smtp.recorder.messages[2:]]
    assert later == ["bob@acme.example"]
    with api_client(live_server, token(engine)) as admin:
        (schedule,) = admin.get("/v1/manage/report-schedules").json()
    assert schedule["unsubscribed"] == ["ann@acme.example"]
    assert schedule["recipients"] == ["ann@acme.example", "bob@acme.example"]


def test_archive_api_scopes_reports_to_their_advertiser(
    live_server: LiveServer, world: tuple[Engine, dict[str, int]]
) -> None:
    engine, ids = world
    for advertiser in ("acme", "bolt"):
        add_schedule(
            engine, advertiser_id=ids[advertiser], period="week", weekday=0, hour=0,
            timezone="UTC", recipients=[f"x@{advertiser}.example"],
        )  # fmt: skip
    settings = live_server.settings  # no SMTP: archived, mail off
    run_due_reports(engine, settings, now=utc(2026, 3, 16, 1))
    assert drain(engine, Mailer.from_url(None), holder="t", now=utc(2026, 3, 16, 1)).off == 2
    acme_token = token(engine, name="acme", advertiser_id=ids["acme"])
    with (
        api_client(live_server, acme_token) as acme,
        api_client(live_server, token(engine)) as admin,
    ):
        everything = admin.get("/v1/reports").json()
        assert [r["advertiser"] for r in everything] == [ids["acme"], ids["bolt"]]
        assert everything[0]["mail"] == {"off": 1}
        own = acme.get("/v1/reports").json()
        assert [r["advertiser"] for r in own] == [ids["acme"]]
        assert acme.get("/v1/reports", params={"advertiser": ids["bolt"]}).status_code == 403
        bolt_id, acme_id = everything[1]["id"], everything[0]["id"]
        assert acme.get(f"/v1/reports/{bolt_id}.html").status_code == 404
        page = acme.get(f"/v1/reports/{acme_id}.html")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "data:image/png;base64," in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        download = acme.get(f"/v1/reports/{acme_id}.csv")
        assert download.headers["content-disposition"].endswith('.csv"')
        assert download.text.startswith("day,impressions,")
        assert acme.get(f"/v1/reports/{acme_id}.pdf").status_code == 404
        assert acme.get("/v1/reports").headers["cache-control"] == "private, no-store"


def test_a_daily_report_at_an_hour_the_dst_change_skips_is_made_once_at_the_next_valid_time(
    sqlite_url: str,
) -> None:
    engine = make_engine(sqlite_url)
    ids = seed(engine)
    add_schedule(
        engine, advertiser_id=ids["acme"], period="day", hour=2, timezone="America/New_York",
        recipients=["ann@acme.example"],
    )  # fmt: skip
    settings = Settings(database_url=sqlite_url, secret_key="s" * 20, base_url="https://a.example")
    made: dict[str, Any] = {}
    # Every ten minutes from 00:00 to 05:00 New York time on 2026-03-08 (EST, then EDT).
    for minute in range(0, 5 * 60 + 1, 10):
        at = utc(2026, 3, 8, 5) + timedelta(minutes=minute)
        run_due_reports(engine, settings, now=at)
        with engine.connect() as connection:
            for row in connection.execute(select(table(Report))):
                made.setdefault(row.period_start, at)
    engine.dispose()
    # The 7th's report is made once, at 07:00 UTC: 03:00 EDT, the first valid time after the
    # 02:00 that did not happen. (The 6th's was the latest due when the run began.)
    assert made == {"2026-03-06": utc(2026, 3, 8, 5), "2026-03-07": utc(2026, 3, 8, 7)}


def test_a_sites_logo_and_report_address_are_set_over_the_api(
    live_server: LiveServer, world: tuple[Engine, dict[str, int]]
) -> None:
    engine, _ = world
    with api_client(live_server, token(engine)) as admin:
        changed = admin.patch(
            "/v1/manage/sites/london",
            json={
                "logo_url": "https://london.example/logo.png",
                "report_email": "ed@london.example",
            },
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["logo_url"] == "https://london.example/logo.png"
        refused = admin.patch(
            "/v1/manage/sites/london", json={"logo_url": "http://x.example/l.png"}
        )
        assert refused.status_code == 422 and "logo_url" in refused.json()["fields"]
        cleared = admin.patch("/v1/manage/sites/london", json={"report_email": None})
        assert cleared.json()["report_email"] is None


def test_settled_messages_are_forgotten_after_the_retention_period(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    ids = seed(engine)
    for advertiser in ("acme", "bolt"):
        add_schedule(engine, advertiser_id=ids[advertiser], period="day", hour=0,
                     timezone="UTC", recipients=[f"x@{advertiser}.example"])  # fmt: skip
    settings = Settings(database_url=sqlite_url, secret_key="s" * 20, base_url="https://a.example")
    at = utc(2026, 3, 10, 1)
    run_due_reports(engine, settings, now=at)
    drain(engine, Mailer.from_url(None), holder="t", now=at, report_id=1)  # the other waits
    assert prune(engine, now=at + timedelta(days=89), keep_days=90) == 0
    assert prune(engine, now=at + timedelta(days=91), keep_days=90) == 1
    with engine.connect() as connection:
        assert connection.execute(select(table(Outbox).c.status)).scalars().all() == ["pending"]
        assert len(connection.execute(select(table(Report).c.id)).all()) == 2  # reports stay
    engine.dispose()


def test_a_schedule_changed_from_weekly_to_monthly_still_sends_the_month(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    ids = seed(engine)
    schedule = add_schedule(engine, advertiser_id=ids["acme"], period="week", weekday=0,
                            hour=0, timezone="UTC", recipients=["ann@acme.example"])  # fmt: skip
    settings = Settings(database_url=sqlite_url, secret_key="s" * 20, base_url="https://a.example")
    # The week of Monday 1 June 2026 is reported on the 8th; then the schedule becomes monthly,
    # and June, which also starts on Monday the 1st, is due on 1 July.
    run_due_reports(engine, settings, now=utc(2026, 6, 8, 1))
    with engine.begin() as connection:
        connection.execute(
            update(table(ReportSchedule))
            .where(table(ReportSchedule).c.id == schedule)
            .values(period="month", weekday=None, day=1)
        )
    assert run_due_reports(engine, settings, now=utc(2026, 7, 1, 1)).built == 1
    with engine.connect() as connection:
        made = connection.execute(
            select(table(Report).c.period, table(Report).c.period_start).order_by(
                table(Report).c.id
            )
        ).all()
    engine.dispose()
    assert [tuple(r) for r in made] == [("week", "2026-06-01"), ("month", "2026-06-01")]


def test_an_archived_advertisers_schedule_sends_nothing_more(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    ids = seed(engine)
    for advertiser in ("acme", "bolt"):
        add_schedule(engine, advertiser_id=ids[advertiser], period="day", hour=0,
                     timezone="UTC", recipients=[f"x@{advertiser}.example"])  # fmt: skip
    add_schedule(engine, advertiser_id=None, period="day", hour=0, timezone="UTC",
                 recipients=["owner@news.example"])  # fmt: skip
    with engine.begin() as connection:
        connection.execute(
            update(table(Advertiser))
            .where(table(Advertiser).c.id == ids["bolt"])
            .values(status="archived")
        )
    settings = Settings(database_url=sqlite_url, secret_key="s" * 20, base_url="https://a.example")
    assert run_due_reports(engine, settings, now=utc(2026, 3, 10, 1)).built == 2
    with engine.connect() as connection:
        made = set(connection.execute(select(table(Report).c.advertiser_id)).scalars())
    engine.dispose()
    assert made == {ids["acme"], None}
