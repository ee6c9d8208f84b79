"""/admin/tokens: API tokens for programs; a token's secret is shown once, on the page that
made it (never stored, never shown again), and revoking one refuses it everywhere at once."""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.services import advertisers, tokens
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

FIELDS = ("name", "advertiser")


async def token_list(
    request: Request, *, form: Form | None = None, created: tokens.TokenCreated | None = None
) -> Response:
    query, chosen = list_query(request, tokens.TokenQuery, "status", "advertiser")

    def load(connection: Connection) -> dict[str, Any]:
        sellers = advertisers.list_advertisers(
            connection, query=advertisers.AdvertiserQuery(limit=1000)
        )
        return {
            "page": tokens.list_tokens(connection, query=query),
            "advertiser_names": {a.id: a.name for a in sellers.items},
        }

    context = await read(request, load)
    form = form or blank_form()
    context.update(
        links=page_links(request, context["page"]),
        chosen=chosen,
        form=form,
        created=created,
    )
    return render(
        request, "admin/tokens/list.html", context, section="tokens", status_code=form.status
    )


async def token_list_page(request: Request) -> Response:
    return await token_list(request)


async def token_new(request: Request) -> Response:
    """Make a token and show its secret on this answer only (no redirect carries it)."""
    submitted = await request.form()
    values = {"name": text(submitted, "name"), "advertiser": text(submitted, "advertiser")}
    payload = {"name": values["name"], "advertiser": values["advertiser"] or None}
    outcome = await attempt(
        request,
        values,
        FIELDS,
        lambda: partial(
            tokens.create_token,
            data=parse(tokens.TokenCreate, payload),
            actor=actor(request),
            now=now(),
        ),
    )
    if isinstance(outcome, Form):
        return await token_list(request, form=outcome)
    return await token_list(request, created=outcome)


async def token_revoke(request: Request) -> Response:
    token_id: int = request.path_params["token_id"]
    submitted = await request.form()
    try:
        await write(
            request,
            partial(
                tokens.revoke_token,
                token_id=token_id,
                expected_version=version_of(submitted),
                actor=actor(request),
                now=now(),
            ),
        )
    except NotFound as exc:
        raise not_found(exc) from exc
    except ServiceError as exc:
        return done(request, "/admin/tokens", exc.message, level="error")
    return done(request, "/admin/tokens", "Token revoked: it no longer opens anything.")


routes = [
    Route("/admin/tokens", token_list_page, methods=["GET"], name="admin_tokens"),
    Route("/admin/tokens", token_new, methods=["POST"], name="admin_token_new"),
    Route(
        "/admin/tokens/{token_id:int}/revoke",
        token_revoke,
        methods=["POST"],
        name="admin_token_revoke",
    ),
]
