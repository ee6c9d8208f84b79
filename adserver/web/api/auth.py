"""Bearer-token authentication for the JSON API: the caller's principal, or a 401."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from adserver.accounts.principal import Principal, bearer_token
from adserver.core.models import utcnow
from adserver.core.switching import quick_switches
from adserver.services.tokens import principal_for_token
from adserver.web.common import error, runtime

PRIVATE = {"Cache-Control": "private, no-store"}
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="adserver"'}


NO_TOKEN = "this API needs an 'Authorization: Bearer TOKEN' header"
BAD_TOKEN = "the bearer token is not valid"


async def authenticate(request: Request) -> Principal | Response:
    """The caller's principal, or the 401 answer to give instead."""
    token = bearer_token(request.headers)
    if token is None:
        return unauthenticated(NO_TOKEN)
    with quick_switches.during():
        principal = await runtime(request).run_tx(
            lambda c: principal_for_token(c, token, now=utcnow())
        )
    if principal is None:
        return unauthenticated(BAD_TOKEN)
    return principal


def unauthenticated(message: str) -> Response:
    """The 401 answer, with the challenge that names the scheme."""
    return error(401, message, headers=CHALLENGE)
