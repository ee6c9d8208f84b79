"""/admin/history/ENTITY/ID: who changed what and when, each field before and after."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.services import history
from adserver.services.common import parse
from adserver.services.errors import ServiceError
from adserver.web.pages.admin.common import PAGE_SIZE, filters, page_links, read, render

#: Where each entity's own page is, and the admin section it belongs to.
PAGES = {
    "site": ("/admin/sites/{}", "sites"),
    "slot": ("/admin/slots/{}", "slots"),
    "advertiser": ("/admin/advertisers/{}", "advertisers"),
    "campaign": ("/admin/campaigns/{}", "campaigns"),
    "creative": ("/admin/creatives/{}", "creatives"),
    "user": ("/admin/users/{}", "users"),
    "token": ("/admin/tokens", "tokens"),
    "report_schedule": ("/admin/reports/schedules/{}", "reports"),
}


def rows(change: history.ChangePublic) -> list[tuple[str, Any, Any]]:
    """The change as (field, before, after), fields in a stable order."""
    before = change.before or {}
    after = change.after or {}
    return [(name, before.get(name), after.get(name)) for name in sorted({*before, *after})]


async def change_history(request: Request) -> Response:
    entity = request.path_params["entity"]
    entity_id = request.path_params["entity_id"]
    if entity not in PAGES:
        raise HTTPException(404, f"no history for {entity!r}")
    try:
        wanted = {"entity": entity, "id": entity_id, "limit": PAGE_SIZE}
        query = parse(history.ChangeQuery, {**wanted, **filters(request, "after")})
    except ServiceError as exc:
        raise HTTPException(404, exc.message) from exc
    page = await read(request, lambda c: history.list_changes(c, query=query))
    url, section = PAGES[entity]
    context = {
        "entity": entity,
        "entity_id": entity_id,
        "object_url": url.format(entity_id),
        "changes": [(change, rows(change)) for change in page.items],
        "links": page_links(request, page),
    }
    return render(request, "admin/history.html", context, section=section)


routes = [
    Route(
        "/admin/history/{entity}/{entity_id}",
        change_history,
        methods=["GET"],
        name="admin_history",
    ),
]
