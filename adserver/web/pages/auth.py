"""Signing in and out, and THE way a page route learns who is asking.

Every page route that needs a signed-in user starts with::

    from adserver.web.pages.auth import require_user

    async def campaigns_page(request: Request) -> Response:
        user = await require_user(request, role="admin")   # or "advertiser", or no role
        principal = user.principal()                         # what the services are given

``require_user`` answers a visitor who is not signed in with a redirect to ``/login`` (which
comes back to the page afterwards) and a signed-in user of another role with a 403; it reads
the session once per request. ``current_user`` is the same without the demands.

Templates get ``csrf_token`` (put it in every form as ``<input type="hidden" name="csrf_token"
value="{{ csrf_token }}">``, or ``{% from "auth/_csrf.html" import csrf_field with context %}``
and ``{{ csrf_field() }}``), ``csp_nonce`` and
``signed_in`` (the user, once ``require_user`` or ``current_user`` has run). The check of that
token happens in one place for every form: ``web.security.PageGuard``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

from sqlalchemy import Connection
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from adserver.accounts.csrf import csrf_token as derive_csrf_token
from adserver.accounts.login import attempt_login
from adserver.accounts.sessions import SessionPolicy, SignedInUser, end_session, session_user
from adserver.core.models import utcnow
from adserver.web.common import app_of, runtime
from adserver.web.pages.flash import add_flash
from adserver.web.security import (
    CSP_NONCE,
    CSRF_COOKIE,
    NEW_CSRF_KEY,
    SESSION_COOKIE,
    cookie,
    csrf_key,
)

T = TypeVar("T")
ROLES = ("admin", "advertiser")
_USER = "signed_in_user"


class LoginRequired(HTTPException):
    """Raised by :func:`require_user` for a visitor who is not signed in: a 303 to /login."""

    def __init__(self, next_path: str) -> None:
        location = "/login" + (f"?next={quote(next_path, safe='/')}" if next_path != "/" else "")
        super().__init__(303, headers={"Location": location})


async def login_required(request: Request, exc: Exception) -> Response:
    """The app's handler for :class:`LoginRequired`."""
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(exc.headers["Location"] if exc.headers else "/login", 303)


async def in_transaction(request: Request, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in one committed transaction, in a worker thread (for page handlers)."""
    return await runtime(request).run_tx(work)


def session_policy(request: Request) -> SessionPolicy:
    return SessionPolicy()


async def current_user(request: Request) -> SignedInUser | None:
    """The signed-in user of this request, or None (looked up once per request)."""
    state = request.scope.setdefault("state", {})
    if _USER in state:
        user: SignedInUser | None = state[_USER]
        return user
    key = cookie(request.scope, SESSION_COOKIE)
    user = None
    if key is not None:
        policy = session_policy(request)
        user = await runtime(request).run_tx(
            lambda c: session_user(c, key=key, now=utcnow(), policy=policy)
        )
    state[_USER] = user
    return user


async def require_user(request: Request, *, role: str | None = None) -> SignedInUser:
    """The signed-in user, who must have ``role`` when one is given ("admin" or
    "advertiser"). Not signed in: :class:`LoginRequired` (a redirect to /login and back);
    another role: a 403."""
    if role is not None and role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    user = await current_user(request)
    if user is None:
        path = request.url.path
        if request.method == "GET" and request.url.query:
            path += "?" + request.url.query
        raise LoginRequired(path if request.method == "GET" else "/")
    if role is not None and user.role != role:
        raise HTTPException(403, f"this page is for {role} users")
    return user


def csrf_token(request: Request) -> str:
    """The CSRF token a form on this page must send back (field ``csrf_token``)."""
    key = csrf_key(request.scope)
    if key is None:
        state = request.scope.setdefault("state", {})
        key = state.get(NEW_CSRF_KEY)
        if key is None:
            key = state[NEW_CSRF_KEY] = secrets.token_urlsafe(32)
    return derive_csrf_token(app_of(request).settings.secret_key, key)


class _LazyToken:
    """Computed only when a template prints it: the slot frame never makes a CSRF cookie."""

    def __init__(self, request: Request) -> None:
        self.request = request

    def __str__(self) -> str:
        return csrf_token(self.request)

    __html__ = __str__


def template_context(request: Request) -> dict[str, Any]:
    """What every template may use: ``csrf_token``, ``csp_nonce``, ``signed_in``."""
    state = request.scope.get("state", {})
    return {
        "csrf_token": _LazyToken(request),
        "csp_nonce": state.get(CSP_NONCE, ""),
        "signed_in": state.get(_USER),
    }


def _secure(request: Request) -> bool:
    return app_of(request).settings.base_url.startswith("https://")


def safe_next(value: str | None) -> str | None:
    """A local path to return to after login; anything else (another site) is dropped."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return None
    return value


def _client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    response = app_of(request).templates.TemplateResponse(
        request, name, context, status_code=status
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def home(request: Request) -> Response:
    user = await current_user(request)
    return RedirectResponse(user.home if user is not None else "/login", 303)


async def login_page(request: Request) -> Response:
    user = await current_user(request)
    next_path = safe_next(request.query_params.get("next"))
    if user is not None:
        return RedirectResponse(next_path or user.home, 303)
    return _render(request, "auth/login.html", {"email": "", "next": next_path, "error": None})


async def login_submit(request: Request) -> Response:
    form = await request.form()
    email = str(form.get("email", ""))[:320]
    password = str(form.get("password", ""))
    next_path = safe_next(str(form.get("next", "")))
    old_key = cookie(request.scope, SESSION_COOKIE)
    address = _client_address(request)
    now = utcnow()

    def work(connection: Connection) -> Any:
        if old_key is not None:
            end_session(connection, key=old_key)
        return attempt_login(connection, email=email, password=password, address=address, now=now)

    outcome = await runtime(request).run_tx(work)
    if outcome.delay:
        await asyncio.sleep(outcome.delay)  # the per-account slow-down, never a lock-out
    if outcome.user is None:
        if outcome.refused_for:
            error = (
                "Too many wrong passwords from your address. "
                f"Try again in {outcome.refused_for} seconds."
            )
            status = 429
        else:
            error, status = "Wrong e-mail address or password.", 401
        context = {"email": email, "next": next_path, "error": error}
        response = _render(request, "auth/login.html", context, status)
        if outcome.refused_for:
            response.headers["Retry-After"] = str(outcome.refused_for)
        return response
    return signed_in_response(request, outcome.user, next_path or outcome.user.home)


def signed_in_response(
    request: Request, user: SignedInUser, location: str, *, flash: str | None = None
) -> Response:
    """A 303 to ``location`` that gives the browser ``user``'s new session cookie (HttpOnly,
    SameSite=Lax, Secure behind https), with an optional message for the page it lands on."""
    response = RedirectResponse(location, 303)
    secure = _secure(request)
    response.set_cookie(
        SESSION_COOKIE,
        user.session_key,
        max_age=int(session_policy(request).absolute.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=secure,
    )
    response.delete_cookie(CSRF_COOKIE, httponly=True, samesite="lax", secure=secure)
    if flash is not None:
        secret = app_of(request).settings.secret_key
        add_flash(response, secret=secret, level="success", text=flash, secure=secure)
    return response


async def logout_page(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return RedirectResponse("/login", 303)
    return _render(request, "auth/logout.html", {})


async def logout_submit(request: Request) -> Response:
    key = cookie(request.scope, SESSION_COOKIE)
    if key is not None:
        await runtime(request).run_tx(lambda c: end_session(c, key=key))
    response = RedirectResponse("/login", 303)
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax", secure=_secure(request))
    return response


routes = [
    Route("/", home, methods=["GET"], name="home"),
    Route("/login", login_page, methods=["GET"], name="login"),
    Route("/login", login_submit, methods=["POST"], name="login_submit"),
    Route("/logout", logout_page, methods=["GET"], name="logout"),
    Route("/logout", logout_submit, methods=["POST"], name="logout_submit"),
]
