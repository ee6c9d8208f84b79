"""Report schedules: when an advertiser's report (or, with no advertiser, the publisher's
summary) goes out, and to whom.

An admin manages every schedule; an advertiser reads its own and changes only their
recipients. The time zone defaults to that of the advertiser's first site (the first site for
the publisher's summary). A recipient who used a report's one-click unsubscribe link is listed
under ``unsubscribed`` and gets no more of that schedule's reports; naming the address again
in ``recipients`` after removing it subscribes it again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator
from sqlalchemy import Connection, delete, insert, select

from adserver.core.models import Advertiser, MailOptOut, Report, ReportSchedule, table
from adserver.notify.optout import opt_in
from adserver.reporting.report_build import default_timezone
from adserver.services import history
from adserver.services.common import (
    Actor,
    Email,
    Public,
    Removal,
    Schema,
    TimeZone,
    check_version,
    fetch_row,
    history_view,
    inserted_id,
    named,
    write_version,
)
from adserver.services.errors import Forbidden, NotFound, ServiceError, invalid
from adserver.services.paging import Page, PageQuery, fetch_page

SCHEDULES = table(ReportSchedule)
OPTOUTS = table(MailOptOut)
ENTITY = "report_schedule"
Period = Literal["day", "week", "month"]
Recipients = list[Email]


class ScheduleCreate(Schema):
    nullable = frozenset({"advertiser", "weekday", "day", "timezone"})

    advertiser: int | None = Field(default=None, ge=1)
    period: Period = "week"
    weekday: int | None = Field(default=None, ge=0, le=6)
    day: int | None = Field(default=None, ge=1, le=28)
    hour: int = Field(default=8, ge=0, le=23)
    timezone: TimeZone | None = None
    recipients: Recipients = Field(default_factory=list, max_length=50)
    active: bool = True

    @model_validator(mode="after")
    def _period_fields(self) -> ScheduleCreate:
        _check_period(self.period, self.weekday, self.day)
        return self


class ScheduleUpdate(Schema):
    immutable = frozenset({"advertiser"})
    nullable = frozenset({"weekday", "day"})

    period: Period | None = None
    weekday: int | None = Field(default=None, ge=0, le=6)
    day: int | None = Field(default=None, ge=1, le=28)
    hour: int | None = Field(default=None, ge=0, le=23)
    timezone: TimeZone | None = None
    recipients: Recipients | None = Field(default=None, max_length=50)
    active: bool | None = None


class SchedulePublic(Public):
    id: int
    advertiser: int | None
    period: str
    weekday: int | None
    day: int | None
    hour: int
    timezone: str
    recipients: list[str]
    #: Recipients who switched this report off with its unsubscribe link.
    unsubscribed: list[str]
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime


class ScheduleQuery(PageQuery):
    advertiser: int | None = Field(default=None, ge=1)
    active: bool | None = None


def _check_period(period: str, weekday: int | None, day: int | None) -> None:
    if period != "week" and weekday is not None:
        raise ValueError("weekday is only for weekly schedules")
    if period != "month" and day is not None:
        raise ValueError("day is only for monthly schedules")


def _topic(schedule_id: int) -> str:
    return f"schedule:{schedule_id}"


def _public(connection: Connection, row: Any) -> SchedulePublic:
    recipients = list(row.recipients or [])
    lowered = [r.lower() for r in recipients]
    unsubscribed = [
        str(a)
        for a in connection.execute(
            select(OPTOUTS.c.address)
            .where(OPTOUTS.c.topic == _topic(row.id), OPTOUTS.c.address.in_(lowered))
            .order_by(OPTOUTS.c.address)
        ).scalars()
    ]
    return SchedulePublic(
        id=row.id,
        advertiser=row.advertiser_id,
        period=row.period,
        weekday=row.weekday,
        day=row.day,
        hour=row.hour,
        timezone=row.timezone,
        recipients=recipients,
        unsubscribed=unsubscribed,
        active=row.active,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def list_schedules(
    connection: Connection, *, query: ScheduleQuery, scope: int | None = None
) -> Page[SchedulePublic]:
    """Schedules by id; ``scope`` (an advertiser token's advertiser) limits them to its own."""
    statement = select(SCHEDULES)
    if scope is not None:
        if query.advertiser is not None and query.advertiser != scope:
            raise Forbidden("this token may read only its own advertiser's schedules")
        statement = statement.where(SCHEDULES.c.advertiser_id == scope)
    elif query.advertiser is not None:
        statement = statement.where(SCHEDULES.c.advertiser_id == query.advertiser)
    if query.active is not None:
        statement = statement.where(SCHEDULES.c.active.is_(query.active))
    return fetch_page(
        connection,
        statement,
        SCHEDULES.c.id,
        limit=query.limit,
        after=query.after,
        build=lambda row: _public(connection, row),
    )


def get_schedule(
    connection: Connection, *, schedule_id: int, scope: int | None = None
) -> SchedulePublic:
    row = connection.execute(select(SCHEDULES).where(SCHEDULES.c.id == schedule_id)).first()
    if row is None or (scope is not None and row.advertiser_id != scope):
        raise NotFound(f"no such {ENTITY}")
    return _public(connection, row)


def create_schedule(
    connection: Connection, *, data: ScheduleCreate, actor: Actor, now: datetime
) -> SchedulePublic:
    if data.advertiser is not None:
        advertisers = table(Advertiser)
        if not connection.execute(
            select(advertisers.c.id).where(advertisers.c.id == data.advertiser)
        ).first():
            raise invalid("advertiser", "no such advertiser")
    new_id = inserted_id(
        connection.execute(
            insert(SCHEDULES).values(
                advertiser_id=data.advertiser,
                period=data.period,
                weekday=0 if data.period == "week" and data.weekday is None else data.weekday,
                day=1 if data.period == "month" and data.day is None else data.day,
                hour=data.hour,
                timezone=data.timezone or default_timezone(connection, data.advertiser),
                recipients=list(dict.fromkeys(data.recipients)),
                active=data.active,
                version=1,
                created_at=now,
                updated_at=now,
            )
        )
    )
    schedule = get_schedule(connection, schedule_id=new_id)
    history.record(
        connection,
        actor=actor,
        entity=ENTITY,
        entity_id=new_id,
        action="create",
        before=None,
        after=history_view(schedule),
        now=now,
    )
    return schedule


def update_schedule(
    connection: Connection,
    *,
    schedule_id: int,
    data: ScheduleUpdate,
    expected_version: int | None,
    actor: Actor,
    now: datetime,
    scope: int | None = None,
) -> SchedulePublic:
    """Change the named fields; an advertiser (``scope``) may change only the recipients."""
    before = get_schedule(connection, schedule_id=schedule_id, scope=scope)
    values = named(data)
    if scope is not None and set(values) - {"recipients"}:
        others = sorted(set(values) - {"recipients"})
        raise Forbidden(
            "an advertiser may change only a schedule's recipients",
            dict.fromkeys(others, "only the publisher may change this"),
        )
    period = values.get("period", before.period)
    weekday = values.get("weekday", before.weekday if period == before.period else None)
    day = values.get("day", before.day if period == before.period else None)
    if period == "week" and weekday is None:
        weekday = 0
    if period == "month" and day is None:
        day = 1
    if period != "week":
        weekday = None
    if period != "month":
        day = None
    try:
        _check_period(period, values.get("weekday", weekday), values.get("day", day))
    except ValueError as exc:
        raise ServiceError(str(exc), {"period": str(exc)}) from None
    values.update(period=period, weekday=weekday, day=day)
    if "recipients" in values:
        recipients = list(dict.fromkeys(values["recipients"]))
        values["recipients"] = recipients
        kept = {r.lower() for r in before.recipients}
        for address in recipients:
            if address.lower() not in kept:
                opt_in(connection, address=address, topic=_topic(schedule_id))
    row = fetch_row(connection, SCHEDULES, ENTITY, id=schedule_id)
    write_version(connection, SCHEDULES, row, values, expected=expected_version, now=now)
    schedule = get_schedule(connection, schedule_id=schedule_id)
    history.record(
        connection,
        actor=actor,
        entity=ENTITY,
        entity_id=schedule_id,
        action="update",
        before=history_view(before),
        after=history_view(schedule),
        now=now,
    )
    return schedule


def delete_schedule(
    connection: Connection,
    *,
    schedule_id: int,
    expected_version: int | None,
    actor: Actor,
    now: datetime,
) -> Removal:
    """Delete a schedule that sent nothing yet; one with archived reports is paused instead
    (``archived``): its reports stay listed under it."""
    before = get_schedule(connection, schedule_id=schedule_id)
    row = fetch_row(connection, SCHEDULES, ENTITY, id=schedule_id)
    reports = table(Report)
    used = connection.execute(
        select(reports.c.id).where(reports.c.schedule_id == schedule_id).limit(1)
    ).first()
    outcome: Literal["deleted", "archived"]
    if used:
        if row.active:
            write_version(
                connection, SCHEDULES, row, {"active": False}, expected=expected_version, now=now
            )
        outcome = "archived"
        after = history_view(get_schedule(connection, schedule_id=schedule_id))
    else:
        check_version(row, expected_version)
        connection.execute(delete(OPTOUTS).where(OPTOUTS.c.topic == _topic(schedule_id)))
        connection.execute(delete(SCHEDULES).where(SCHEDULES.c.id == schedule_id))
        outcome, after = "deleted", None
    history.record(
        connection,
        actor=actor,
        entity=ENTITY,
        entity_id=schedule_id,
        action="archive" if outcome == "archived" else "delete",
        before=history_view(before),
        after=after,
        now=now,
    )
    return Removal(entity=ENTITY, id=str(schedule_id), outcome=outcome)
