"""``/dashboard/reports``: an advertiser's past reports (viewable and downloadable) and the
recipients of its report schedules, which it may change itself (nothing else about them).
An admin opens any advertiser's with ``?advertiser=ID``; another advertiser's reports and
schedules are 404s to an advertiser user, as if they did not exist."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from adserver.accounts.sessions import SignedInUser
from adserver.core.models import Advertiser, table, utcnow
from adserver.notify import archive
from adserver.services import schedules
from adserver.services.common import Actor, parse
from adserver.services.errors import NotFound, ServiceError
from adserver.web.common import app_of, runtime
from adserver.web.pages.admin.common import lines, plain
from adserver.web.pages.admin.reports import WEEKDAYS, archived_file
from adserver.web.pages.auth import in_transaction, require_user

PATH = "/dashboard/reports"
PRIVATE = {"Cache-Control": "private, no-store"}


def _whose(user: SignedInUser, requested: str | None) -> int:
    """An advertiser user's own advertiser (another id is a 404); an admin's choice."""
    raw = (requested or "").strip()
    wanted = int(raw) if raw.isdigit() and len(raw) < 19 else None
    if user.is_admin:
        if wanted is None:
            raise HTTPException(400, "Choose an advertiser: /dashboard/reports?advertiser=ID")
        return wanted
    if user.advertiser_id is None or (wanted is not None and wanted != user.advertiser_id):
        raise HTTPException(404, "There is no such advertiser.")
    return user.advertiser_id


def _back(user: SignedInUser, advertiser_id: int) -> str:
    return PATH + (f"?advertiser={advertiser_id}" if user.is_admin else "")


async def reports_page(
    request: Request, *, errors: dict[int, dict[str, Any]] | None = None, status_code: int = 200
) -> Response:
    user = await require_user(request)
    advertiser_id = _whose(user, request.query_params.get("advertiser"))

    def load(connection: Connection) -> dict[str, Any]:
        advertisers = table(Advertiser)
        name = connection.execute(
            select(advertisers.c.name).where(advertisers.c.id == advertiser_id)
        ).scalar()
        if name is None:
            raise HTTPException(404, "There is no such advertiser.")
        query = schedules.ScheduleQuery(limit=1000)
        return {
            "advertiser_name": name,
            "schedules": schedules.list_schedules(
                connection, query=query, scope=advertiser_id
            ).items,
            "reports": archive.recent_reports(connection, scope=advertiser_id, limit=50),
        }

    context = await runtime(request).run_db(load)
    context.update(
        user=user,
        advertiser_id=advertiser_id,
        weekdays=WEEKDAYS,
        keep=f"?advertiser={advertiser_id}" if user.is_admin else "",
        errors=errors or {},
        flashes=[("success", "Recipients saved.")]
        if request.query_params.get("done") == "saved"
        else [],
    )
    return app_of(request).templates.TemplateResponse(
        request, "dashboard/reports.html", context, status_code=status_code, headers=PRIVATE
    )


async def reports_view(request: Request) -> Response:
    return await reports_page(request)


async def save_recipients(request: Request) -> Response:
    """The advertiser's own change: who gets one of its schedules' reports."""
    user = await require_user(request)
    advertiser_id = _whose(user, request.query_params.get("advertiser"))
    schedule_id: int = request.path_params["schedule_id"]
    form = await request.form()
    typed = str(form.get("recipients", ""))
    version = str(form.get("version", ""))
    try:
        data = parse(schedules.ScheduleUpdate, {"recipients": lines(typed)})
        await in_transaction(
            request,
            lambda c: schedules.update_schedule(
                c,
                schedule_id=schedule_id,
                data=data,
                expected_version=int(version) if version.isdigit() else None,
                actor=Actor("user", user.user_id, user.email),
                now=utcnow(),
                scope=advertiser_id,
            ),
        )
    except NotFound as exc:
        raise HTTPException(404, "There is no such schedule.") from exc
    except ServiceError as exc:
        why = "; ".join(plain(v) for v in exc.fields.values()) or exc.message
        errors = {schedule_id: {"recipients": typed, "why": why}}
        status = exc.status if exc.status in (409, 412) else 422
        return await reports_page(request, errors=errors, status_code=status)
    return RedirectResponse(_back(user, advertiser_id) + _sep(user) + "done=saved", 303)


def _sep(user: SignedInUser) -> str:
    return "&" if user.is_admin else "?"


async def report_file(request: Request) -> Response:
    user = await require_user(request)
    advertiser_id = _whose(user, request.query_params.get("advertiser"))
    kind: str = request.path_params["kind"]
    if kind not in ("html", "csv"):
        raise HTTPException(404, "A report is available as .html or .csv.")
    report_id: int = request.path_params["report_id"]
    try:
        name, body = await runtime(request).run_db(
            lambda c: archive.report_body(c, report_id=report_id, kind=kind, scope=advertiser_id)
        )
    except NotFound as exc:
        raise HTTPException(404, "There is no such report.") from exc
    return archived_file(name, body, kind)


routes = [
    Route(PATH, reports_view, methods=["GET"], name="dashboard_reports"),
    Route(
        PATH + "/schedules/{schedule_id:int}",
        save_recipients,
        methods=["POST"],
        name="dashboard_report_recipients",
    ),
    Route(
        PATH + "/{report_id:int}.{kind}",
        report_file,
        methods=["GET"],
        name="dashboard_report_file",
    ),
]
