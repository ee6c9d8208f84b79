"""``/admin``: the publisher's home, the overview of today and this month."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.core.models import utcnow
from adserver.reporting.overview import build_overview
from adserver.web.pages.admin.common import admin_only, read, render


async def overview_page(request: Request) -> Response:
    now = utcnow()
    overview = await read(request, lambda c: build_overview(c, now=now))
    return render(request, "admin/overview.html", {"overview": overview}, section="overview")


routes = [Route("/admin", admin_only(overview_page), methods=["GET"], name="admin_overview")]
