"""Share links: a read-only link to one campaign's dashboard, opened without a login.

A link's token is ``ID.MAC``, the MAC an HMAC-SHA256 of the id and the link's random salt under
the secret key. The token is never stored, so the database alone opens nothing, yet the owner
can be shown the link again at any time. A link ends when it expires or is revoked (revoking
keeps the row, so the owner's list says what happened); changing the secret key ends them all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime
from sqlalchemy import Connection, insert, select, update

from adserver.core.models import Campaign, ShareLink, table
from adserver.services import history
from adserver.services.common import Actor, Public, Schema, history_view, inserted_id
from adserver.services.errors import NotFound, ServiceError
from adserver.services.fields import MAX_ID, Id
from adserver.services.paging import Page, PageQuery, fetch_page

LINKS = table(ShareLink)
CAMPAIGNS = table(Campaign)
ENTITY = "share_link"
PATH = "/share/"


class ShareLinkCreate(Schema):
    nullable = frozenset({"expires_at"})

    campaign: Id
    #: When the link stops opening (ISO 8601 with an offset); null: until revoked.
    expires_at: AwareDatetime | None = None


class ShareLinkPublic(Public):
    id: int
    campaign: int
    campaign_name: str
    #: The link itself: anyone holding it sees this campaign's dashboard, nothing else.
    url: str
    expires_at: datetime | None
    revoked_at: datetime | None
    #: Whether it opens now (neither expired nor revoked).
    active: bool
    created_by: str
    created_at: datetime


class ShareLinkQuery(PageQuery):
    campaign: Id | None = None
    active: bool | None = None


def token_for(link_id: int, salt: str, secret: str) -> str:
    mac = hmac.new(secret.encode(), f"share-link:{link_id}:{salt}".encode(), hashlib.sha256)
    return f"{link_id}.{base64.urlsafe_b64encode(mac.digest()[:24]).decode().rstrip('=')}"


def _select() -> Any:
    return select(
        *LINKS.c, CAMPAIGNS.c.name.label("campaign_name"), CAMPAIGNS.c.advertiser_id
    ).join(CAMPAIGNS, CAMPAIGNS.c.id == LINKS.c.campaign_id)


def _active(row: Any, now: datetime) -> bool:
    return row.revoked_at is None and (row.expires_at is None or row.expires_at > now)


def public(row: Any, *, base_url: str, secret: str, now: datetime) -> ShareLinkPublic:
    return ShareLinkPublic(
        id=row.id,
        campaign=row.campaign_id,
        campaign_name=row.campaign_name,
        url=base_url.rstrip("/") + PATH + token_for(row.id, row.salt, secret),
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        active=_active(row, now),
        created_by=row.created_by,
        created_at=row.created_at,
    )


def list_share_links(
    connection: Connection,
    *,
    query: ShareLinkQuery,
    advertiser: int | None,
    base_url: str,
    secret: str,
    now: datetime,
) -> Page[ShareLinkPublic]:
    """Links to the campaigns of ``advertiser`` (None: every advertiser's)."""
    statement = _select()
    if advertiser is not None:
        statement = statement.where(CAMPAIGNS.c.advertiser_id == advertiser)
    if query.campaign is not None:
        statement = statement.where(LINKS.c.campaign_id == query.campaign)
    if query.active is not None:
        live = (LINKS.c.revoked_at.is_(None)) & (
            LINKS.c.expires_at.is_(None) | (LINKS.c.expires_at > now)
        )
        statement = statement.where(live if query.active else ~live)
    return fetch_page(
        connection,
        statement,
        LINKS.c.id,
        limit=query.limit,
        after=query.after,
        build=lambda row: public(row, base_url=base_url, secret=secret, now=now),
    )


def get_share_link(
    connection: Connection,
    *,
    link_id: int,
    advertiser: int | None,
    base_url: str,
    secret: str,
    now: datetime,
) -> ShareLinkPublic:
    row = _row(connection, link_id, advertiser)
    return public(row, base_url=base_url, secret=secret, now=now)


def _row(connection: Connection, link_id: int, advertiser: int | None) -> Any:
    statement = _select().where(LINKS.c.id == link_id)
    if advertiser is not None:
        statement = statement.where(CAMPAIGNS.c.advertiser_id == advertiser)
    row = connection.execute(statement).first()
    if row is None:
        raise NotFound("no such share link")
    return row


def create_share_link(
    connection: Connection,
    *,
    data: ShareLinkCreate,
    advertiser: int | None,
    actor: Actor,
    base_url: str,
    secret: str,
    now: datetime,
) -> ShareLinkPublic:
    """A new link to a campaign of ``advertiser`` (None: any campaign)."""
    owner = connection.execute(
        select(CAMPAIGNS.c.advertiser_id).where(CAMPAIGNS.c.id == data.campaign)
    ).scalar()
    if owner is None or (advertiser is not None and owner != advertiser):
        raise ServiceError(
            f"campaign: there is no campaign {data.campaign}", {"campaign": "no such campaign"}
        )
    if data.expires_at is not None and data.expires_at <= now:
        raise ServiceError(
            "expires_at: must be in the future", {"expires_at": "must be in the future"}
        )
    link_id = inserted_id(
        connection.execute(
            insert(LINKS).values(
                campaign_id=data.campaign,
                salt=secrets.token_hex(16),
                expires_at=data.expires_at,
                revoked_at=None,
                created_by=actor.name,
                created_at=now,
            )
        )
    )
    link = get_share_link(
        connection, link_id=link_id, advertiser=None, base_url=base_url, secret=secret, now=now
    )
    history.record(
        connection,
        actor=actor,
        entity=ENTITY,
        entity_id=link_id,
        action="create",
        before=None,
        after=_view(link),
        now=now,
    )
    return link


def revoke_share_link(
    connection: Connection,
    *,
    link_id: int,
    advertiser: int | None,
    actor: Actor,
    base_url: str,
    secret: str,
    now: datetime,
) -> ShareLinkPublic:
    """End a link at once (revoking one already ended changes nothing)."""
    before = get_share_link(
        connection,
        link_id=link_id,
        advertiser=advertiser,
        base_url=base_url,
        secret=secret,
        now=now,
    )
    if before.revoked_at is None:
        connection.execute(update(LINKS).where(LINKS.c.id == link_id).values(revoked_at=now))
    link = get_share_link(
        connection,
        link_id=link_id,
        advertiser=advertiser,
        base_url=base_url,
        secret=secret,
        now=now,
    )
    history.record(
        connection,
        actor=actor,
        entity=ENTITY,
        entity_id=link_id,
        action="revoke",
        before=_view(before),
        after=_view(link),
        now=now,
    )
    return link


def _view(link: ShareLinkPublic) -> dict[str, Any]:
    """What the change history keeps: never the link itself, which opens the dashboard."""
    view = history_view(link)
    del view["url"]
    return view


def open_share_link(connection: Connection, *, token: str, secret: str, now: datetime) -> int:
    """The campaign a link shows, or NotFound (the same for a forged, expired or revoked link,
    so a guess learns nothing)."""
    raw_id, _, _mac = token.partition(".")
    if not raw_id.isdigit() or len(raw_id) > 10 or int(raw_id) > MAX_ID:
        raise NotFound("no such share link")
    row = connection.execute(select(LINKS).where(LINKS.c.id == int(raw_id))).first()
    if row is None or not hmac.compare_digest(token, token_for(row.id, row.salt, secret)):
        raise NotFound("no such share link")
    if not _active(row, now):
        raise NotFound("no such share link")
    return int(row.campaign_id)
