"""The page guard: security headers on every page and the one CSRF check for every form.

Pure ASGI, around the router (the hot lane's decides and beacons never pass through it):

- Every answer outside the slot frame (``/v1/slot/``, which publishers frame) and the demo
  article gets a Content-Security-Policy without inline script (a per-request nonce, exposed to
  templates as ``csp_nonce``, admits a script that must be inline), ``frame-ancestors 'none'``,
  ``Referrer-Policy: same-origin`` and ``X-Content-Type-Options: nosniff``. A route that must be
  framed by our own pages (an HTML creative's preview) sets its own Content-Security-Policy,
  which is kept as it is.
- Every POST, PUT, PATCH or DELETE outside ``/v1/`` (the JSON API authenticates by bearer token,
  never by cookie) must carry the CSRF token of ``web.pages.auth.csrf_token`` in a form field
  ``csrf_token`` or an ``X-CSRF-Token`` header, or it is refused with 403 before any route runs.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request, cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adserver.accounts.csrf import csrf_valid

SESSION_COOKIE = "adserver_session"
#: The pre-login key of CSRF tokens (login, forgotten password and invitation forms).
CSRF_COOKIE = "adserver_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
#: Where a new pre-login CSRF key waits for the answer's Set-Cookie (scope["state"]).
NEW_CSRF_KEY = "csrf_new_key"
CSP_NONCE = "csp_nonce"
#: Larger form posts are refused before they are read (creative images are at most 300 KB).
MAX_FORM_BYTES = 8 * 1024 * 1024

UNSAFE_METHODS = frozenset(("POST", "PUT", "PATCH", "DELETE"))
NO_CSRF_PREFIXES = ("/v1/",)
NO_HEADER_PREFIXES = ("/v1/slot/", "/demo")

POLICY = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; "
    # Inline style attributes (a progress bar's width, a slot's reserved height) are allowed;
    # script never is.
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)


def cookie(scope: Scope, name: str) -> str | None:
    """One cookie of the request, read without building a Request."""
    raw = Headers(scope=scope).get("cookie")
    return cookie_parser(raw).get(name) or None if raw else None


def csrf_key(scope: Scope) -> str | None:
    """The cookie a CSRF token is bound to: the session, or before login the pre-login key."""
    return cookie(scope, SESSION_COOKIE) or cookie(scope, CSRF_COOKIE)


class PageGuard:
    def __init__(self, app: ASGIApp, *, secret: str, secure_cookies: bool) -> None:
        self.app = app
        self.secret = secret
        self.secure_cookies = secure_cookies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        state: MutableMapping[str, Any] = scope.setdefault("state", {})
        nonce = state[CSP_NONCE] = secrets.token_urlsafe(16)
        if scope["method"] in UNSAFE_METHODS and not path.startswith(NO_CSRF_PREFIXES):
            checked = await self._check_csrf(scope, receive, send)
            if checked is None:
                return
            receive = checked
        headers_on = not path.startswith(NO_HEADER_PREFIXES)

        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if headers_on:
                    _security_headers(headers, nonce)
                new_key = state.get(NEW_CSRF_KEY)
                if new_key:
                    headers.append("set-cookie", self._csrf_cookie(new_key))
            await send(message)

        await self.app(scope, receive, guarded_send)

    def _csrf_cookie(self, key: str) -> str:
        secure = "; Secure" if self.secure_cookies else ""
        return f"{CSRF_COOKIE}={key}; Path=/; HttpOnly; SameSite=Lax{secure}"

    async def _check_csrf(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """The body read and the token checked: a receive that replays the body, or None when
        the request was refused (the answer is sent)."""
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
            await _refuse(scope, send, 413, "This form is too large to send.")
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_FORM_BYTES:
                await _refuse(scope, send, 413, "This form is too large to send.")
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replay = _replay(b"".join(chunks))
        token = Headers(scope=scope).get(CSRF_HEADER)
        if token is None:
            token = await _form_token(scope, _replay(b"".join(chunks)))
        if not csrf_valid(self.secret, csrf_key(scope), token):
            await _refuse(
                scope,
                send,
                403,
                "This form has expired or was sent from another site. "
                "Go back, reload the page and try again.",
            )
            return None
        return replay


def _security_headers(headers: MutableHeaders, nonce: str) -> None:
    if "content-security-policy" not in headers:
        headers["Content-Security-Policy"] = POLICY.format(nonce=nonce)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Content-Type-Options", "nosniff")


def _replay(body: bytes) -> Callable[[], Awaitable[Message]]:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _form_token(scope: Scope, receive: Receive) -> str | None:
    content_type = Headers(scope=scope).get("content-type", "")
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return None
    request = Request(scope, receive)
    try:
        form = await request.form()
    except (HTTPException, MultiPartException):  # a malformed body: no token in it
        return None
    try:
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    finally:
        await form.close()


async def _refuse(scope: Scope, send: Send, status: int, message: str) -> None:
    """A short page in the site's layout (plain text if the app has no templates)."""
    templates = getattr(scope.get("app"), "templates", None)
    if templates is not None:
        body = templates.get_template("auth/refused.html").render(
            status=status, message=message, csp_nonce=""
        )
        media_type = "text/html; charset=utf-8"
    else:
        body, media_type = message, "text/plain; charset=utf-8"
    payload = body.encode()
    headers = MutableHeaders(
        raw=[(b"content-type", media_type.encode()), (b"content-length", b"%d" % len(payload))]
    )
    _security_headers(headers, secrets.token_urlsafe(16))
    await send({"type": "http.response.start", "status": status, "headers": headers.raw})
    await send({"type": "http.response.body", "body": payload})
