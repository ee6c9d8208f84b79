"""What every route module shares: the services on the app, JSON answers and errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from starlette.requests import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from adserver.app import AdServer
    from adserver.services import Services


class JSONBytes(Response):
    """A JSON answer from bytes already serialised (orjson), skipping a second encoding."""

    media_type = "application/json"


class ReadyJSON(Response):
    """A 200 JSON answer from serialised bytes and header lines already encoded: the decide
    path's response, skipping the header encoding ``Response.__init__`` does per request."""

    def __init__(self, body: bytes, raw_headers: list[tuple[bytes, bytes]]) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        self.raw_headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
            *raw_headers,
        ]


def app_of(request: Request) -> AdServer:
    app: AdServer = request.scope["app"]
    return app


def services(request: Request) -> Services:
    """The process's services; they exist once the lifespan has started, before any request."""
    app: AdServer = request.scope["app"]  # app_of, written out: this is on every request
    assert app.services is not None, "a request before the lifespan started"
    return app.services


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The contract's error shape: ``{"error": "<message>"}`` with a 4xx status."""
    return JSONBytes(orjson.dumps({"error": message}), status_code=status, headers=headers)
