"""The requests every page view makes, routed without Starlette's per-request machinery.

A page with the tag sends one decide and one impression beacon per filled slot, then a view
beacon per slot seen: nearly all of the server's traffic. Through Starlette each of them passed
two middlewares, the router's loop, the route's request wrapper and two exception-handling
wrappers: about 10 us of the 30 us a decide costs in process. This lane matches those three
routes with plain string tests and calls their endpoints directly, with the same ``Request``,
path parameters and response. Every other request, and these paths with any other method (HEAD,
OPTIONS, or one that gets a 405), goes through the router as before.

An exception from an endpoint reaches the server, which logs it and answers 500, as Starlette's
error middleware did.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from adserver.web.serve.decide import decide_endpoint
from adserver.web.serve.events import beacon_endpoint

Endpoint = Callable[[Request], Awaitable[Response]]

_METHODS = frozenset(("GET", "POST"))
#: Paths ending in a token (one path segment), as routed by ``serve.routes``.
_TOKEN_PREFIXES = (("/v1/imp/", beacon_endpoint), ("/v1/view/", beacon_endpoint))


def endpoint_for(scope: Scope) -> tuple[Endpoint, dict[str, Any]] | None:
    """The endpoint and path parameters for a hot request, None for any other (the router's)."""
    if scope["type"] != "http" or scope["method"] not in _METHODS or scope.get("root_path"):
        return None
    path: str = scope["path"]
    if path == "/v1/decide":
        return decide_endpoint, {}
    for prefix, endpoint in _TOKEN_PREFIXES:
        if path.startswith(prefix):
            token = path[len(prefix) :]
            if token and "/" not in token:
                return endpoint, {"token": token}
            return None
    return None
