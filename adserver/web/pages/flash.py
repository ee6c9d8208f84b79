"""Flash messages: what a form's action did, shown once on the page it redirects to.

They ride in a short-lived cookie signed with the secret key (HMAC-SHA256), so another site can
neither plant a message nor read one; the page that shows them clears the cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import orjson
from starlette.requests import Request
from starlette.responses import Response

COOKIE = "adserver_flash"
LEVELS = ("success", "error", "info")
#: A message waits at most this long for the page that shows it.
MAX_AGE = 120


def _sign(secret: str, payload: bytes) -> str:
    digest = hmac.new(secret.encode(), b"flash|" + payload, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def add_flash(response: Response, *, secret: str, level: str, text: str, secure: bool) -> None:
    """Carry one message to the next page this browser opens."""
    if level not in LEVELS:
        raise ValueError(f"flash level must be one of {LEVELS}")
    payload = base64.urlsafe_b64encode(orjson.dumps([[level, text[:500]]])).decode()
    response.set_cookie(
        COOKIE,
        f"{payload}.{_sign(secret, payload.encode())}",
        max_age=MAX_AGE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )


def read_flashes(request: Request, *, secret: str) -> list[tuple[str, str]]:
    """The messages waiting for this page; a cookie that does not verify carries none."""
    raw = request.cookies.get(COOKIE)
    if not raw or "." not in raw:
        return []
    payload, _, signature = raw.rpartition(".")
    if not hmac.compare_digest(signature, _sign(secret, payload.encode())):
        return []
    try:
        messages = orjson.loads(base64.urlsafe_b64decode(payload.encode()))
    except (ValueError, orjson.JSONDecodeError):
        return []
    return [(str(level), str(text)) for level, text in messages if level in LEVELS]


def clear_flashes(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/")
