"""What every management route shares: the caller, the body and query checked by the service
layer's schemas, a transaction per write, lists with a ``Link`` header, and errors in the
contract's shape. Handlers stay thin: parse, call one service function, answer.

A handler whose work is one service call is ``transacted``: the token check and the work run in
one worker thread, in one transaction. Each trip to a worker thread and back waits for the
event loop to hand over the GIL, so a write answers sooner in one hop than in two; and while
any such work runs, the GIL changes hands at short intervals (``core.switching``)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel
from sqlalchemy import Connection
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from adserver.accounts.principal import Principal, bearer_token
from adserver.core.models import utcnow
from adserver.core.switching import quick_switches
from adserver.services.common import Actor, M, Public, etag, expected_version, parse
from adserver.services.errors import Conflict, Forbidden, NotFound, ServiceError
from adserver.services.paging import Page
from adserver.services.tokens import principal_for_token
from adserver.web.api.auth import BAD_TOKEN, NO_TOKEN, PRIVATE, authenticate, unauthenticated
from adserver.web.api.registry import Auth
from adserver.web.common import JSONBytes, runtime

T = TypeVar("T")
Handler = Callable[[Request, Principal], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]

#: Ids are 32-bit integers: a larger one in a path names nothing.
MAX_ID = 2**31 - 1
#: The largest JSON or form body accepted (a 300 KB image is ~400 KB in base64).
MAX_BODY = 1_000_000


def managed(auth: Auth = "admin") -> Callable[[Handler], Endpoint]:
    """Wrap a handler: authenticate, enforce ``auth``, and turn service errors into answers."""

    def wrap(handler: Handler) -> Endpoint:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            principal = await authenticate(request)
            if isinstance(principal, Response):
                return principal
            try:
                allowed(request, principal, auth)
                return await handler(request, principal)
            except Exception as exc:
                return answer_to(exc)

        return endpoint

    return wrap


@dataclass(frozen=True)
class Call:
    """What a ``transacted`` handler works with, in its worker thread."""

    request: Request
    principal: Principal
    connection: Connection
    #: The request's body as sent (at most ``MAX_BODY`` + 1 bytes of it).
    body: bytes

    def body_as(self, model: type[M]) -> M:
        """The JSON body checked against ``model`` (every bad field named in one 422)."""
        return parse_body(self.body, model)


SyncHandler = Callable[[Call], Response]


def transacted(auth: Auth = "admin") -> Callable[[SyncHandler], Endpoint]:
    """Wrap a handler whose work is one service call: the token check, ``auth`` and the
    handler run in one worker thread and one transaction, which commits when the handler
    answers and rolls back when it fails. Answers as ``managed`` does, in the same order (401,
    403, 404, then the body's and the work's errors)."""

    def wrap(handler: SyncHandler) -> Endpoint:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            token = bearer_token(request.headers)
            if token is None:
                return unauthenticated(NO_TOKEN)
            body = await capped_body(request)
            engine = runtime(request).engine

            def run() -> Response:
                now = utcnow()
                with engine.connect() as connection:
                    principal = principal_for_token(connection, token, now=now)
                    if principal is None:
                        return unauthenticated(BAD_TOKEN)
                    try:
                        allowed(request, principal, auth)
                        done = handler(Call(request, principal, connection, body))
                        connection.commit()
                        return done
                    except Exception as exc:
                        connection.rollback()
                        # The token was used all the same: record it as a request of its own.
                        principal_for_token(connection, token, now=now)
                        connection.commit()
                        return answer_to(exc)

            with quick_switches.during():
                return await asyncio.to_thread(run)

        return endpoint

    return wrap


def allowed(request: Request, principal: Principal, auth: Auth) -> None:
    """Refuse a caller ``auth`` does not admit, and ids no table holds."""
    if auth == "admin" and not principal.is_admin:
        raise Forbidden("this needs an admin token")
    if any(isinstance(v, int) and v > MAX_ID for v in request.path_params.values()):
        raise NotFound("no such object")


def answer_to(exc: Exception) -> Response:
    """The answer to an error a management request may meet; any other error propagates."""
    if isinstance(exc, ServiceError):
        return failure(exc)
    if isinstance(exc, HTTPException):  # a multipart body the form parser refused
        return failure(ServiceError(f"the body cannot be read: {exc.detail}"))
    if isinstance(exc, IntegrityError):
        # A concurrent write took the same unique name between our check and insert.
        return failure(Conflict("a concurrent change conflicts with this one: try again"))
    if isinstance(exc, DataError | OverflowError):
        # A whole number past what the database stores (SQLite's 64 bits, an integer column's
        # 32 on PostgreSQL): whichever field or parameter it was, it names nothing that exists.
        return failure(ServiceError("a number in this request is out of range"))
    raise exc


def failure(exc: ServiceError) -> Response:
    return JSONBytes(orjson.dumps(exc.as_json()), status_code=exc.status, headers=PRIVATE)


def actor_for(principal: Principal) -> Actor:
    """The change history's name for the caller."""
    return Actor.of(principal)


def scope_of(principal: Principal) -> int | None:
    """The advertiser whose objects the caller may see (None: all of them)."""
    return principal.advertiser_id


async def body_of(request: Request, model: type[M]) -> M:
    """The JSON body checked against ``model`` (every bad field named in one 422)."""
    return parse_body(await request.body(), model)


async def capped_body(request: Request) -> bytes:
    """The body, read no further than one byte past ``MAX_BODY`` (enough to refuse it)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY:
            break
    return b"".join(chunks)


def parse_body(raw: bytes, model: type[M]) -> M:
    """``raw`` decoded as JSON and checked against ``model``."""
    if len(raw) > MAX_BODY:
        raise ServiceError(f"the body is larger than {MAX_BODY} bytes")
    try:
        data = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as exc:
        raise ServiceError(f"the body is not valid JSON: {exc}") from exc
    return parse(model, data)


def query_of(request: Request, model: type[M]) -> M:
    """The query string checked against ``model`` (unknown parameters refused)."""
    return parse(model, dict(request.query_params))


def if_match(request: Request) -> int | None:
    return expected_version(request.headers.get("if-match"))


async def read(request: Request, work: Callable[[Connection], T]) -> T:
    with quick_switches.during():
        return await runtime(request).run_db(work)


async def write(request: Request, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in one transaction in a worker thread: it commits whole or not at all."""
    engine = runtime(request).engine

    def run() -> T:
        with engine.begin() as connection:
            return work(connection)

    with quick_switches.during():
        return await asyncio.to_thread(run)


def answer(item: Public, *, status: int = 200, location: str | None = None) -> Response:
    """One object, with its ETag (when it has a version) and, on creation, its Location."""
    headers = dict(PRIVATE)
    version = getattr(item, "version", None)
    if isinstance(version, int):
        headers["ETag"] = etag(version)
    if location is not None:
        headers["Location"] = location
    return JSONBytes(_dump(item), status_code=status, headers=headers)


def listing(request: Request, page: Page[Any]) -> Response:
    """A JSON array, with ``Link: <...>; rel="next"`` while more remain."""
    headers = dict(PRIVATE)
    if page.next_after is not None:
        following = request.url.include_query_params(after=page.next_after)
        headers["Link"] = f'<{following}>; rel="next"'
    return JSONBytes(_dump_all(page.items), headers=headers)


def _dump(item: BaseModel) -> bytes:
    return item.__pydantic_serializer__.to_json(item)


def _dump_all(items: Sequence[BaseModel]) -> bytes:
    return b"[" + b",".join(_dump(item) for item in items) + b"]"
