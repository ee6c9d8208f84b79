"""The report archive, read back: lists of reports and each one's HTML and CSV, with what became
of its messages. An advertiser sees only its own reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field
from sqlalchemy import Connection, func, select

from adserver.core.models import Outbox, Report, table
from adserver.services.common import Public
from adserver.services.errors import Forbidden, NotFound
from adserver.services.paging import Page, PageQuery, fetch_page

REPORTS = table(Report)
OUTBOX = table(Outbox)


class ReportQuery(PageQuery):
    advertiser: int | None = Field(default=None, ge=1)
    #: ``true``: only the publisher's summaries (reports of no advertiser).
    publisher: bool | None = None


class ReportPublic(Public):
    id: int
    advertiser: int | None
    schedule: int | None
    title: str
    period: str
    start: str
    end: str
    late: bool
    created_at: datetime
    #: Messages queued for it by state: sent, pending, sending, failed, off.
    mail: dict[str, int]
    html_url: str
    csv_url: str


def _columns() -> list[Any]:
    return [
        REPORTS.c.id,
        REPORTS.c.advertiser_id,
        REPORTS.c.schedule_id,
        REPORTS.c.title,
        REPORTS.c.period,
        REPORTS.c.period_start,
        REPORTS.c.period_end,
        REPORTS.c.late,
        REPORTS.c.created_at,
    ]


def _public(row: Any, mail: dict[str, int]) -> ReportPublic:
    return ReportPublic(
        id=row.id,
        advertiser=row.advertiser_id,
        schedule=row.schedule_id,
        title=row.title,
        period=row.period,
        start=row.period_start,
        end=row.period_end,
        late=row.late,
        created_at=row.created_at,
        mail=mail,
        html_url=f"/v1/reports/{row.id}.html",
        csv_url=f"/v1/reports/{row.id}.csv",
    )


def _mail_states(connection: Connection, ids: list[int]) -> dict[int, dict[str, int]]:
    states: dict[int, dict[str, int]] = {i: {} for i in ids}
    if ids:
        for report_id, status, count in connection.execute(
            select(OUTBOX.c.report_id, OUTBOX.c.status, func.count())
            .where(OUTBOX.c.report_id.in_(ids))
            .group_by(OUTBOX.c.report_id, OUTBOX.c.status)
        ):
            states[int(report_id)][str(status)] = int(count)
    return states


def list_reports(
    connection: Connection, *, query: ReportQuery, scope: int | None = None
) -> Page[ReportPublic]:
    """Archived reports by id; ``scope`` (an advertiser's token) limits them to its own."""
    statement = select(*_columns())
    advertiser = query.advertiser
    if scope is not None:
        if advertiser is not None and advertiser != scope:
            raise Forbidden("this token may read only its own advertiser's reports")
        advertiser = scope
    if advertiser is not None:
        statement = statement.where(REPORTS.c.advertiser_id == advertiser)
    elif query.publisher:
        statement = statement.where(REPORTS.c.advertiser_id.is_(None))
    page = fetch_page(
        connection,
        statement,
        REPORTS.c.id,
        limit=query.limit,
        after=query.after,
        build=lambda row: row,
    )
    states = _mail_states(connection, [int(r.id) for r in page.items])
    return Page([_public(r, states[int(r.id)]) for r in page.items], page.next_after)


def report_body(
    connection: Connection, *, report_id: int, kind: str, scope: int | None = None
) -> tuple[str, str]:
    """(file name, content) of a report's ``html`` or ``csv``; NotFound for another
    advertiser's report, as for one that does not exist."""
    row = connection.execute(
        select(
            REPORTS.c.advertiser_id,
            REPORTS.c.period_start,
            REPORTS.c.period_end,
            REPORTS.c[kind],
        ).where(REPORTS.c.id == report_id)
    ).first()
    if row is None or (scope is not None and row.advertiser_id != scope):
        raise NotFound("no such report")
    return f"report-{report_id}-{row.period_start}-{row.period_end}.{kind}", str(row[3])


def recent_reports(
    connection: Connection, *, scope: int | None, limit: int = 20
) -> list[ReportPublic]:
    """The newest reports first, for the pages."""
    statement = select(*_columns()).order_by(REPORTS.c.id.desc()).limit(limit)
    if scope is not None:
        statement = statement.where(REPORTS.c.advertiser_id == scope)
    rows = connection.execute(statement).all()
    states = _mail_states(connection, [int(r.id) for r in rows])
    return [_public(r, states[int(r.id)]) for r in rows]


class MailProblem(Public):
    """A message that did not go out: refused for good (``failed``) or still being retried
    (``pending`` with a reason)."""

    id: int
    kind: str
    subject: str
    recipients: list[str]
    status: str
    attempts: int
    detail: str | None
    created_at: datetime


def mail_problems(connection: Connection, *, limit: int = 20) -> list[MailProblem]:
    """The newest messages refused for good or waiting after a temporary failure."""
    rows = connection.execute(
        select(OUTBOX)
        .where(
            (OUTBOX.c.status == "failed")
            | ((OUTBOX.c.status == "pending") & OUTBOX.c.detail.is_not(None))
        )
        .order_by(OUTBOX.c.id.desc())
        .limit(limit)
    ).all()
    return [
        MailProblem(
            id=row.id,
            kind=row.kind,
            subject=row.subject,
            recipients=list(row.recipients),
            status=row.status,
            attempts=row.attempts,
            detail=row.detail,
            created_at=row.created_at,
        )
        for row in rows
    ]
