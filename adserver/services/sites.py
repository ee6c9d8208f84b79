"""Sites: a publisher's web sites, named by a key (fixed once tags carry it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field
from sqlalchemy import Connection, delete, exists, insert, select

from adserver.core.models import CampaignSlot, Site, Slot, table
from adserver.reporting import rollups
from adserver.services import history
from adserver.services.common import (
    Actor,
    Currency,
    Email,
    Host,
    HttpsUrl,
    Name,
    Public,
    Removal,
    Schema,
    Slug,
    TimeZone,
    bump_inventory,
    check_version,
    fetch_row,
    has_statistics,
    history_view,
    is_slug,
    named,
    write_version,
)
from adserver.services.errors import Conflict, NotFound, ServiceError, invalid
from adserver.services.paging import Page, PageQuery, fetch_page

SITES = table(Site)
SLOTS = table(Slot)
CAMPAIGN_SLOTS = table(CampaignSlot)
ENTITY = "site"


class SiteCreate(Schema):
    nullable = frozenset({"logo_url", "report_email"})

    key: Slug
    name: Name
    domains: list[Host] = Field(default_factory=list, max_length=100)
    timezone: TimeZone = "UTC"
    currency: Currency = "USD"
    #: Shown at the top of its reports (an https URL), and where the publisher's summary goes.
    logo_url: HttpsUrl | None = None
    report_email: Email | None = None


class SiteUpdate(Schema):
    immutable = frozenset({"key"})
    nullable = frozenset({"logo_url", "report_email"})

    name: Name | None = None
    domains: list[Host] | None = Field(default=None, max_length=100)
    timezone: TimeZone | None = None
    currency: Currency | None = None
    logo_url: HttpsUrl | None = None
    report_email: Email | None = None
    status: Literal["active", "archived"] | None = None


class SitePublic(Public):
    id: int
    key: str
    name: str
    domains: list[str]
    timezone: str
    currency: str
    logo_url: str | None
    report_email: str | None
    status: str
    version: int
    created_at: datetime
    updated_at: datetime


class SiteQuery(PageQuery):
    after: str | None = None  # type: ignore[assignment]  # a site's id is its key
    status: Literal["active", "archived"] | None = None


def public(row: Any) -> SitePublic:
    return SitePublic(
        id=row.id,
        key=row.key,
        name=row.name,
        domains=list(row.domains),
        timezone=row.timezone,
        currency=row.currency,
        logo_url=row.logo_url,
        report_email=row.report_email,
        status=row.status,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def site_id(connection: Connection, key: str) -> int:
    """The numeric id of the site with this key, or NotFound."""
    if not is_slug(key):
        raise NotFound(f"no site with key {key!r}")
    found = connection.execute(select(SITES.c.id).where(SITES.c.key == key)).scalar()
    if found is None:
        raise NotFound(f"no site with key {key!r}")
    return int(found)


def list_sites(connection: Connection, *, query: SiteQuery) -> Page[SitePublic]:
    statement = select(SITES)
    if query.status is not None:
        statement = statement.where(SITES.c.status == query.status)
    after = None
    if query.after is not None:
        try:
            after = site_id(connection, query.after)
        except NotFound as exc:
            raise invalid("after", "no site has this key") from exc
    return fetch_page(
        connection,
        statement,
        SITES.c.id,
        limit=query.limit,
        after=after,
        build=public,
        cursor=lambda row: str(row.key),
    )


def get_site(connection: Connection, *, key: str) -> SitePublic:
    if not is_slug(key):
        raise NotFound(f"no such {ENTITY}")
    return public(fetch_row(connection, SITES, ENTITY, key=key))


def create_site(
    connection: Connection, *, data: SiteCreate, actor: Actor, now: datetime
) -> SitePublic:
    if connection.execute(select(SITES.c.id).where(SITES.c.key == data.key)).first():
        raise Conflict(f"a site with key {data.key!r} exists", {"key": "is already in use"})
    connection.execute(
        insert(SITES).values(**data.model_dump(), status="active", created_at=now, updated_at=now)
    )
    site = get_site(connection, key=data.key)
    bump_inventory(connection)
    history.record(
        connection,
        actor=actor,
        entity=ENTITY,
        entity_id=site.key,
        action="create",
        before=None,
        after=history_view(site),
        now=now,
    )
    return site


def update_site(
    connection: Connection,
    *,
    key: str,
    data: SiteUpdate,
    expected_version: int | None,
    actor: Actor,
    now: datetime,
) -> SitePublic:
    row = fetch_row(connection, SITES, ENTITY, key=key)
    write_version(connection, SITES, row, named(data), expected=expected_version, now=now)
    site = get_site(connection, key=key)
    if site.timezone != row.timezone:
        # Its hours now fall into other local days: the daily rollups are summed again.
        rollups.rebuild(connection, [int(row.id)])
    history.record(
        connection,
        actor=actor,
        entity=ENTITY,
        entity_id=key,
        action="update",
        before=history_view(public(row)),
        after=history_view(site),
        now=now,
    )
    return site


def delete_site(
    connection: Connection,
    *,
    key: str,
    expected_version: int | None,
    actor: Actor,
    now: datetime,
) -> Removal:
    """Delete a site nothing refers to (with its slots); archive one with statistics or with a
    slot a campaign is booked on."""
    row = fetch_row(connection, SITES, ENTITY, key=key)
    booked = connection.execute(
        select(exists().where(CAMPAIGN_SLOTS.c.slot_id == SLOTS.c.id, SLOTS.c.site_id == row.id))
    ).scalar()
    before = history_view(public(row))
    if booked or has_statistics(connection, "site_id", row.id):
        if row.status != "archived":
            write_version(
                connection, SITES, row, {"status": "archived"}, expected=expected_version, now=now
            )
        outcome: Literal["deleted", "archived"] = "archived"
        after: dict[str, Any] | None = history_view(get_site(connection, key=key))
    else:
        check_version(row, expected_version)
        connection.execute(delete(SLOTS).where(SLOTS.c.site_id == row.id))
        connection.execute(delete(SITES).where(SITES.c.id == row.id))
        bump_inventory(connection)
        outcome, after = "deleted", None
    history.record(
        connection,
        actor=actor,
        entity=ENTITY,
        entity_id=key,
        action="archive" if outcome == "archived" else "delete",
        before=before,
        after=after,
        now=now,
    )
    return Removal(entity=ENTITY, id=key, outcome=outcome)


def require_site(connection: Connection, key: str, field: str = "site") -> int:
    """The id of the site a payload names, or a 422 on that field."""
    try:
        return site_id(connection, key)
    except NotFound as exc:
        raise ServiceError(f"{field}: no site has key {key!r}", {field: "no such site"}) from exc
