"""``/v1/manage/tokens``: API tokens (admin tokens only); the secret only in the creation's
answer, and DELETE revokes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from adserver.accounts.principal import Principal
from adserver.core.models import utcnow
from adserver.services import tokens
from adserver.web.api.manage import (
    actor_for,
    answer,
    body_of,
    if_match,
    listing,
    managed,
    query_of,
    read,
    write,
)
from adserver.web.api.registry import Operation

PATH = "/v1/manage/tokens"
ITEM = PATH + "/{id:int}"


@managed()
async def list_tokens(request: Request, principal: Principal) -> Response:
    query = query_of(request, tokens.TokenQuery)
    return listing(request, await read(request, lambda c: tokens.list_tokens(c, query=query)))


@managed()
async def create_token(request: Request, principal: Principal) -> Response:
    data = await body_of(request, tokens.TokenCreate)
    created = await write(
        request,
        lambda c: tokens.create_token(c, data=data, actor=actor_for(principal), now=utcnow()),
    )
    return answer(created, status=201, location=f"{PATH}/{created.id}")


@managed()
async def get_token(request: Request, principal: Principal) -> Response:
    token_id = request.path_params["id"]
    return answer(await read(request, lambda c: tokens.get_token(c, token_id=token_id)))


@managed()
async def update_token(request: Request, principal: Principal) -> Response:
    token_id = request.path_params["id"]
    expected = if_match(request)
    data = await body_of(request, tokens.TokenUpdate)
    token = await write(
        request,
        lambda c: tokens.update_token(
            c,
            token_id=token_id,
            data=data,
            expected_version=expected,
            actor=actor_for(principal),
            now=utcnow(),
        ),
    )
    return answer(token)


@managed()
async def revoke_token(request: Request, principal: Principal) -> Response:
    token_id = request.path_params["id"]
    expected = if_match(request)
    removal = await write(
        request,
        lambda c: tokens.revoke_token(
            c,
            token_id=token_id,
            expected_version=expected,
            actor=actor_for(principal),
            now=utcnow(),
        ),
    )
    return answer(removal)


operations = [
    Operation(
        "GET", PATH, "list_tokens", "List API tokens (never their secrets)", list_tokens,
        query=tokens.TokenQuery, response=tokens.TokenPublic, many=True, errors=(401, 403, 422),
    ),
    Operation(
        "POST", PATH, "create_token", "Create an API token: its secret is in this answer only",
        create_token, body=tokens.TokenCreate, response=tokens.TokenCreated, status=201,
        etag=True, errors=(401, 403, 422),
    ),
    Operation(
        "GET", ITEM, "get_token", "Read an API token", get_token,
        response=tokens.TokenPublic, etag=True, errors=(401, 403, 404),
    ),
    Operation(
        "PATCH", ITEM, "update_token", "Rename an API token", update_token,
        body=tokens.TokenUpdate, response=tokens.TokenPublic, etag=True,
        errors=(401, 403, 404, 412, 422),
    ),
    Operation(
        "DELETE", ITEM, "revoke_token", "Revoke an API token, at once in every process",
        revoke_token, response=tokens.TokenRemoval, etag=True, errors=(401, 403, 404, 412),
    ),
]  # fmt: skip
