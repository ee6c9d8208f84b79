"""``/share/TOKEN``: one campaign's dashboard, read-only, opened without a login.

Nothing else is reachable from it: no navigation, no other campaign, only its CSV downloads
under the same token. A forged, expired or revoked link is the same 404."""

from __future__ import annotations

from sqlalchemy import Connection
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.core.models import utcnow
from adserver.reporting.dashboard import Dashboard, NotFound, dashboard_for
from adserver.reporting.stats import BadQuery
from adserver.services import share_links
from adserver.services.errors import NotFound as LinkNotFound
from adserver.web.common import app_of, runtime
from adserver.web.pages.dashview import PRIVATE, context, csv_answer

#: The token must not leave the page in a Referer, nor the page be indexed.
GONE = "This link does not open a dashboard: it may have expired or been revoked."
SHARE_HEADERS = {**PRIVATE, "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}


async def _dashboard(request: Request) -> Dashboard:
    token = request.path_params["token"]
    secret = app_of(request).settings.secret_key
    params = dict(request.query_params)

    def work(connection: Connection) -> Dashboard:
        now = utcnow()
        campaign = share_links.open_share_link(connection, token=token, secret=secret, now=now)
        return dashboard_for(connection, params=params, now=now, campaign_id=campaign)

    try:
        return await runtime(request).run_db(work)
    except (LinkNotFound, NotFound) as exc:
        raise HTTPException(404, GONE) from exc
    except BadQuery as exc:
        raise HTTPException(400, str(exc)) from exc


async def share_page(request: Request) -> Response:
    dashboard = await _dashboard(request)
    path = f"/share/{request.path_params['token']}"
    page = context(dashboard, path=path, csv_path=path + "/{table}.csv", keep={})
    return app_of(request).templates.TemplateResponse(
        request, "dashboard/share.html", page, headers=SHARE_HEADERS
    )


async def share_csv(request: Request) -> Response:
    dashboard = await _dashboard(request)
    answer = csv_answer(dashboard, request.path_params["table"], "shared")
    if answer is None:
        raise HTTPException(404, "There is no such table.")
    answer.headers.update(SHARE_HEADERS)
    return answer


routes = [
    Route("/share/{token}", share_page, methods=["GET"], name="share"),
    Route("/share/{token}/{table}.csv", share_csv, methods=["GET"], name="share_csv"),
]
