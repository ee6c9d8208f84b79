"""The table of JSON API operations: each route with its method, path, who may call it, and the
pydantic models of its query, body and answer. Routes are built from it, and the OpenAPI
document is generated from it, so the two cannot drift apart."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Endpoint = Callable[[Request], Awaitable[Response]]
#: ``none``: anyone; ``token``: any valid bearer token (admin or advertiser, each sees its
#: own); ``admin``: an admin token only.
Auth = Literal["none", "token", "admin"]


@dataclass(frozen=True)
class Operation:
    """One method on one path of the JSON API, described enough to document it."""

    method: str
    path: str
    name: str
    summary: str
    endpoint: Endpoint
    auth: Auth = "admin"
    #: Query parameters, as a model whose fields are the parameters.
    query: type[BaseModel] | None = None
    #: The JSON body (a multipart form with the same fields is accepted where ``multipart``).
    body: type[BaseModel] | None = None
    multipart: bool = False
    #: The answer's model; a JSON array of it when ``many``.
    response: type[BaseModel] | None = None
    many: bool = False
    status: int = 200
    #: Error statuses this operation may answer with (``{"error": ..., "fields": ...}``).
    errors: tuple[int, ...] = ()
    #: Answers carry an ``ETag``; PATCH and DELETE honour ``If-Match``.
    etag: bool = False
    #: Media types of a success answer that is not JSON (``response`` is then None), e.g.
    #: ``("text/csv",)``; a JSON ``response`` may be offered in these too.
    media: tuple[str, ...] = ()
    #: Other success statuses, answered without a JSON body (204, 302, 304).
    also: tuple[int, ...] = ()
    #: Callable without a token, but a token (an admin's) adds to the answer (decide's explain).
    optional_auth: bool = False
    #: The media type of its error answers (the slot frame and clicks answer errors as HTML).
    error_media: str = "application/json"

    def route(self) -> Route:
        return Route(self.path, self.endpoint, methods=[self.method], name=self.name)


def routes_of(operations: Iterable[Operation]) -> list[Route]:
    return [operation.route() for operation in operations]
