"""``GET /v1/stats``: delivery statistics as JSON or CSV, scoped by the caller's principal."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.accounts.principal import Forbidden
from adserver.reporting.stats import BadQuery, StatsQuery, as_csv, as_json, run_stats
from adserver.web.api.auth import PRIVATE, authenticate
from adserver.web.common import JSONBytes, error, runtime


async def stats_endpoint(request: Request) -> Response:
    principal = await authenticate(request)
    if isinstance(principal, Response):
        return principal
    try:
        query = StatsQuery.from_params(request.query_params)
        query = query.for_advertiser(principal.advertiser_scope(query.advertiser))
        result = await runtime(request).run_db(lambda c: run_stats(c, query))
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
