"""What every route module shares: the process runtime on the app, JSON answers and errors."""

from __future__ import annotations

from typing import Protocol

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from adserver.config import Settings
from adserver.runtime import Runtime


class ServedApp(Protocol):
    """What routes read of the application (``app.AdServer``), named here so that routes never
    import the module that mounts them."""

    settings: Settings
    templates: Jinja2Templates
    runtime: Runtime | None


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


def app_of(request: Request) -> ServedApp:
    app: ServedApp = request.scope["app"]
    return app


def runtime(request: Request) -> Runtime:
    """The process runtime; it exists once the lifespan has started, before any request."""
    app: ServedApp = request.scope["app"]  # app_of, written out: this is on every request
    assert app.runtime is not None, "a request before the lifespan started"
    return app.runtime


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The contract's error shape: ``{"error": "<message>"}`` with a 4xx status."""
    return JSONBytes(orjson.dumps({"error": message}), status_code=status, headers=headers)
