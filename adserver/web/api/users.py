"""``/v1/manage/users``: the people who sign in (admin tokens only). Never a password hash."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from adserver.accounts.principal import Principal
from adserver.core.models import utcnow
from adserver.services import users
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

PATH = "/v1/manage/users"
ITEM = PATH + "/{id:int}"


@managed()
async def list_users(request: Request, principal: Principal) -> Response:
    query = query_of(request, users.UserQuery)
    return listing(request, await read(request, lambda c: users.list_users(c, query=query)))


@managed()
async def create_user(request: Request, principal: Principal) -> Response:
    data = await body_of(request, users.UserCreate)
    user = await write(
        request,
        lambda c: users.create_user(c, data=data, actor=actor_for(principal), now=utcnow()),
    )
    return answer(user, status=201, location=f"{PATH}/{user.id}")


@managed()
async def get_user(request: Request, principal: Principal) -> Response:
    user_id = request.path_params["id"]
    return answer(await read(request, lambda c: users.get_user(c, user_id=user_id)))


@managed()
async def update_user(request: Request, principal: Principal) -> Response:
    user_id = request.path_params["id"]
    expected = if_match(request)
    data = await body_of(request, users.UserUpdate)
    user = await write(
        request,
        lambda c: users.update_user(
            c,
            user_id=user_id,
            data=data,
            expected_version=expected,
            actor=actor_for(principal),
            now=utcnow(),
        ),
    )
    return answer(user)


@managed()
async def delete_user(request: Request, principal: Principal) -> Response:
    user_id = request.path_params["id"]
    expected = if_match(request)
    removal = await write(
        request,
        lambda c: users.delete_user(
            c, user_id=user_id, expected_version=expected, actor=actor_for(principal), now=utcnow()
        ),
    )
    return answer(removal)


operations = [
    Operation(
        "GET", PATH, "list_users", "List users", list_users,
        query=users.UserQuery, response=users.UserPublic, many=True, errors=(401, 403, 422),
    ),
    Operation(
        "POST", PATH, "create_user",
        "Create a user (without a password: it sets one through an invitation)", create_user,
        body=users.UserCreate, response=users.UserPublic, status=201, etag=True,
        errors=(401, 403, 409, 422),
    ),
    Operation(
        "GET", ITEM, "get_user", "Read a user", get_user,
        response=users.UserPublic, etag=True, errors=(401, 403, 404),
    ),
    Operation(
        "PATCH", ITEM, "update_user",
        "Change a user's named fields (disabling it ends its sessions)", update_user,
        body=users.UserUpdate, response=users.UserPublic, etag=True,
        errors=(401, 403, 404, 409, 412, 422),
    ),
    Operation(
        "DELETE", ITEM, "delete_user",
        "Delete a user, or disable one the change history names", delete_user,
        response=users.UserRemoval, etag=True, errors=(401, 403, 404, 412),
    ),
]  # fmt: skip
