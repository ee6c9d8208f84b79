"""``GET /v1/manage/changes?entity=campaign&id=ID``: who changed what, when, before and after."""

from __future__ import annotations

from starlette.responses import Response

from adserver.services import history
from adserver.web.api.manage import Call, listing, query_of, transacted
from adserver.web.api.registry import Operation


@transacted()
def list_changes(call: Call) -> Response:
    query = query_of(call.request, history.ChangeQuery)
    return listing(call.request, history.list_changes(call.connection, query=query))


operations = [
    Operation(
        "GET", "/v1/manage/changes", "list_changes", "The change history of one object",
        list_changes, query=history.ChangeQuery, response=history.ChangePublic, many=True,
        errors=(401, 403, 422),
    ),
]  # fmt: skip
