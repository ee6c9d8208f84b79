"""Reports made, archived and queued for mail: on schedule (the ``reports`` job) or on demand
(``adserver report``).

A scheduled report is built once per schedule and period: the archive row's unique index on
(schedule, period kind and start) is the claim, taken in the transaction queueing its messages,
so however many scheduler processes run, one report is archived and one message per recipient
is queued. A scheduler that was down at the hour finds the latest missed period when it starts
and sends it, marked late; earlier missed periods are not sent.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, insert, select

from adserver.config import Settings
from adserver.core.db import insert_for
from adserver.core.models import Advertiser, Report, ReportSchedule, Site, User, table
from adserver.notify.mail import Attachment, InlineImage, compose
from adserver.notify.optout import opted_out, unsubscribe_token
from adserver.notify.outbox import enqueue
from adserver.reporting.report_build import (
    ReportContent,
    build_advertiser_report,
    build_publisher_summary,
    default_timezone,
)
from adserver.reporting.report_chart import render_chart
from adserver.reporting.report_periods import (
    Occurrence,
    Period,
    last_complete_period,
    latest_occurrence,
    period_containing,
)
from adserver.reporting.report_render import render_html, render_text

log = logging.getLogger(__name__)

REPORTS = table(Report)
SCHEDULES = table(ReportSchedule)
#: A report built this long after its scheduled time says so ("late").
LATE_AFTER = timedelta(minutes=15)
#: Reports stored and committed together (each is built before the write begins).
BATCH = 25
CHART_CID = "chart"


@dataclass(frozen=True)
class Made:
    """A report archived (``id``), with the messages queued for it."""

    id: int
    title: str
    queued: int


def build_content(
    connection: Connection,
    settings: Settings,
    *,
    advertiser_id: int | None,
    period: Period,
    now: datetime,
) -> ReportContent:
    if advertiser_id is None:
        return build_publisher_summary(
            connection,
            period=period,
            now=now,
            base_url=settings.base_url,
            behind_margin=settings.pace_margin,
        )
    return build_advertiser_report(
        connection,
        advertiser_id=advertiser_id,
        period=period,
        now=now,
        base_url=settings.base_url,
    )


@dataclass(frozen=True)
class Prepared:
    """A report built and rendered, with its messages, ready to be stored in a short write."""

    values: dict[str, Any]
    messages: list[EmailMessage]
    kind: str
    title: str


def prepare_report(
    connection: Connection,
    settings: Settings,
    *,
    advertiser_id: int | None,
    period: Period,
    now: datetime,
    recipients: Sequence[str],
    schedule_id: int | None = None,
    late: bool = False,
    topic: str | None = None,
) -> Prepared:
    """Build and render a report and its messages: reads only, so that on SQLite the database's
    one writer (event intake included) never waits while reports are drawn. Messages carry an
    unsubscribe link for ``topic`` (default: the schedule's) and skip who switched it off."""
    content = build_content(
        connection, settings, advertiser_id=advertiser_id, period=period, now=now
    )
    chart = render_chart(content.series)
    data_uri = "data:image/png;base64," + base64.b64encode(chart).decode()
    values: dict[str, Any] = dict(
        schedule_id=schedule_id,
        advertiser_id=advertiser_id,
        period=period.kind,
        period_start=period.start.isoformat(),
        period_end=period.end.isoformat(),
        title=content.title,
        html=render_html(content, chart_src=data_uri),
        text=render_text(content),
        csv=content.csv,
        chart=chart,
        late=late,
        created_at=now,
    )
    if topic is None and schedule_id is not None:
        topic = f"schedule:{schedule_id}"
    skip = opted_out(connection, topic, recipients) if topic else set()
    # Scheduled: the same Message-ID for the same schedule, period and recipient, whichever
    # process made it. On demand (a deliberate resend): a new one each time.
    key = (
        f"{schedule_id}-{period.kind}-{period.start}"
        if schedule_id is not None
        else uuid.uuid4().hex[:16]
    )
    messages = [
        _message(settings, content, chart, key, address, topic, late)
        for address in dict.fromkeys(r.strip() for r in recipients if r.strip())
        if address.lower() not in skip
    ]
    kind = "summary" if advertiser_id is None else "report"
    return Prepared(values, messages, kind, content.title)


def store_report(connection: Connection, prepared: Prepared, *, now: datetime) -> Made | None:
    """Archive a prepared report and queue its messages, in the caller's (short) transaction;
    None when its schedule's report for that period exists already (another process made it)."""
    values = prepared.values
    if values["schedule_id"] is None:
        statement = insert(REPORTS).values(**values)
    else:
        statement = (
            insert_for(connection)(REPORTS)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["schedule_id", "period", "period_start"])
        )
    report_id = connection.execute(statement.returning(REPORTS.c.id)).scalar()
    if report_id is None:
        return None
    for message in prepared.messages:
        enqueue(connection, message, kind=prepared.kind, now=now, report_id=int(report_id))
    return Made(int(report_id), prepared.title, len(prepared.messages))


def make_report(
    connection: Connection,
    settings: Settings,
    *,
    advertiser_id: int | None,
    period: Period,
    now: datetime,
    recipients: Sequence[str],
    schedule_id: int | None = None,
    late: bool = False,
    topic: str | None = None,
) -> Made | None:
    """Prepare and store one report on one connection (see ``prepare_report``)."""
    prepared = prepare_report(
        connection,
        settings,
        advertiser_id=advertiser_id,
        period=period,
        now=now,
        recipients=recipients,
        schedule_id=schedule_id,
        late=late,
        topic=topic,
    )
    return store_report(connection, prepared, now=now)


def _message(
    settings: Settings,
    content: ReportContent,
    chart: bytes,
    key: str,
    address: str,
    topic: str | None,
    late: bool,
) -> EmailMessage:
    headers: dict[str, str] = {}
    unsubscribe = None
    if topic is not None:
        token = unsubscribe_token(settings.secret_key, address, topic)
        unsubscribe = f"{settings.base_url}/v1/unsubscribe/{token}"
        headers["List-Unsubscribe"] = f"<{unsubscribe}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    slug = re.sub(r"[^a-z0-9]+", "-", (content.advertiser_name or content.publisher).lower())
    digest = hashlib.sha256(address.lower().encode()).hexdigest()[:12]
    return compose(
        sender=settings.mail_from,
        to=[address],
        subject=content.title + (" (late)" if late else ""),
        text=render_text(content, unsubscribe_url=unsubscribe),
        html=render_html(content, chart_src=f"cid:{CHART_CID}", unsubscribe_url=unsubscribe),
        images=[InlineImage(CHART_CID, chart)],
        attachments=[
            Attachment(
                f"{slug.strip('-') or 'report'}-{content.period.start}-{content.period.end}.csv",
                content.csv.encode(),
                "text/csv",
            )
        ],
        headers=headers,
        message_id=f"<report-{key}.{digest}@{_mail_domain(settings)}>",
    )


def _mail_domain(settings: Settings) -> str:
    return urlsplit(settings.base_url).hostname or "localhost"


def recipients_for(
    connection: Connection, *, advertiser_id: int | None, listed: Sequence[str]
) -> list[str]:
    """The schedule's recipients; when it lists none, the advertiser's e-mail, or for the
    publisher's summary the sites' report addresses, else the active admin users."""
    if listed:
        return list(listed)
    if advertiser_id is not None:
        advertisers = table(Advertiser)
        email = connection.execute(
            select(advertisers.c.email).where(advertisers.c.id == advertiser_id)
        ).scalar()
        return [email] if email else []
    sites = table(Site)
    addresses = [
        str(a)
        for a in connection.execute(
            select(sites.c.report_email).where(sites.c.report_email.is_not(None))
        ).scalars()
        if a
    ]
    if addresses:
        return list(dict.fromkeys(addresses))
    users = table(User)
    return [
        str(a)
        for a in connection.execute(
            select(users.c.email)
            .where(users.c.role == "admin", users.c.active.is_(True))
            .order_by(users.c.id)
        ).scalars()
    ]


@dataclass(frozen=True)
class Due:
    """What a run of the ``reports`` job did."""

    built: int
    queued: int
    #: Reports that could not be built (each logged with its error); tried again next run.
    failed: int = 0

    def __str__(self) -> str:
        note = f"built {self.built} reports, queued {self.queued} messages"
        return note + (f"; {self.failed} failed" if self.failed else "")


def run_due_reports(engine: Engine, settings: Settings, *, now: datetime) -> Due:
    """The ``reports`` job: make each active schedule's latest due report that does not exist
    yet (late when its time is well past)."""
    with engine.connect() as connection:
        advertisers = table(Advertiser)
        archived = select(advertisers.c.id).where(advertisers.c.status == "archived")
        schedules = connection.execute(
            select(SCHEDULES)
            .where(
                SCHEDULES.c.active.is_(True),
                # An archived advertiser delivers nothing more: no more reports to say so.
                SCHEDULES.c.advertiser_id.is_(None)
                | SCHEDULES.c.advertiser_id.not_in(archived.scalar_subquery()),
            )
            .order_by(SCHEDULES.c.id)
        ).all()
        due = []
        for schedule in schedules:
            occurrence = latest_occurrence(
                period=schedule.period,
                hour=schedule.hour,
                zone=ZoneInfo(schedule.timezone),
                now=now,
                weekday=schedule.weekday,
                day=schedule.day,
            )
            if occurrence.due >= schedule.created_at:
                due.append((schedule, occurrence))
        made = {
            (int(r.schedule_id), str(r.period), str(r.period_start))
            for r in connection.execute(
                select(REPORTS.c.schedule_id, REPORTS.c.period, REPORTS.c.period_start).where(
                    REPORTS.c.schedule_id.in_([s.id for s, _ in due])
                )
            )
        }
    todo = [
        (schedule, occurrence)
        for schedule, occurrence in due
        if (int(schedule.id), occurrence.period.kind, occurrence.period.start.isoformat())
        not in made
    ]
    results: list[Made | None] = []
    failed = 0
    for start in range(0, len(todo), BATCH):
        group = todo[start : start + BATCH]
        prepared: list[Prepared] = []
        with engine.connect() as connection:  # drawing reports: reads only
            for schedule, occurrence in group:
                try:
                    prepared.append(_prepare(connection, settings, schedule, occurrence, now))
                except Exception:
                    # One report that cannot be built must not hold back the others.
                    log.exception("reports: schedule %s failed", schedule.id)
                    connection.rollback()
                    failed += 1
        with engine.begin() as connection:  # storing them: one short write, one commit
            results += [store_report(connection, p, now=now) for p in prepared]
    built = [r for r in results if r is not None]
    return Due(len(built), sum(r.queued for r in built), failed)


def _prepare(
    connection: Connection,
    settings: Settings,
    schedule: Any,
    occurrence: Occurrence,
    now: datetime,
) -> Prepared:
    return prepare_report(
        connection,
        settings,
        advertiser_id=schedule.advertiser_id,
        period=occurrence.period,
        now=now,
        recipients=recipients_for(
            connection, advertiser_id=schedule.advertiser_id, listed=schedule.recipients
        ),
        schedule_id=int(schedule.id),
        late=now - occurrence.due > LATE_AFTER,
    )


@dataclass(frozen=True)
class OnDemand:
    made: Made
    period: Period
    recipients: list[str]


def report_on_demand(
    engine: Engine,
    settings: Settings,
    *,
    advertiser: str | None,
    period_kind: str | None,
    day: date | None,
    send: bool,
    now: datetime,
) -> OnDemand:
    """``adserver report``: the period holding ``day`` (default: the last complete one in the
    schedule's zone) for ``advertiser`` (by name; None: the publisher's summary), archived; with
    ``send``, queued to the schedule's recipients (or the advertiser's e-mail without one),
    even if that period went out before. Raises LookupError for an unknown advertiser."""
    with engine.begin() as connection:
        advertiser_id = None
        if advertiser is not None:
            advertisers = table(Advertiser)
            advertiser_id = connection.execute(
                select(advertisers.c.id).where(advertisers.c.name == advertiser)
            ).scalar()
            if advertiser_id is None:
                raise LookupError(f"no advertiser named {advertiser!r}")
        condition = (
            SCHEDULES.c.advertiser_id.is_(None)
            if advertiser_id is None
            else SCHEDULES.c.advertiser_id == advertiser_id
        )
        schedule = connection.execute(
            select(SCHEDULES).where(condition).order_by(SCHEDULES.c.active.desc(), SCHEDULES.c.id)
        ).first()
        kind = period_kind or (
            schedule.period if schedule is not None else "day" if advertiser_id is None else "week"
        )
        zone = ZoneInfo(
            schedule.timezone
            if schedule is not None
            else default_timezone(connection, advertiser_id)
        )
        period = (
            period_containing(day, kind)
            if day is not None
            else last_complete_period(now.astimezone(zone).date(), kind)
        )
        recipients = (
            recipients_for(
                connection,
                advertiser_id=advertiser_id,
                listed=schedule.recipients if schedule is not None else [],
            )
            if send
            else []
        )
        made = make_report(
            connection,
            settings,
            advertiser_id=advertiser_id,
            period=period,
            now=now,
            recipients=recipients,
            topic=f"schedule:{schedule.id}" if schedule is not None else None,
        )
    assert made is not None  # made without a schedule's claim, it always is
    return OnDemand(made, period, recipients)
