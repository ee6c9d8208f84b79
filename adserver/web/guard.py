"""Limits and allowed hosts, checked on every request before any route reads it.

Everything here looks at the request line and headers only, so an oversized or misdirected
request is refused before its body is read:

- ``Host`` must name this server: the host of ``ADSERVER_BASE_URL``, one of
  ``ADSERVER_ALLOWED_HOSTS``, or the address the connection arrived at (a load balancer's health
  check by a node's own address). Anything that builds an absolute URL from the request (the
  router's trailing-slash redirect, for one) can then only name this server.
- A body larger than its route allows is refused by its ``Content-Length``: small for decides
  and beacons, which carry a few hundred bytes, larger for creative uploads. A body without a
  length (chunked) is refused with 411: browsers, ``sendBeacon`` and reverse proxies that buffer
  (nginx's default) always send one.
- The request target and the headers are bounded in size, so no per-request work or cache entry
  grows with what a client chooses to send.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import orjson
from starlette.responses import Response
from starlette.types import Scope

from adserver.config import Settings

#: Decide bodies: up to 50 slots with sizes, keywords, a page URL and frequency data.
DECIDE_BODY_LIMIT = 64 * 1024
#: Beacons and clicks carry no body; ``sendBeacon`` may send an empty or tiny one.
BEACON_BODY_LIMIT = 1024
#: Everything else: creative uploads are at most 300 KB (a third more as base64 JSON).
DEFAULT_BODY_LIMIT = 1024 * 1024
#: The path and query string together (a page URL of several KB fits easily).
TARGET_LIMIT = 32 * 1024
#: All request headers together (nginx's default buffers refuse more than 32 KB as well).
HEADERS_LIMIT = 32 * 1024
#: A refused body up to this size is let through to the server, which discards it unread, so
#: the connection stays open and the client reads its 413; a larger one closes the connection
#: (a client still sending then sees it reset: better than taking in megabytes for nothing).
DRAIN_LIMIT = 1024 * 1024
_BEACON_PREFIXES = ("/v1/imp/", "/v1/view/", "/v1/click/")
_BODY_METHODS = frozenset(("POST", "PUT", "PATCH", "DELETE"))
_LOOPBACK = frozenset(("127.0.0.1", "localhost", "::1"))


def body_limit(path: str) -> int:
    """The largest body, in bytes, a request to ``path`` may carry."""
    if path == "/v1/decide":
        return DECIDE_BODY_LIMIT
    if path.startswith(_BEACON_PREFIXES):
        return BEACON_BODY_LIMIT
    return DEFAULT_BODY_LIMIT


def host_name(value: str) -> str:
    """A ``Host`` header's name without its port, lower case (``[::1]:8000`` -> ``::1``)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    name, colon, port = value.rpartition(":")
    return name if colon and port.isascii() and port.isdigit() else value


def allowed_hosts(settings: Settings) -> frozenset[str]:
    """The host names this server answers to. A base URL on a loopback address (development,
    tests, the demo) also answers to the other loopback names."""
    base = (urlsplit(settings.base_url).hostname or "").lower()
    hosts = {base, *(host_name(h) for h in settings.allowed_hosts)} - {""}
    if base in _LOOPBACK:
        hosts |= _LOOPBACK
    return frozenset(hosts)


def _refusal(status: int, message: str, *, close: bool = False) -> Response:
    return Response(
        orjson.dumps({"error": message}),
        status_code=status,
        media_type="application/json",
        headers={"Connection": "close"} if close else None,
    )


class RequestGuard:
    """Checks one request's line and headers; ``check`` returns the refusal, or None."""

    def __init__(self, settings: Settings) -> None:
        self.hosts = allowed_hosts(settings)
        # Host headers seen that were allowed; bounded by the allowed names and their ports.
        self._admitted: set[bytes] = set()

    def check(self, scope: Scope) -> Response | None:
        path: str = scope["path"]
        # ``raw_path`` is optional in ASGI (uvicorn and granian send it).
        if len(scope.get("raw_path") or path) + len(scope["query_string"]) > TARGET_LIMIT:
            return _refusal(414, f"the request target is longer than {TARGET_LIMIT} bytes")
        host: bytes | None = None
        length: bytes | None = None
        chunked = False
        size = 0
        # The first Host and Content-Length, as the routes read them.
        for name, value in scope["headers"]:
            size += len(name) + len(value)
            if name == b"host":
                if host is None:
                    host = value
            elif name == b"content-length":
                if length is None:
                    length = value
            elif name == b"transfer-encoding":
                chunked = True
        if size > HEADERS_LIMIT:
            return _refusal(431, f"the request headers are larger than {HEADERS_LIMIT} bytes")
        if host is not None and host not in self._admitted and not self._host_allowed(host, scope):
            return _refusal(400, "this server does not answer to that host name")
        if length is not None:
            if not (length.isdigit() and len(length) < 16):
                return _refusal(400, "the Content-Length header is not a number", close=True)
            limit = body_limit(path)
            size = int(length)
            if size > limit:
                message = f"the request body is larger than {limit} bytes"
                return _refusal(413, message, close=size > DRAIN_LIMIT)
        elif chunked and scope["method"] in _BODY_METHODS:
            return _refusal(411, "send the request body with a Content-Length", close=True)
        return None

    def _host_allowed(self, raw: bytes, scope: Scope) -> bool:
        name = host_name(raw.decode("latin-1"))
        server = scope.get("server")
        if name in self.hosts or (server is not None and name == str(server[0]).lower()):
            if len(self._admitted) < 64:
                self._admitted.add(raw)
            return True
        return False
