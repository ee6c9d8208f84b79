"""The JSON API for programs, behind bearer tokens: one module per resource.

``operations`` is the table every management route is described in (``registry.Operation``:
method, path, auth, query/body/answer models); the routes are built from it."""

from __future__ import annotations

from adserver.web.api import (
    advertisers,
    campaigns,
    changes,
    creatives,
    described,
    docs,
    forecast,
    openapi,
    reports,
    share_links,
    sites,
    slots,
    stats,
    tokens,
    users,
)
from adserver.web.api.registry import Operation, routes_of

operations: list[Operation] = [
    *sites.operations,
    *slots.operations,
    *advertisers.operations,
    *campaigns.operations,
    *creatives.operations,
    *changes.operations,
    *share_links.operations,
    *reports.operations,
    *users.operations,
    *tokens.operations,
]

routes = [
    *stats.routes,
    *routes_of(operations),
    *reports.routes,
    *routes_of(openapi.operations),
    *routes_of(docs.operations),
    *routes_of(forecast.operations),
]

#: Every /v1 route, described: what /v1/openapi.json and /v1/docs are generated from.
documented: list[Operation] = [
    *operations,
    *described.operations,
    *openapi.operations,
    *docs.operations,
    *forecast.operations,
]
