"""``/dashboard``: an advertiser's own figures; an admin opens any advertiser's with
``?advertiser=ID`` ("view as advertiser"). Its tables as CSV, and its share links.

An advertiser user reaches its own advertiser only: another advertiser's id, or a campaign of
another advertiser, is a 404 as if it did not exist, on the page, its CSVs and its forms."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import Connection
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from adserver.accounts.sessions import SignedInUser
from adserver.core.models import utcnow
from adserver.reporting.dashboard import (
    Dashboard,
    NotFound,
    advertiser_choices,
    dashboard_for,
)
from adserver.reporting.stats import BadQuery
from adserver.services import creatives, share_links
from adserver.services.common import Actor, parse
from adserver.services.errors import NotFound as ServiceNotFound
from adserver.services.errors import ServiceError
from adserver.services.fields import MAX_ID
from adserver.web.common import app_of, runtime
from adserver.web.pages.auth import in_transaction, require_user
from adserver.web.pages.dashview import PRIVATE, context, csv_answer, url

PATH = "/dashboard"


def _numeric(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise HTTPException(400, f"'{name}' must be a numeric id, not {raw[:40]!r}")
    if int(raw) > MAX_ID:
        raise HTTPException(404, f"There is no such {name}.")
    return int(raw)


def _advertiser(user: SignedInUser, requested: int | None) -> int | None:
    """Whose dashboard: an advertiser user's own always (another id is a 404); an admin's
    choice (None: the admin has not chosen yet)."""
    if user.is_admin:
        return requested
    if user.advertiser_id is None or (requested is not None and requested != user.advertiser_id):
        raise HTTPException(404, "There is no such advertiser.")
    return user.advertiser_id


def _keep(user: SignedInUser, advertiser_id: int, campaign_id: int | None) -> dict[str, str]:
    """The URL parameters every link of the page carries besides the period."""
    keep = {"advertiser": str(advertiser_id)} if user.is_admin else {}
    if campaign_id is not None:
        keep["campaign"] = str(campaign_id)
    return keep


async def _load(request: Request, user: SignedInUser) -> tuple[Dashboard, int, int | None, Any]:
    advertiser_id = _advertiser(user, _numeric(request, "advertiser"))
    if advertiser_id is None:
        raise HTTPException(400, "Choose an advertiser.")
    campaign_id = _numeric(request, "campaign")
    params = dict(request.query_params)
    settings = app_of(request).settings

    def work(connection: Connection) -> tuple[Dashboard, Any]:
        now = utcnow()
        dashboard = dashboard_for(
            connection,
            params=params,
            now=now,
            advertiser_id=advertiser_id,
            campaign_id=campaign_id,
        )
        links = share_links.list_share_links(
            connection,
            query=share_links.ShareLinkQuery(campaign=campaign_id, active=True, limit=1000),
            advertiser=advertiser_id,
            base_url=settings.base_url,
            secret=settings.secret_key,
            now=now,
        )
        return dashboard, links.items

    try:
        dashboard, links = await runtime(request).run_db(work)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except BadQuery as exc:
        raise HTTPException(400, str(exc)) from exc
    return dashboard, advertiser_id, campaign_id, links


async def dashboard_page(
    request: Request, upload: dict[str, Any] | None = None, status_code: int = 200
) -> Response:
    user = await require_user(request)
    if user.is_admin and _numeric(request, "advertiser") is None:
        choices = await runtime(request).run_db(advertiser_choices)
        return app_of(request).templates.TemplateResponse(
            request, "dashboard/choose.html", {"choices": choices}, headers=PRIVATE
        )
    dashboard, advertiser_id, campaign_id, links = await _load(request, user)
    keep = _keep(user, advertiser_id, campaign_id)
    page = context(dashboard, path=PATH, csv_path=PATH + "/{table}.csv", keep=keep)
    period = dashboard.period.query()
    page |= {
        "campaign_links": {
            cid: url(PATH, {**_keep(user, advertiser_id, cid), **period})
            for cid in dashboard.scope.campaigns
        }
        if campaign_id is None
        else {},
        "user": user,
        "upload": upload or {"values": {"campaign": campaign_id or ""}, "errors": {}},
        "campaign_options": [(cid, c.name) for cid, c in dashboard.scope.campaigns.items()],
        "size_options": [(size, size) for size in dashboard.scope.sizes],
        "share_links": links,
        "campaign_id": campaign_id,
        "advertiser_keep": _keep(user, advertiser_id, None),
        "flashes": _flashes(request),
    }
    return app_of(request).templates.TemplateResponse(
        request, "dashboard/index.html", page, status_code=status_code, headers=PRIVATE
    )


async def dashboard_view(request: Request) -> Response:
    return await dashboard_page(request)


async def dashboard_csv(request: Request) -> Response:
    user = await require_user(request)
    dashboard, *_ = await _load(request, user)
    answer = csv_answer(dashboard, request.path_params["table"], "dashboard")
    if answer is None:
        raise HTTPException(404, "There is no such table.")
    return answer


def _flashes(request: Request) -> list[tuple[str, str]]:
    done = request.query_params.get("done")
    messages = {
        "shared": ("success", "A share link was made: copy it from the list below."),
        "revoked": ("success", "The share link was revoked: it no longer opens."),
        "uploaded": (
            "success",
            "The creative was uploaded. It waits for the publisher's approval and is not shown "
            "before; its status is in the creatives table below.",
        ),
    }
    return [messages[done]] if done in messages else []


async def create_share_link(request: Request) -> Response:
    """The page's form: a link to one of the advertiser's campaigns, with an optional last
    day (the link works until that day ends, in UTC)."""
    user = await require_user(request)
    form = await request.form()
    advertiser_id = _advertiser(user, _form_id(form.get("advertiser")))
    if advertiser_id is None:
        raise HTTPException(400, "Choose an advertiser.")
    campaign = _form_id(form.get("campaign"))
    if campaign is None:
        raise HTTPException(400, "Choose a campaign to share.")
    expires = str(form.get("expires", "")).strip()
    try:
        last_day = datetime.fromisoformat(expires).date() if expires else None
    except ValueError:
        raise HTTPException(400, "The last day must be a date (YYYY-MM-DD).") from None
    expires_at = datetime.combine(last_day, time.max, tzinfo=UTC) if last_day else None
    settings = app_of(request).settings
    try:
        data = share_links.ShareLinkCreate(campaign=campaign, expires_at=expires_at)
        await in_transaction(
            request,
            lambda c: share_links.create_share_link(
                c,
                data=data,
                advertiser=advertiser_id,
                actor=Actor("user", user.user_id, user.email),
                base_url=settings.base_url,
                secret=settings.secret_key,
                now=utcnow(),
            ),
        )
    except ServiceError as exc:
        raise HTTPException(404 if exc.fields.get("campaign") else 400, exc.message) from exc
    except ValueError as exc:
        raise HTTPException(400, "The share link's fields are not valid.") from exc
    return _back(user, advertiser_id, "shared")


async def revoke_share_link(request: Request) -> Response:
    user = await require_user(request)
    form = await request.form()
    advertiser_id = _advertiser(user, _form_id(form.get("advertiser")))
    if advertiser_id is None:
        raise HTTPException(400, "Choose an advertiser.")
    link_id = request.path_params["id"]
    settings = app_of(request).settings
    try:
        await in_transaction(
            request,
            lambda c: share_links.revoke_share_link(
                c,
                link_id=link_id,
                advertiser=advertiser_id,
                actor=Actor("user", user.user_id, user.email),
                base_url=settings.base_url,
                secret=settings.secret_key,
                now=utcnow(),
            ),
        )
    except ServiceNotFound as exc:
        raise HTTPException(404, "There is no such share link.") from exc
    return _back(user, advertiser_id, "revoked")


#: What the upload form names each field of the service's schema.
UPLOAD_FIELDS = ("campaign", "name", "size", "click_url", "image")


async def upload_creative(request: Request) -> Response:
    """The page's form: an image creative for one of the advertiser's own campaigns, which
    waits for the publisher's approval (the service layer sets it pending)."""
    user = await require_user(request)
    form = await request.form()
    advertiser_id = _advertiser(user, _numeric(request, "advertiser"))
    if advertiser_id is None:
        raise HTTPException(400, "Choose an advertiser.")
    values = {name: str(form.get(name, "")).strip() for name in UPLOAD_FIELDS if name != "image"}
    upload = form.get("image")
    image = await upload.read() if isinstance(upload, UploadFile) else b""
    await form.close()
    width, _, height = values["size"].partition("x")
    payload = {
        "campaign": _form_id(values["campaign"]) or 0,
        "kind": "image",
        "name": values["name"],
        "click_url": values["click_url"],
        "width": int(width) if width.isdigit() else 0,
        "height": int(height) if height.isdigit() else 0,
        "image": base64.b64encode(image).decode() if image else None,
    }

    def work(connection: Connection) -> None:
        data = parse(creatives.CreativeCreate, payload)
        creatives.create_creative(
            connection,
            data=data,
            actor=Actor("user", user.user_id, user.email),
            now=utcnow(),
            scope=advertiser_id,
        )

    try:
        await in_transaction(request, work)
    except ServiceNotFound as exc:
        raise HTTPException(404, "There is no such campaign.") from exc
    except ServiceError as exc:
        errors = {_upload_field(key): why for key, why in exc.fields.items()}
        if not errors:
            errors["image"] = exc.message
        return await dashboard_page(request, {"values": values, "errors": errors}, 422)
    return _back(user, advertiser_id, "uploaded", "#creatives-upload")


def _upload_field(key: str) -> str:
    """The form field a service error concerns (the size is one field here)."""
    name = key.split(".")[0]
    return "size" if name in ("width", "height") else name if name in UPLOAD_FIELDS else "image"


def _form_id(value: Any) -> int | None:
    raw = str(value or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise HTTPException(400, "An id in the form is not a number.")
    if int(raw) > MAX_ID:
        raise HTTPException(404, "There is no such object.")
    return int(raw)


def _back(
    user: SignedInUser, advertiser_id: int, done: str, anchor: str = "#share-links"
) -> Response:
    params = {**_keep(user, advertiser_id, None), "done": done}
    return RedirectResponse(url(PATH, params) + anchor, 303)


routes = [
    Route(PATH, dashboard_view, methods=["GET"], name="dashboard"),
    Route(PATH + "/creatives", upload_creative, methods=["POST"], name="dashboard_upload"),
    Route(PATH + "/share-links", create_share_link, methods=["POST"], name="dashboard_share"),
    Route(
        PATH + "/share-links/{id:int}/revoke",
        revoke_share_link,
        methods=["POST"],
        name="dashboard_share_revoke",
    ),
    Route(PATH + "/{table}.csv", dashboard_csv, methods=["GET"], name="dashboard_csv"),
]
