"""Passwords through the pages: invitations, "forgot password", resets and changing one's own.

- ``/admin/users/invite``: an admin invites someone by e-mail; the single-use link is mailed,
  or shown to the admin to pass on when mail is off. ``/admin/users/{id}/link`` makes a fresh
  link for an existing user (an invitation while it has no password, else a reset).
- ``/forgot``: anyone asks for a reset link for an e-mail address; the answer is the same
  whether or not the address has an account, and the link only ever goes by mail.
- ``/invite/TOKEN`` and ``/reset/TOKEN``: choose a password; the link is used up, every other
  session of the user ends, and this browser is signed in.
- ``/account/password``: a signed-in user changes its password (the current one first).
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import Connection
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.accounts import links
from adserver.accounts.invitations import LinkDelivery, deliver_link
from adserver.accounts.sessions import SignedInUser, start_session
from adserver.core.models import utcnow
from adserver.services import advertisers, users
from adserver.services.common import parse
from adserver.services.errors import NotFound, ServiceError
from adserver.web.common import app_of, runtime
from adserver.web.pages.admin.common import (
    Form,
    actor,
    admin_only,
    blank_form,
    optional,
    refused,
    render,
    text,
)
from adserver.web.pages.auth import require_user, signed_in_response

NOUNS = {"invite": "invitation", "reset": "reset link"}


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    response = app_of(request).templates.TemplateResponse(
        request, name, context, status_code=status
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _password_form(values: dict[str, Any], errors: dict[str, str]) -> Form:
    return Form(values, errors, None, 422 if errors else 200)


def _mismatch(form: Any) -> dict[str, str]:
    if text(form, "password") != text(form, "confirm"):
        return {"confirm": "the two passwords differ"}
    return {}


# Choosing a password through a link.


async def _link_page(request: Request, purpose: links.Purpose) -> Response:
    token = request.path_params["token"]
    now = utcnow()
    user_id = await runtime(request).run_db(
        lambda c: links.link_user(c, token=token, purpose=purpose, now=now)
    )
    if user_id is None:
        return _page(request, "auth/link_invalid.html", {"purpose": purpose}, 404)
    user = await runtime(request).run_db(lambda c: users.get_user(c, user_id=user_id))
    context = {"purpose": purpose, "email": user.email, "form": _password_form({}, {})}
    return _page(request, "auth/set_password.html", context)


async def _link_submit(request: Request, purpose: links.Purpose) -> Response:
    token = request.path_params["token"]
    form = await request.form()
    password = str(form.get("password", ""))
    errors = _mismatch(form)
    now = utcnow()

    def work(connection: Connection) -> tuple[users.UserPublic, str] | None:
        user = users.redeem_link(
            connection, token=token, purpose=purpose, password=password, now=now
        )
        if user is None:
            return None
        return user, start_session(connection, user_id=user.id, now=now)

    if not errors:
        try:
            done = await runtime(request).run_tx(work)
        except ServiceError as exc:
            errors = dict(exc.fields) or {"password": exc.message}
        else:
            if done is None:
                return _page(request, "auth/link_invalid.html", {"purpose": purpose}, 404)
            user, key = done
            signed_in = SignedInUser(user.id, user.email, user.role, user.advertiser, key)
            return signed_in_response(request, signed_in, signed_in.home)
    email = await runtime(request).run_db(
        lambda c: _link_email(c, token=token, purpose=purpose, now=now)
    )
    if email is None:
        return _page(request, "auth/link_invalid.html", {"purpose": purpose}, 404)
    context = {"purpose": purpose, "email": email, "form": _password_form({}, errors)}
    return _page(request, "auth/set_password.html", context, 422)


def _link_email(
    connection: Connection, *, token: str, purpose: links.Purpose, now: Any
) -> str | None:
    user_id = links.link_user(connection, token=token, purpose=purpose, now=now)
    return None if user_id is None else users.get_user(connection, user_id=user_id).email


async def invite_page(request: Request) -> Response:
    return await _link_page(request, "invite")


async def invite_submit(request: Request) -> Response:
    return await _link_submit(request, "invite")


async def reset_page(request: Request) -> Response:
    return await _link_page(request, "reset")


async def reset_submit(request: Request) -> Response:
    return await _link_submit(request, "reset")


# Forgotten passwords.


async def forgot_page(request: Request) -> Response:
    return _page(request, "auth/forgot.html", {"email": "", "sent": False})


async def forgot_submit(request: Request) -> Response:
    form = await request.form()
    email = text(form, "email")[:254]
    settings = app_of(request).settings
    now = utcnow()
    if "@" in email:
        found = await runtime(request).run_tx(
            lambda c: users.request_reset(c, email=email, now=now)
        )
        if found is not None:
            user, token = found
            await asyncio.to_thread(
                deliver_link, settings, to=user.email, purpose="reset", token=token
            )
    context = {"email": email, "sent": True, "mail_on": bool(settings.smtp_url)}
    return _page(request, "auth/forgot.html", context)


# Changing one's own password.


async def change_page(request: Request) -> Response:
    await require_user(request)
    return _page(request, "auth/change_password.html", {"form": _password_form({}, {})})


async def change_submit(request: Request) -> Response:
    user = await require_user(request)
    form = await request.form()
    errors = _mismatch(form)
    current, new = str(form.get("current_password", "")), str(form.get("password", ""))
    now = utcnow()

    def work(connection: Connection) -> str:
        users.change_password(connection, user_id=user.user_id, current=current, new=new, now=now)
        return start_session(connection, user_id=user.user_id, now=now)

    if not errors:
        try:
            key = await runtime(request).run_tx(work)
        except ServiceError as exc:
            errors = dict(exc.fields) or {"password": exc.message}
        else:
            renewed = SignedInUser(user.user_id, user.email, user.role, user.advertiser_id, key)
            return signed_in_response(
                request,
                renewed,
                renewed.home,
                flash="Your password is changed; every other session was signed out.",
            )
    context = {"form": _password_form({}, errors)}
    return _page(request, "auth/change_password.html", context, 422)


# Inviting, from the admin's users pages.

INVITE_FIELDS = ("email", "role", "advertiser")


async def _advertiser_options(request: Request) -> list[tuple[int, str]]:
    query = advertisers.AdvertiserQuery(limit=1000, status="active")
    page = await runtime(request).run_db(lambda c: advertisers.list_advertisers(c, query=query))
    return [(a.id, a.name) for a in page.items]


async def _invite_form(request: Request, form: Form) -> Response:
    context = {"form": form, "advertisers": await _advertiser_options(request)}
    return render(
        request, "auth/admin_invite.html", context, section="users", status_code=form.status
    )


@admin_only
async def admin_invite_page(request: Request) -> Response:
    values = {"role": request.query_params.get("role", "advertiser")}
    values["advertiser"] = request.query_params.get("advertiser", "")
    return await _invite_form(request, blank_form(values))


@admin_only
async def admin_invite_submit(request: Request) -> Response:
    form = await request.form()
    values = {name: text(form, name) for name in INVITE_FIELDS}
    payload: dict[str, Any] = {"email": values["email"], "role": values["role"]}
    advertiser = optional(form, "advertiser")
    if values["role"] == "advertiser" or advertiser:
        payload["advertiser"] = advertiser
    who, now = actor(request), utcnow()

    def work(connection: Connection) -> tuple[users.UserPublic, str]:
        data = parse(users.UserCreate, payload)
        return users.invite_user(connection, data=data, actor=who, now=now)

    try:
        user, token = await runtime(request).run_tx(work)
    except ServiceError as exc:
        return await _invite_form(request, refused(values, exc, INVITE_FIELDS))
    return await _sent(request, user.email, "invite", token)


@admin_only
async def admin_link_submit(request: Request) -> Response:
    user_id: int = request.path_params["id"]
    now = utcnow()

    def work(connection: Connection) -> tuple[users.UserPublic, links.Purpose, str]:
        user = users.get_user(connection, user_id=user_id)
        purpose: links.Purpose = "reset" if user.has_password else "invite"
        return (
            user,
            purpose,
            users.issue_link(connection, user_id=user_id, purpose=purpose, now=now),
        )

    try:
        user, purpose, token = await runtime(request).run_tx(work)
    except NotFound as exc:
        raise HTTPException(404, exc.message) from exc
    except ServiceError as exc:
        raise HTTPException(409, exc.message) from exc
    return await _sent(request, user.email, purpose, token)


async def _sent(request: Request, email: str, purpose: links.Purpose, token: str) -> Response:
    settings = app_of(request).settings
    delivery: LinkDelivery = await asyncio.to_thread(
        deliver_link, settings, to=email, purpose=purpose, token=token
    )
    context = {
        "email": email,
        "purpose": purpose,
        "noun": NOUNS[purpose],
        "delivery": delivery,
        "lifetime": links.LIFETIMES[purpose],
    }
    return render(request, "auth/admin_link.html", context, section="users")


routes = [
    Route("/invite/{token}", invite_page, methods=["GET"], name="invite"),
    Route("/invite/{token}", invite_submit, methods=["POST"], name="invite_submit"),
    Route("/reset/{token}", reset_page, methods=["GET"], name="reset"),
    Route("/reset/{token}", reset_submit, methods=["POST"], name="reset_submit"),
    Route("/forgot", forgot_page, methods=["GET"], name="forgot"),
    Route("/forgot", forgot_submit, methods=["POST"], name="forgot_submit"),
    Route("/account/password", change_page, methods=["GET"], name="change_password"),
    Route("/account/password", change_submit, methods=["POST"], name="change_password_submit"),
    Route("/admin/users/invite", admin_invite_page, methods=["GET"], name="admin_invite"),
    Route("/admin/users/invite", admin_invite_submit, methods=["POST"], name="admin_invite_submit"),
    Route(
        "/admin/users/{id:int}/link", admin_link_submit, methods=["POST"], name="admin_user_link"
    ),
]
