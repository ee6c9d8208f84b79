"""Error answers in the shape each caller reads: the layout's HTML pages for people, the
contract's ``{"error": ...}`` for the JSON API, plain text for files and probes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from adserver.web.common import app_of, error

#: Paths whose errors are not for a person reading a page.
JSON_PREFIXES = ("/v1/",)
PLAIN_PREFIXES = ("/static/", "/tag.js", "/healthz", "/metrics")
#: Statuses with their own page; any other uses errors/error.html.
OWN_PAGES = {403, 404, 500}
HEADINGS = {
    400: "Bad request",
    401: "Please sign in",
    405: "Not possible here",
    409: "Changed meanwhile",
    413: "Too large",
    422: "Could not be processed",
    429: "Too many attempts",
}


def html_error(request: Request, status: int, message: str) -> Response:
    """The layout's error page for ``status``; the message is shown as text, never as HTML."""
    template = f"errors/{status}.html" if status in OWN_PAGES else "errors/error.html"
    context = {
        "status": status,
        "heading": HEADINGS.get(status, "Something is not right"),
        "message": message,
        "path": request.url.path,
    }
    return app_of(request).templates.TemplateResponse(
        request, template, context, status_code=status
    )


def _answer(
    request: Request, status: int, message: str, headers: Mapping[str, str] | None
) -> Response:
    path = request.url.path
    if path.startswith(JSON_PREFIXES):
        return error(status, message, dict(headers) if headers else None)
    if path.startswith(PLAIN_PREFIXES):
        return PlainTextResponse(message, status_code=status, headers=headers)
    response = html_error(request, status, message)
    if headers:
        response.headers.update(headers)
    return response


async def http_exception(request: Request, exc: Exception) -> Response:
    """Every ``HTTPException`` (404 from the router, 405, and those routes raise)."""
    assert isinstance(exc, HTTPException)
    if exc.status_code in {204, 304}:
        return Response(status_code=exc.status_code, headers=exc.headers)
    return _answer(request, exc.status_code, exc.detail, exc.headers)


async def server_error(request: Request, exc: Exception) -> Response:
    """An unexpected exception: a 500 that says nothing of its cause (the server logs it)."""
    return _answer(request, 500, "Internal server error", None)


exception_handlers: dict[
    int | type[Exception], Callable[[Request, Exception], Awaitable[Response]]
] = {
    HTTPException: http_exception,
    500: server_error,
}
