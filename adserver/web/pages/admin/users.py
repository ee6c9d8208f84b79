"""/admin/users: who may sign in, with their role and advertiser.

Users are invited at /admin/users/invite, and sent a fresh set-password link from their page
(both in ``pages.account``, which mails the link or shows it when mail is off). A user the
change history names is disabled, never deleted; disabling ends the user's sessions at once
(the service layer does both)."""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlalchemy import Connection
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.services import advertisers, users
from adserver.services.common import parse
from adserver.services.errors import NotFound, ServiceError
from adserver.web.pages.admin.common import (
    Form,
    actor,
    attempt,
    blank_form,
    done,
    list_query,
    not_found,
    now,
    page_links,
    read,
    render,
    text,
    version_of,
    write,
)

FIELDS = ("email", "role", "advertiser", "active")
ROLES = [("admin", "Admin (the publisher: everything)"), ("advertiser", "Advertiser (own only)")]


def _advertiser_choices(connection: Connection) -> dict[str, Any]:
    page = advertisers.list_advertisers(connection, query=advertisers.AdvertiserQuery(limit=1000))
    return {"advertiser_choices": [(str(a.id), a.name) for a in page.items], "roles": ROLES}


async def user_list(request: Request) -> Response:
    query, chosen = list_query(request, users.UserQuery, "role", "status", "advertiser")

    def load(connection: Connection) -> dict[str, Any]:
        return {
            "page": users.list_users(connection, query=query),
            **_advertiser_choices(connection),
        }

    context = await read(request, load)
    context.update(links=page_links(request, context["page"]), chosen=chosen)
    return render(request, "admin/users/list.html", context, section="users")


def _values(form: FormData) -> dict[str, Any]:
    return {
        "email": text(form, "email"),
        "role": text(form, "role"),
        "advertiser": text(form, "advertiser"),
        "active": bool(form.get("active")),
    }


def _payload(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "email": values["email"],
        "role": values["role"],
        "advertiser": values["advertiser"] or None,
        "active": values["active"],
    }


def _stored(user: users.UserPublic) -> dict[str, Any]:
    return {
        "email": user.email,
        "role": user.role,
        "advertiser": str(user.advertiser or ""),
        "active": user.active,
        "version": user.version,
    }


async def _user_page(request: Request, user: users.UserPublic, form: Form) -> Response:
    context = {"form": form, "user": user, **await read(request, _advertiser_choices)}
    return render(
        request, "admin/users/form.html", context, section="users", status_code=form.status
    )


async def _get(request: Request, user_id: int) -> users.UserPublic:
    try:
        return await read(request, lambda c: users.get_user(c, user_id=user_id))
    except NotFound as exc:
        raise not_found(exc) from exc


async def user_detail(request: Request) -> Response:
    user_id: int = request.path_params["user_id"]
    user = await _get(request, user_id)
    form: Form = blank_form(_stored(user))
    if request.method == "POST":
        submitted = await request.form()
        values = {**_values(submitted), "version": user.version}
        outcome = await attempt(
            request,
            values,
            FIELDS,
            lambda: partial(
                users.update_user,
                user_id=user_id,
                data=parse(users.UserUpdate, _payload(values)),
                expected_version=version_of(submitted),
                actor=actor(request),
                now=now(),
            ),
        )
        if not isinstance(outcome, Form):
            return done(request, f"/admin/users/{user_id}", "User saved.")
        form = outcome
    return await _user_page(request, user, form)


async def user_delete(request: Request) -> Response:
    user_id: int = request.path_params["user_id"]
    submitted = await request.form()
    work = partial(
        users.delete_user,
        user_id=user_id,
        expected_version=version_of(submitted),
        actor=actor(request),
        now=now(),
    )
    here = f"/admin/users/{user_id}"
    try:
        removal = await write(request, work)
    except NotFound as exc:
        raise not_found(exc) from exc
    except ServiceError as exc:
        return done(request, here, exc.message, level="error")
    if removal.outcome == "disabled":
        return done(request, here, "User disabled: the change history names them.")
    return done(request, "/admin/users", "User deleted.")


routes = [
    Route("/admin/users", user_list, methods=["GET"], name="admin_users"),
    Route("/admin/users/{user_id:int}", user_detail, methods=["GET", "POST"], name="admin_user"),
    Route(
        "/admin/users/{user_id:int}/delete",
        user_delete,
        methods=["POST"],
        name="admin_user_delete",
    ),
]
