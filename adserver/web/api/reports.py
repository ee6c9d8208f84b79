"""``/v1/manage/report-schedules``, the report archive (``/v1/reports``) and the one-click
unsubscribe links reports carry (``/v1/unsubscribe/TOKEN``, RFC 8058)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.accounts.principal import Principal
from adserver.core.models import utcnow
from adserver.notify import archive
from adserver.notify.optout import opt_out, read_unsubscribe_token
from adserver.services import schedules
from adserver.services.common import Removal
from adserver.services.errors import NotFound
from adserver.web.api.auth import PRIVATE
from adserver.web.api.manage import (
    actor_for,
    answer,
    body_of,
    if_match,
    listing,
    managed,
    query_of,
    read,
    scope_of,
    write,
)
from adserver.web.api.registry import Operation
from adserver.web.common import app_of, runtime

PATH = "/v1/manage/report-schedules"
ITEM = PATH + "/{id:int}"


@managed(auth="token")
async def list_schedules(request: Request, principal: Principal) -> Response:
    query = query_of(request, schedules.ScheduleQuery)
    scope = scope_of(principal)
    page = await read(request, lambda c: schedules.list_schedules(c, query=query, scope=scope))
    return listing(request, page)


@managed()
async def create_schedule(request: Request, principal: Principal) -> Response:
    data = await body_of(request, schedules.ScheduleCreate)
    schedule = await write(
        request,
        lambda c: schedules.create_schedule(c, data=data, actor=actor_for(principal), now=utcnow()),
    )
    return answer(schedule, status=201, location=f"{PATH}/{schedule.id}")


@managed(auth="token")
async def get_schedule(request: Request, principal: Principal) -> Response:
    schedule_id, scope = request.path_params["id"], scope_of(principal)
    return answer(
        await read(
            request, lambda c: schedules.get_schedule(c, schedule_id=schedule_id, scope=scope)
        )
    )


@managed(auth="token")
async def update_schedule(request: Request, principal: Principal) -> Response:
    schedule_id, scope = request.path_params["id"], scope_of(principal)
    expected = if_match(request)
    data = await body_of(request, schedules.ScheduleUpdate)
    schedule = await write(
        request,
        lambda c: schedules.update_schedule(
            c,
            schedule_id=schedule_id,
            data=data,
            expected_version=expected,
            actor=actor_for(principal),
            now=utcnow(),
            scope=scope,
        ),
    )
    return answer(schedule)


@managed()
async def delete_schedule(request: Request, principal: Principal) -> Response:
    schedule_id = request.path_params["id"]
    expected = if_match(request)
    removal = await write(
        request,
        lambda c: schedules.delete_schedule(
            c,
            schedule_id=schedule_id,
            expected_version=expected,
            actor=actor_for(principal),
            now=utcnow(),
        ),
    )
    return answer(removal)


@managed(auth="token")
async def list_reports(request: Request, principal: Principal) -> Response:
    query = query_of(request, archive.ReportQuery)
    scope = scope_of(principal)
    return listing(
        request, await read(request, lambda c: archive.list_reports(c, query=query, scope=scope))
    )


MEDIA = {"html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8"}


@managed(auth="token")
async def report_file(request: Request, principal: Principal) -> Response:
    report_id, kind = request.path_params["id"], request.path_params["kind"]
    if kind not in MEDIA:
        raise NotFound("a report is available as .html or .csv")
    scope = scope_of(principal)
    name, body = await read(
        request, lambda c: archive.report_body(c, report_id=report_id, kind=kind, scope=scope)
    )
    headers = dict(PRIVATE)
    if kind == "csv":
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    else:
        # The archived HTML is a whole mail body: no script runs in it, nothing loads but the
        # publisher's logo.
        headers["Content-Security-Policy"] = (
            "default-src 'none'; img-src data: https:; style-src 'unsafe-inline'"
        )
    return Response(body, media_type=MEDIA[kind], headers=headers)


def _what(topic: str) -> str:
    if topic.startswith("schedule:"):
        return "of this report"
    return "of these notifications"


async def unsubscribe(request: Request) -> Response:
    """GET: a page with one button. POST (the mail client's one-click, or that button): switch
    the mail off for that address at once. The signed link is the only authorisation."""
    app = app_of(request)
    found = read_unsubscribe_token(app.settings.secret_key, request.path_params["token"])
    if found is None:
        return app.templates.TemplateResponse(
            request,
            "errors/error.html",
            {
                "status": 404,
                "heading": "Link not valid",
                "message": "This unsubscribe link is not valid.",
            },
            status_code=404,
        )
    address, topic = found
    done = request.method == "POST"
    if done:
        engine = runtime(request).engine

        def record() -> None:
            with engine.begin() as connection:
                opt_out(connection, address=address, topic=topic, now=utcnow())

        await asyncio.to_thread(record)
    return app.templates.TemplateResponse(
        request,
        "mail/unsubscribe.html",
        {
            "done": done,
            "address": address,
            "what": _what(topic).removeprefix("of "),
            "action": request.url.path,
        },
        headers={"Cache-Control": "no-store"},
    )


operations = [
    Operation(
        "GET", PATH, "list_report_schedules", "List report schedules", list_schedules,
        auth="token", query=schedules.ScheduleQuery, response=schedules.SchedulePublic,
        many=True, errors=(401, 403, 422),
    ),
    Operation(
        "POST", PATH, "create_report_schedule", "Create a report schedule", create_schedule,
        body=schedules.ScheduleCreate, response=schedules.SchedulePublic, status=201,
        etag=True, errors=(401, 403, 422),
    ),
    Operation(
        "GET", ITEM, "get_report_schedule", "Read a report schedule", get_schedule,
        auth="token", response=schedules.SchedulePublic, etag=True, errors=(401, 404),
    ),
    Operation(
        "PATCH", ITEM, "update_report_schedule",
        "Change a report schedule's named fields (an advertiser: its recipients only)",
        update_schedule, auth="token", body=schedules.ScheduleUpdate,
        response=schedules.SchedulePublic, etag=True, errors=(401, 403, 404, 412, 422),
    ),
    Operation(
        "DELETE", ITEM, "delete_report_schedule",
        "Delete a report schedule, or pause one that has sent reports", delete_schedule,
        response=Removal, etag=True, errors=(401, 403, 404, 412),
    ),
    Operation(
        "GET", "/v1/reports", "list_reports", "List archived reports", list_reports,
        auth="token", query=archive.ReportQuery, response=archive.ReportPublic, many=True,
        errors=(401, 403, 422),
    ),
    Operation(
        "GET", "/v1/reports/{id:int}.{kind}", "report_file",
        "An archived report as HTML or CSV", report_file, auth="token", errors=(401, 404),
    ),
]  # fmt: skip

routes = [
    Route("/v1/unsubscribe/{token}", unsubscribe, methods=["GET", "POST"], name="unsubscribe"),
]
