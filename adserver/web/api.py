"""The JSON API for programs: statistics (``GET /v1/stats``), behind bearer tokens."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.auth import Forbidden, Principal, bearer_token, principal_for_token
from adserver.stats import BadQuery, StatsQuery, as_csv, as_json, run_stats
from adserver.web.common import JSONBytes, error, services

PRIVATE = {"Cache-Control": "private, no-store"}
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="adserver"'}


async def authenticate(request: Request) -> Principal | Response:
    """The caller's principal, or the 401 answer to give instead."""
    token = bearer_token(request.headers)
    if token is None:
        return error(
            401, "this API needs an 'Authorization: Bearer TOKEN' header", headers=CHALLENGE
        )
    principal = await services(request).run_db(lambda c: principal_for_token(c, token))
    if principal is None:
        return error(401, "the bearer token is not valid", headers=CHALLENGE)
    return principal


async def stats_endpoint(request: Request) -> Response:
    principal = await authenticate(request)
    if isinstance(principal, Response):
        return principal
    try:
        query = StatsQuery.from_params(request.query_params)
        query = query.for_advertiser(principal.advertiser_scope(query.advertiser))
        result = await services(request).run_db(lambda c: run_stats(c, query))
    except BadQuery as exc:
        return error(400, str(exc))
    except Forbidden as exc:
        return error(403, str(exc))
    delivery_counts = principal.sees_delivery_counts
    if query.format == "csv":
        filename = f"stats-{query.start}-{query.end}.csv"
        return Response(
            as_csv(result, delivery_counts=delivery_counts),
            media_type="text/csv; charset=utf-8",
            headers={**PRIVATE, "Content-Disposition": f'attachment; filename="{filename}"'},
        )
    document = as_json(result, delivery_counts=delivery_counts)
    return JSONBytes(orjson.dumps(document), headers=PRIVATE)


routes = [Route("/v1/stats", stats_endpoint, methods=["GET"], name="stats")]
