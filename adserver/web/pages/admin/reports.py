"""/admin/reports: whether mail goes out, what did not, the report schedules (made, changed,
paused, deleted through the service layer) and the archive of every report sent."""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlalchemy import Connection
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.notify import archive
from adserver.notify.mail import MailConfigError, SmtpConfig
from adserver.notify.outbox import mail_status
from adserver.services import advertisers, schedules
from adserver.services.common import parse
from adserver.services.errors import NotFound, ServiceError
from adserver.web.common import app_of
from adserver.web.pages.admin.common import (
    Form,
    actor,
    attempt,
    blank_form,
    done,
    lines,
    not_found,
    now,
    read,
    render,
    text,
    version_of,
    write,
)

FIELDS = ("advertiser", "period", "weekday", "day", "hour", "timezone", "recipients", "active")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
WEEKDAY_CHOICES = [(str(n), name) for n, name in enumerate(WEEKDAYS)]
LIST = "/admin/reports"


def mail_setting(smtp_url: str | None) -> dict[str, Any]:
    """What the page says about mail: off, on (to which server), or misconfigured."""
    if not smtp_url:
        return {"state": "off"}
    try:
        config = SmtpConfig.parse(smtp_url)
    except MailConfigError as exc:
        return {"state": "broken", "why": str(exc)}
    return {"state": "on", "server": f"{config.host}:{config.port}", "security": config.security}


def _choices(connection: Connection) -> list[tuple[str, str]]:
    sellers = advertisers.list_advertisers(
        connection, query=advertisers.AdvertiserQuery(limit=1000)
    )
    return [(str(a.id), a.name) for a in sellers.items]


async def reports_page(request: Request, *, form: Form | None = None) -> Response:
    def load(connection: Connection) -> dict[str, Any]:
        return {
            "schedules": schedules.list_schedules(
                connection, query=schedules.ScheduleQuery(limit=1000)
            ).items,
            "reports": archive.recent_reports(connection, scope=None, limit=30),
            "problems": archive.mail_problems(connection),
            "counts": mail_status(connection),
            "advertiser_choices": _choices(connection),
        }

    context = await read(request, load)
    context.update(
        mail=mail_setting(app_of(request).settings.smtp_url),
        form=form or blank_form({"period": "week", "weekday": "0", "hour": "8", "active": "1"}),
        weekdays=WEEKDAYS,
        weekday_choices=WEEKDAY_CHOICES,
    )
    return render(
        request,
        "admin/reports/list.html",
        context,
        section="reports",
        status_code=form.status if form else 200,
    )


async def reports_list(request: Request) -> Response:
    return await reports_page(request)


def _payload(submitted: FormData, *, creating: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what was typed, the schema's payload) of the schedule form."""
    values = {name: text(submitted, name) for name in FIELDS}
    values["active"] = "1" if submitted.get("active") else ""
    period = values["period"] or "week"
    payload: dict[str, Any] = {
        "period": period,
        "weekday": values["weekday"] if period == "week" and values["weekday"] else None,
        "day": values["day"] if period == "month" and values["day"] else None,
        "hour": values["hour"] or 8,
        "recipients": lines(values["recipients"]),
        "active": bool(values["active"]),
    }
    if values["timezone"]:  # blank: the advertiser's first site's zone, or unchanged
        payload["timezone"] = values["timezone"]
    if creating:
        payload["advertiser"] = values["advertiser"] or None
    return values, payload


async def schedule_new(request: Request) -> Response:
    values, payload = _payload(await request.form(), creating=True)
    outcome = await attempt(
        request,
        values,
        FIELDS,
        lambda: partial(
            schedules.create_schedule,
            data=parse(schedules.ScheduleCreate, payload),
            actor=actor(request),
            now=now(),
        ),
    )
    if isinstance(outcome, Form):
        return await reports_page(request, form=outcome)
    return done(request, LIST, "Schedule made.")


async def schedule_edit(request: Request, *, form: Form | None = None) -> Response:
    schedule_id: int = request.path_params["schedule_id"]

    def load(connection: Connection) -> dict[str, Any]:
        return {
            "schedule": schedules.get_schedule(connection, schedule_id=schedule_id),
            "advertiser_choices": _choices(connection),
        }

    try:
        context = await read(request, load)
    except NotFound as exc:
        raise not_found(exc) from exc
    schedule: schedules.SchedulePublic = context["schedule"]
    stored = {
        "advertiser": schedule.advertiser or "",
        "period": schedule.period,
        "weekday": "" if schedule.weekday is None else schedule.weekday,
        "day": schedule.day or "",
        "hour": schedule.hour,
        "timezone": schedule.timezone,
        "recipients": "\n".join(schedule.recipients),
        "active": "1" if schedule.active else "",
    }
    context.update(form=form or blank_form(stored), weekday_choices=WEEKDAY_CHOICES)
    return render(
        request,
        "admin/reports/schedule.html",
        context,
        section="reports",
        status_code=form.status if form else 200,
    )


async def schedule_page(request: Request) -> Response:
    return await schedule_edit(request)


async def schedule_save(request: Request) -> Response:
    schedule_id: int = request.path_params["schedule_id"]
    submitted = await request.form()
    values, payload = _payload(submitted, creating=False)
    outcome = await attempt(
        request,
        values,
        FIELDS,
        lambda: partial(
            schedules.update_schedule,
            schedule_id=schedule_id,
            data=parse(schedules.ScheduleUpdate, payload),
            expected_version=version_of(submitted),
            actor=actor(request),
            now=now(),
        ),
    )
    if isinstance(outcome, Form):
        return await schedule_edit(request, form=outcome)
    return done(request, LIST, "Schedule saved.")


async def schedule_delete(request: Request) -> Response:
    schedule_id: int = request.path_params["schedule_id"]
    submitted = await request.form()
    try:
        removal = await write(
            request,
            partial(
                schedules.delete_schedule,
                schedule_id=schedule_id,
                expected_version=version_of(submitted),
                actor=actor(request),
                now=now(),
            ),
        )
    except NotFound as exc:
        raise not_found(exc) from exc
    except ServiceError as exc:
        return done(request, LIST, exc.message, level="error")
    if removal.outcome == "archived":
        return done(request, LIST, "Schedule paused: its reports stay in the archive.")
    return done(request, LIST, "Schedule deleted.")


MEDIA = {"html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8"}


async def report_file(request: Request) -> Response:
    report_id: int = request.path_params["report_id"]
    kind: str = request.path_params["kind"]
    if kind not in MEDIA:
        raise not_found(NotFound("a report is available as .html or .csv"))
    try:
        name, body = await read(
            request, lambda c: archive.report_body(c, report_id=report_id, kind=kind)
        )
    except NotFound as exc:
        raise not_found(exc) from exc
    return archived_file(name, body, kind)


def archived_file(name: str, body: str, kind: str) -> Response:
    """An archived report: the CSV as a download; the HTML as the mail showed it, with nothing
    allowed to run or load but its own images and styles."""
    headers = {"Cache-Control": "private, no-store"}
    if kind == "csv":
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    else:
        headers["Content-Security-Policy"] = (
            "default-src 'none'; img-src data: https:; style-src 'unsafe-inline'"
        )
    return Response(body, media_type=MEDIA[kind], headers=headers)


routes = [
    Route(LIST, reports_list, methods=["GET"], name="admin_reports"),
    Route(LIST + "/schedules", schedule_new, methods=["POST"], name="admin_schedule_new"),
    Route(
        LIST + "/schedules/{schedule_id:int}",
        schedule_page,
        methods=["GET"],
        name="admin_schedule",
    ),
    Route(
        LIST + "/schedules/{schedule_id:int}",
        schedule_save,
        methods=["POST"],
        name="admin_schedule_save",
    ),
    Route(
        LIST + "/schedules/{schedule_id:int}/delete",
        schedule_delete,
        methods=["POST"],
        name="admin_schedule_delete",
    ),
    Route(LIST + "/{report_id:int}.{kind}", report_file, methods=["GET"], name="admin_report_file"),
]
