"""``GET /v1/manage/changes?entity=campaign&id=ID``: who changed what, when, before and after."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from adserver.accounts.principal import Principal
from adserver.services import history
from adserver.web.api.manage import listing, managed, query_of, read
from adserver.web.api.registry import Operation


@managed()
async def list_changes(request: Request, principal: Principal) -> Response:
    query = query_of(request, history.ChangeQuery)
    return listing(request, await read(request, lambda c: history.list_changes(c, query=query)))


operations = [
    Operation(
        "GET", "/v1/manage/changes", "list_changes", "The change history of one object",
        list_changes, query=history.ChangeQuery, response=history.ChangePublic, many=True,
        errors=(401, 403, 422),
    ),
]  # fmt: skip
