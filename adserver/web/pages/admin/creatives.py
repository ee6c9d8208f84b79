"""/admin/creatives: upload and edit the ads themselves, see each at its real size, and approve
or reject what advertisers send in.

An HTML creative is previewed only inside a sandboxed iframe whose document comes from its own
URL (``/admin/creatives/ID/frame``, itself sandboxed by its Content-Security-Policy), never in
the admin's page and never through ``srcdoc``: the creative's script runs in an opaque origin
that can read nothing of the admin's session."""

from __future__ import annotations

import base64
import secrets
from functools import partial
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from adserver.services import campaigns, creatives
from adserver.services.common import parse
from adserver.services.errors import NotFound, ServiceError
from adserver.services.images import check_image
from adserver.web.common import app_of
from adserver.web.pages.admin.common import (
    Form,
    actor,
    attempt,
    blank_form,
    done,
    lines,
    list_query,
    not_found,
    now,
    page_links,
    read,
    refused,
    remove,
    render,
    text,
    version_of,
    write,
)
from adserver.web.pages.admin.previews import Preview, preview_sizes

TEXT_FIELDS = (
    "campaign",
    "kind",
    "name",
    "width",
    "height",
    "click_url",
    "weight",
    "status",
    "review_note",
    "impression_trackers",
    "html",
    "title",
    "body",
    "cta",
)
FIELDS = (*TEXT_FIELDS, "image")
KINDS = [("image", "Image"), ("html", "HTML"), ("text", "Text")]
STATUSES = [
    ("active", "Active"),
    ("paused", "Paused"),
    ("pending", "Pending approval"),
    ("rejected", "Rejected"),
    ("archived", "Archived"),
]
#: What a sandboxed preview may do: run its script and open its landing page, nothing else.
FRAME_POLICY = (
    "sandbox allow-scripts allow-popups allow-popups-to-escape-sandbox; default-src * data: blob:; "
    "script-src * 'unsafe-inline'; style-src * 'unsafe-inline'; frame-ancestors 'self'"
)
#: The most an image upload may weigh before the service layer's own checks (300 KB).
MAX_UPLOAD = 400_000


def _base_url(request: Request) -> str:
    return app_of(request).settings.base_url


async def creative_list(request: Request) -> Response:
    query, chosen = list_query(request, creatives.CreativeQuery, "campaign", "advertiser", "status")
    base_url = _base_url(request)
    page = await read(
        request, lambda c: creatives.list_creatives(c, query=query, base_url=base_url)
    )
    context = {
        "page": page,
        "links": page_links(request, page),
        "chosen": chosen,
        "statuses": STATUSES,
    }
    return render(request, "admin/creatives/list.html", context, section="creatives")


async def _upload(form: FormData) -> bytes | None:
    """The uploaded image file's bytes, or None when no file was chosen; the form's files are
    closed once read."""
    upload = form.get("image")
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            return None
        data = await upload.read(MAX_UPLOAD + 1)
    finally:
        await form.close()
    if len(data) > MAX_UPLOAD:
        raise ServiceError("image: too large", {"image": "must be at most 300 KB"})
    return data


def _values(form: FormData) -> dict[str, Any]:
    return {name: text(form, name) for name in TEXT_FIELDS}


def _payload(values: dict[str, Any], image: bytes | None, kind: str) -> dict[str, Any]:
    """The service layer's creative from the form: only the fields of its kind, blanks as
    "none"; an image's size, when left blank, is the uploaded image's own (and the form then
    shows it in ``values``)."""
    payload: dict[str, Any] = {
        "name": values["name"],
        "click_url": values["click_url"],
        "weight": values["weight"] or "1",
        "impression_trackers": lines(values["impression_trackers"]),
    }
    width, height = values["width"], values["height"]
    if kind == "image" and image is not None and not (width or height):
        try:
            checked = check_image(image)
        except ServiceError:
            pass  # the service layer names the problem when the creative is written
        else:
            width, height = str(checked.width), str(checked.height)
            values.update(width=width, height=height)
    if width or height or kind != "text":
        payload.update(width=width or "0", height=height or "0")
    if image is not None:
        payload["image"] = base64.b64encode(image).decode()
    if kind == "html":
        payload["html"] = values["html"]
    if kind == "text":
        payload.update(title=values["title"], body=values["body"], cta=values["cta"])
    if values["status"]:
        payload["status"] = values["status"]
        payload["review_note"] = values["review_note"] or None
    return payload


async def creative_new(request: Request) -> Response:
    form: Form = blank_form(
        {"campaign": request.query_params.get("campaign", ""), "kind": "image", "weight": "1"}
    )
    if request.method == "POST":
        submitted = await request.form(max_part_size=MAX_UPLOAD + 1024)
        values = _values(submitted)
        kind = values["kind"] if values["kind"] in {k for k, _ in KINDS} else "image"
        try:
            image = await _upload(submitted)
        except ServiceError as exc:
            form = refused(values, exc, FIELDS)
        else:
            payload = {
                **_payload(values, image, kind),
                "campaign": values["campaign"],
                "kind": values["kind"],
            }
            outcome = await attempt(
                request,
                values,
                FIELDS,
                lambda: partial(
                    creatives.create_creative,
                    data=parse(creatives.CreativeCreate, payload),
                    actor=actor(request),
                    now=now(),
                    base_url=_base_url(request),
                ),
            )
            if isinstance(outcome, creatives.CreativePublic):
                created = f"Creative {outcome.name} created."
                return done(request, f"/admin/creatives/{outcome.id}", created)
            form = outcome
    context = {"form": form, "creative": None, **await read(request, _campaign_choices)}
    return render(
        request,
        "admin/creatives/form.html",
        context,
        section="creatives",
        status_code=form.status,
    )


def _campaign_choices(connection: Connection) -> dict[str, Any]:
    page = campaigns.list_campaigns(connection, query=campaigns.CampaignQuery(limit=1000))
    return {
        "campaign_choices": [(str(c.id), c.name) for c in page.items if c.status != "archived"],
        "kinds": KINDS,
        "statuses": STATUSES,
    }


def _stored(creative: creatives.CreativePublic) -> dict[str, Any]:
    return {
        "campaign": str(creative.campaign),
        "kind": creative.kind,
        "name": creative.name,
        "width": str(creative.width),
        "height": str(creative.height),
        "click_url": creative.click_url,
        "weight": str(creative.weight),
        "status": creative.status,
        "review_note": creative.review_note or "",
        "impression_trackers": "\n".join(creative.impression_trackers),
        "html": creative.html or "",
        "title": creative.title or "",
        "body": creative.body or "",
        "cta": creative.cta or "",
        "version": creative.version,
    }


async def _get(request: Request, creative_id: int) -> creatives.CreativePublic:
    base_url = _base_url(request)
    try:
        return await read(
            request,
            lambda c: creatives.get_creative(c, creative_id=creative_id, base_url=base_url),
        )
    except NotFound as exc:
        raise not_found(exc) from exc


async def creative_detail(request: Request) -> Response:
    creative_id: int = request.path_params["creative_id"]
    creative = await _get(request, creative_id)
    form: Form = blank_form(_stored(creative))
    if request.method == "POST":
        submitted = await request.form(max_part_size=MAX_UPLOAD + 1024)
        values = {
            **_values(submitted),
            "campaign": str(creative.campaign),
            "kind": creative.kind,
            "version": creative.version,
        }
        try:
            image = await _upload(submitted)
        except ServiceError as exc:
            form = refused(values, exc, FIELDS)
        else:
            payload = _payload(values, image, creative.kind)
            outcome = await attempt(
                request,
                values,
                FIELDS,
                lambda: partial(
                    creatives.update_creative,
                    creative_id=creative_id,
                    data=parse(creatives.CreativeUpdate, payload),
                    expected_version=version_of(submitted),
                    actor=actor(request),
                    now=now(),
                    base_url=_base_url(request),
                ),
            )
            if isinstance(outcome, creatives.CreativePublic):
                return done(request, f"/admin/creatives/{creative_id}", "Creative saved.")
            form = outcome

    def load(connection: Connection) -> dict[str, Any]:
        campaign = campaigns.get_campaign(connection, campaign_id=creative.campaign)
        preview = Preview(creative, campaign.name, preview_sizes(connection, creative))
        return {"campaign": campaign, "preview": preview, **_campaign_choices(connection)}

    context = {"form": form, "creative": creative, **await read(request, load)}
    return render(
        request,
        "admin/creatives/form.html",
        context,
        section="creatives",
        status_code=form.status,
    )


async def creative_frame(request: Request) -> Response:
    """An HTML creative as a document of its own, for the preview's sandboxed iframe: its
    macros filled as a served ad's would be, except that the click goes straight to the landing
    page (a preview is never counted)."""
    creative = await _get(request, request.path_params["creative_id"])
    if creative.kind != "html" or not creative.html:
        raise not_found(NotFound("this creative has no HTML"))
    markup = (
        creative.html.replace("%%CLICK_URL_ENC%%", quote(creative.click_url, safe=""))
        .replace("%%CLICK_URL%%", creative.click_url)
        .replace("%%CACHEBUSTER%%", secrets.token_hex(8))
    )
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Preview</title>'
        "<style>html,body{margin:0;padding:0;overflow:hidden}</style></head>"
        f"<body>{markup}</body></html>"
    )
    return HTMLResponse(
        document,
        headers={"Content-Security-Policy": FRAME_POLICY, "Cache-Control": "private, no-store"},
    )


async def creative_review(request: Request) -> Response:
    """Approve a creative an advertiser sent in, or reject it with a reason they will see."""
    creative_id: int = request.path_params["creative_id"]
    submitted = await request.form()
    approve = text(submitted, "decision") == "approve"
    note = text(submitted, "review_note") or None
    change = (
        {"status": "active", "review_note": None}
        if approve
        else {
            "status": "rejected",
            "review_note": note,
        }
    )
    here = f"/admin/creatives/{creative_id}"
    try:
        await write(
            request,
            partial(
                creatives.update_creative,
                creative_id=creative_id,
                data=parse(creatives.CreativeUpdate, change),
                expected_version=version_of(submitted),
                actor=actor(request),
                now=now(),
            ),
        )
    except NotFound as exc:
        raise not_found(exc) from exc
    except ServiceError as exc:
        return done(request, here, exc.message, level="error")
    return done(
        request, here, "Creative approved: it serves now." if approve else "Creative rejected."
    )


async def creative_delete(request: Request) -> Response:
    creative_id: int = request.path_params["creative_id"]
    submitted = await request.form()
    return await remove(
        request,
        partial(
            creatives.delete_creative,
            creative_id=creative_id,
            expected_version=version_of(submitted),
            actor=actor(request),
            now=now(),
        ),
        here=f"/admin/creatives/{creative_id}",
        listing="/admin/creatives",
        noun="Creative",
    )


routes = [
    Route("/admin/creatives", creative_list, methods=["GET"], name="admin_creatives"),
    Route("/admin/creatives/new", creative_new, methods=["GET", "POST"], name="admin_creative_new"),
    Route(
        "/admin/creatives/{creative_id:int}",
        creative_detail,
        methods=["GET", "POST"],
        name="admin_creative",
    ),
    Route(
        "/admin/creatives/{creative_id:int}/frame",
        creative_frame,
        methods=["GET"],
        name="admin_creative_frame",
    ),
    Route(
        "/admin/creatives/{creative_id:int}/review",
        creative_review,
        methods=["POST"],
        name="admin_creative_review",
    ),
    Route(
        "/admin/creatives/{creative_id:int}/delete",
        creative_delete,
        methods=["POST"],
        name="admin_creative_delete",
    ),
]
