"""/admin/...: the publisher's inventory pages (sites, slots, advertisers, campaigns,
creatives, users, API tokens, change history), for signed-in admins only."""

from __future__ import annotations

from starlette.routing import Route

from adserver.web.pages.admin import (
    advertisers,
    campaigns,
    creatives,
    history,
    reports,
    sites,
    slots,
    tokens,
    users,
)
from adserver.web.pages.admin.common import admin_only

routes = [
    Route(route.path, admin_only(route.endpoint), methods=route.methods, name=route.name)
    for module in (
        sites,
        slots,
        advertisers,
        campaigns,
        creatives,
        users,
        tokens,
        history,
        reports,
    )
    for route in module.routes
]
