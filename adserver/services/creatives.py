"""Creatives: the ads themselves (image, HTML or text), their images and landing URLs.

Images are checked and re-encoded on the way in (``images.check_image``) and stored in the
database, so every process serves them; answers give the image's URL, never its bytes. HTML is
stored as written and only ever shown inside the sandboxed iframe. A creative an advertiser's
token writes waits for the publisher's approval (status ``pending``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field
from sqlalchemy import Connection, delete, insert, select

from adserver.core.models import Campaign, Creative, table
from adserver.delivery.render import asset_url
from adserver.services import history
from adserver.services.campaigns import require_campaign
from adserver.services.common import (
    Actor,
    HttpsUrl,
    HttpUrl,
    Id,
    Name,
    Public,
    Removal,
    Schema,
    bump_inventory,
    check_version,
    has_statistics,
    history_view,
    inserted_id,
    named,
    valid_id,
    write_version,
)
from adserver.services.errors import NotFound, ServiceError
from adserver.services.images import check_image, decode_base64, stored_size
from adserver.services.paging import Page, PageQuery, fetch_page

CREATIVES = table(Creative)
CAMPAIGNS = table(Campaign)
ENTITY = "creative"

Kind = Literal["image", "html", "text"]
Status = Literal["active", "paused", "archived", "pending", "rejected"]
#: What only the publisher may set: an advertiser's writes always wait for review.
REVIEWED = frozenset({"status", "review_note"})


class CreativeFields(Schema):
    nullable = frozenset({"review_note", "image", "html", "title", "body", "cta"})

    name: Name
    width: int = Field(default=0, ge=0, le=4000)
    height: int = Field(default=0, ge=0, le=4000)
    click_url: HttpUrl
    weight: int = Field(default=1, ge=1, le=1000)
    status: Status = "active"
    review_note: str | None = Field(default=None, max_length=1000)
    impression_trackers: list[HttpsUrl] = Field(default_factory=list, max_length=10)
    #: Base64 (or a data: URL); a multipart upload's file part arrives here as well.
    image: str | None = Field(default=None, max_length=500_000)
    html: str | None = Field(default=None, max_length=100_000)
    title: str | None = Field(default=None, max_length=100)
    body: str | None = Field(default=None, max_length=500)
    cta: str | None = Field(default=None, max_length=40)


class CreativeCreate(CreativeFields):
    campaign: Id
    kind: Kind = "image"


class CreativeUpdate(Schema):
    immutable = frozenset({"campaign", "kind"})
    nullable = CreativeFields.nullable

    name: Name | None = None
    width: int | None = Field(default=None, ge=0, le=4000)
    height: int | None = Field(default=None, ge=0, le=4000)
    click_url: HttpUrl | None = None
    weight: int | None = Field(default=None, ge=1, le=1000)
    status: Status | None = None
    review_note: str | None = Field(default=None, max_length=1000)
    impression_trackers: list[HttpsUrl] | None = Field(default=None, max_length=10)
    image: str | None = Field(default=None, max_length=500_000)
    html: str | None = Field(default=None, max_length=100_000)
    title: str | None = Field(default=None, max_length=100)
    body: str | None = Field(default=None, max_length=500)
    cta: str | None = Field(default=None, max_length=40)


class CreativePublic(Public):
    id: int
    campaign: int
    advertiser: int
    name: str
    kind: str
    width: int
    height: int
    click_url: str
    weight: int
    status: str
    review_note: str | None
    impression_trackers: list[str]
    image_url: str | None
    html: str | None
    title: str | None
    body: str | None
    cta: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class CreativeQuery(PageQuery):
    campaign: Id | None = None
    advertiser: Id | None = None
    status: Status | None = None


def _select() -> Any:
    columns = [column for column in CREATIVES.c if column.name != "image"]
    has_image = CREATIVES.c.image_type.is_not(None).label("has_image")
    return select(*columns, has_image, CAMPAIGNS.c.advertiser_id).join(
        CAMPAIGNS, CAMPAIGNS.c.id == CREATIVES.c.campaign_id
    )


def public(row: Any, base_url: str = "") -> CreativePublic:
    version = int(row.updated_at.timestamp())
    return CreativePublic(
        id=row.id,
        campaign=row.campaign_id,
        advertiser=row.advertiser_id,
        name=row.name,
        kind=row.kind,
        width=row.width,
        height=row.height,
        click_url=row.click_url,
        weight=row.weight,
        status=row.status,
        review_note=row.review_note,
        impression_trackers=list(row.impression_trackers or []),
        image_url=asset_url(base_url, row.id, version) if row.has_image else None,
        html=row.html,
        title=row.title,
        body=row.body,
        cta=row.cta,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def list_creatives(
    connection: Connection, *, query: CreativeQuery, scope: int | None = None, base_url: str = ""
) -> Page[CreativePublic]:
    statement = _select()
    if scope is not None:
        statement = statement.where(CAMPAIGNS.c.advertiser_id == scope)
    if query.campaign is not None:
        statement = statement.where(CREATIVES.c.campaign_id == query.campaign)
    if query.advertiser is not None:
        statement = statement.where(CAMPAIGNS.c.advertiser_id == query.advertiser)
    if query.status is not None:
        statement = statement.where(CREATIVES.c.status == query.status)
    return fetch_page(
        connection,
        statement,
        CREATIVES.c.id,
        limit=query.limit,
        after=query.after,
        build=lambda row: public(row, base_url),
    )


def _row(connection: Connection, creative_id: int, scope: int | None) -> Any:
    if not valid_id(creative_id):
        raise NotFound(f"no such {ENTITY}")
    row = connection.execute(_select().where(CREATIVES.c.id == creative_id)).first()
    if row is None or (scope is not None and row.advertiser_id != scope):
        raise NotFound(f"no such {ENTITY}")
    return row


def get_creative(
    connection: Connection, *, creative_id: int, scope: int | None = None, base_url: str = ""
) -> CreativePublic:
    return public(_row(connection, creative_id, scope), base_url)


def _reviewed_by_publisher(values: dict[str, Any], scope: int | None) -> dict[str, Any]:
    """An advertiser's write goes (back) to review; only the publisher sets the verdict."""
    if scope is None:
        return values
    refused = {name: "only the publisher sets this" for name in REVIEWED & set(values)}
    if refused:
        raise ServiceError("a creative waits for the publisher's review", refused)
    return {**values, "status": "pending", "review_note": None}


def _content(
    connection: Connection, kind: str, values: dict[str, Any], current: Any | None
) -> dict[str, Any]:
    """The columns for ``values``, with the image checked and the kind's rules applied to the
    creative as it will be; every problem named."""
    columns = {k: v for k, v in values.items() if k not in ("image", "campaign")}
    if "campaign" in values:
        columns["campaign_id"] = values["campaign"]

    def now_value(name: str) -> Any:
        if name in values:
            return values[name]
        return getattr(current, name) if current is not None else None

    width, height = now_value("width") or 0, now_value("height") or 0
    fields: dict[str, str] = {}
    image_bytes: bytes | None = None
    if "image" in values:
        if values["image"] is None:
            columns["image"], columns["image_type"] = None, None
        else:
            raw = decode_base64("image", values["image"])
            declared = (width, height) if kind == "image" else None
            checked = check_image(raw, size=declared)
            columns["image"], columns["image_type"] = checked.data, checked.media_type
            image_bytes = checked.data
    has_image = (
        columns.get("image") is not None
        if "image" in values
        else bool(current is not None and current.has_image)
    )
    if kind == "image":
        if not width or not height:
            fields["width" if not width else "height"] = "an image creative needs its size"
        if not has_image:
            fields["image"] = "an image creative needs an image"
        elif image_bytes is None and current is not None and ({"width", "height"} & set(values)):
            stored = _stored_image(connection, current.id)
            if stored != (width, height):
                fields["width"] = (
                    f"the image is {stored[0]}x{stored[1]}: upload one of the new size"
                )
        if now_value("html"):
            fields["html"] = "only an HTML creative has HTML"
    elif kind == "html":
        if not (now_value("html") or "").strip():
            fields["html"] = "an HTML creative needs its HTML"
        if has_image:
            fields["image"] = "an HTML creative has no image: put it in the HTML"
    elif not (now_value("title") or "").strip():
        fields["title"] = "a text creative needs a title"
    if fields:
        raise ServiceError("invalid " + ", ".join(sorted(fields)), fields)
    return columns


def _stored_image(connection: Connection, creative_id: int) -> tuple[int, int]:
    data = connection.execute(
        select(CREATIVES.c.image).where(CREATIVES.c.id == creative_id)
    ).scalar()
    return stored_size(data) if data else (0, 0)


def create_creative(
    connection: Connection,
    *,
    data: CreativeCreate,
    actor: Actor,
    now: datetime,
    scope: int | None = None,
    base_url: str = "",
) -> CreativePublic:
    require_campaign(connection, data.campaign, scope)
    values = _reviewed_by_publisher(data.model_dump(exclude_unset=True), scope)
    values.setdefault("campaign", data.campaign)
    values["kind"] = data.kind
    values["click_url"] = data.click_url
    columns = _content(connection, data.kind, values, None)
    new_id = inserted_id(
        connection.execute(insert(CREATIVES).values(**columns, created_at=now, updated_at=now))
    )
    bump_inventory(connection)
    creative = get_creative(connection, creative_id=new_id, base_url=base_url)
    history.record(
        connection,
        actor=actor,
        entity=ENTITY,
        entity_id=new_id,
        action="create",
        before=None,
        after=history_view(creative),
        now=now,
    )
    return creative


def update_creative(
    connection: Connection,
    *,
    creative_id: int,
    data: CreativeUpdate,
    expected_version: int | None,
    actor: Actor,
    now: datetime,
    scope: int | None = None,
    base_url: str = "",
) -> CreativePublic:
    row = _row(connection, creative_id, scope)
    check_version(row, expected_version)
    values = _reviewed_by_publisher(named(data), scope)
    columns = _content(connection, row.kind, values, row)
    write_version(connection, CREATIVES, row, columns, expected=expected_version, now=now)
    creative = get_creative(connection, creative_id=creative_id, base_url=base_url)
    history.record(
        connection,
        actor=actor,
        entity=ENTITY,
        entity_id=creative_id,
        action="update",
        before=history_view(public(row, base_url)),
        after=history_view(creative),
        now=now,
    )
    return creative


def delete_creative(
    connection: Connection,
    *,
    creative_id: int,
    expected_version: int | None,
    actor: Actor,
    now: datetime,
    scope: int | None = None,
) -> Removal:
    """Delete a creative that never delivered; archive one with statistics."""
    row = _row(connection, creative_id, scope)
    outcome: Literal["deleted", "archived"]
    if has_statistics(connection, "creative_id", creative_id):
        if row.status != "archived":
            write_version(
                connection,
                CREATIVES,
                row,
                {"status": "archived"},
                expected=expected_version,
                now=now,
            )
        outcome, after = "archived", history_view(get_creative(connection, creative_id=creative_id))
    else:
        check_version(row, expected_version)
        connection.execute(delete(CREATIVES).where(CREATIVES.c.id == creative_id))
        bump_inventory(connection)
        outcome, after = "deleted", None
    history.record(
        connection,
        actor=actor,
        entity=ENTITY,
        entity_id=creative_id,
        action="archive" if outcome == "archived" else "delete",
        before=history_view(public(row)),
        after=after,
        now=now,
    )
    return Removal(entity=ENTITY, id=str(creative_id), outcome=outcome)


def landing_url(connection: Connection, creative_id: int) -> str | None:
    """The stored landing URL of a creative, whatever its status (a click on an ad shown before
    it was paused still lands), or None if there is no such creative."""
    url = connection.execute(
        select(CREATIVES.c.click_url).where(CREATIVES.c.id == creative_id)
    ).scalar()
    return str(url) if url else None


def image(connection: Connection, creative_id: int) -> Any | None:
    """The creative's image bytes, media type and version (``.image``, ``.image_type``,
    ``.version``), or None."""
    row = connection.execute(
        select(CREATIVES.c.image, CREATIVES.c.image_type, CREATIVES.c.version).where(
            CREATIVES.c.id == creative_id
        )
    ).first()
    return None if row is None or row.image is None else row
