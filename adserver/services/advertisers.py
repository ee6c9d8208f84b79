"""Advertisers: who buys campaigns. An advertiser token sees only its own advertiser."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, delete, exists, insert, select

from adserver.core.models import Advertiser, ApiToken, Campaign, User, table
from adserver.services import history
from adserver.services.common import (
    Actor,
    Email,
    Name,
    Public,
    Removal,
    Schema,
    bump_inventory,
    check_version,
    fetch_row,
    history_view,
    inserted_id,
    named,
    valid_id,
    write_version,
)
from adserver.services.errors import Conflict, NotFound, ServiceError
from adserver.services.paging import Page, PageQuery, fetch_page

ADVERTISERS = table(Advertiser)
CAMPAIGNS = table(Campaign)
ENTITY = "advertiser"


class AdvertiserCreate(Schema):
    name: Name
    email: Email = ""


class AdvertiserUpdate(Schema):
    name: Name | None = None
    email: Email | None = None
    status: Literal["active", "archived"] | None = None


class AdvertiserPublic(Public):
    id: int
    name: str
    email: str
    status: str
    version: int
    created_at: datetime
    updated_at: datetime


class AdvertiserQuery(PageQuery):
    status: Literal["active", "archived"] | None = None


def public(row: Any) -> AdvertiserPublic:
    return AdvertiserPublic(
        id=row.id,
        name=row.name,
        email=row.email,
        status=row.status,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _visible(advertiser_id: int, scope: int | None) -> None:
    """Another advertiser's objects do not exist for an advertiser's token."""
    if (scope is not None and advertiser_id != scope) or not valid_id(advertiser_id):
        raise NotFound(f"no such {ENTITY}")


def list_advertisers(
    connection: Connection, *, query: AdvertiserQuery, scope: int | None = None
) -> Page[AdvertiserPublic]:
    statement = select(ADVERTISERS)
    if scope is not None:
        statement = statement.where(ADVERTISERS.c.id == scope)
    if query.status is not None:
        statement = statement.where(ADVERTISERS.c.status == query.status)
    return fetch_page(
        connection,
        statement,
        ADVERTISERS.c.id,
        limit=query.limit,
        after=query.after,
        build=public,
    )


def get_advertiser(
    connection: Connection, *, advertiser_id: int, scope: int | None = None
) -> AdvertiserPublic:
    _visible(advertiser_id, scope)
    return public(fetch_row(connection, ADVERTISERS, ENTITY, id=advertiser_id))


def require_advertiser(connection: Connection, advertiser_id: int, scope: int | None) -> None:
    """A payload's ``advertiser`` must exist (and be the caller's own): else a 422 on it."""
    try:
        get_advertiser(connection, advertiser_id=advertiser_id, scope=scope)
    except NotFound as exc:
        raise ServiceError(
            f"advertiser: no advertiser {advertiser_id}", {"advertiser": "no such advertiser"}
        ) from exc


def _name_free(connection: Connection, name: str, but: int | None = None) -> None:
    taken = select(ADVERTISERS.c.id).where(ADVERTISERS.c.name == name)
    if but is not None:
        taken = taken.where(ADVERTISERS.c.id != but)
    if connection.execute(taken).first():
        raise Conflict(f"an advertiser named {name!r} exists", {"name": "is already in use"})


def create_advertiser(
    connection: Connection, *, data: AdvertiserCreate, actor: Actor, now: datetime
) -> AdvertiserPublic:
    _name_free(connection, data.name)
    new_id = inserted_id(
        connection.execute(
            insert(ADVERTISERS).values(
                **data.model_dump(), status="active", created_at=now, updated_at=now
            )
        )
    )
    bump_inventory(connection)
    advertiser = get_advertiser(connection, advertiser_id=new_id)
    history.record(
        connection,
        actor=actor,
        entity=ENTITY,
        entity_id=new_id,
        action="create",
        before=None,
        after=history_view(advertiser),
        now=now,
    )
    return advertiser


def update_advertiser(
    connection: Connection,
    *,
    advertiser_id: int,
    data: AdvertiserUpdate,
    expected_version: int | None,
    actor: Actor,
    now: datetime,
) -> AdvertiserPublic:
    row = fetch_row(connection, ADVERTISERS, ENTITY, id=advertiser_id)
    values = named(data)
    if "name" in values:
        _name_free(connection, values["name"], but=advertiser_id)
    write_version(connection, ADVERTISERS, row, values, expected=expected_version, now=now)
    advertiser = get_advertiser(connection, advertiser_id=advertiser_id)
    history.record(
        connection,
        actor=actor,
        entity=ENTITY,
        entity_id=advertiser_id,
        action="update",
        before=history_view(public(row)),
        after=history_view(advertiser),
        now=now,
    )
    return advertiser


def delete_advertiser(
    connection: Connection,
    *,
    advertiser_id: int,
    expected_version: int | None,
    actor: Actor,
    now: datetime,
) -> Removal:
    """Delete an advertiser nothing refers to; archive one with campaigns, users or tokens
    (its campaigns are archived too, so none of them serves any more)."""
    row = fetch_row(connection, ADVERTISERS, ENTITY, id=advertiser_id)
    referred = any(
        connection.execute(
            select(exists().where(table(model).c.advertiser_id == advertiser_id))
        ).scalar()
        for model in (Campaign, User, ApiToken)
    )
    outcome: Literal["deleted", "archived"]
    if referred:
        if row.status != "archived":
            write_version(
                connection,
                ADVERTISERS,
                row,
                {"status": "archived"},
                expected=expected_version,
                now=now,
            )
        _archive_campaigns(connection, advertiser_id=advertiser_id, actor=actor, now=now)
        outcome, after = "archived", history_view(get_advertiser(connection, advertiser_id=row.id))
    else:
        check_version(row, expected_version)
        connection.execute(delete(ADVERTISERS).where(ADVERTISERS.c.id == advertiser_id))
        bump_inventory(connection)
        outcome, after = "deleted", None
    history.record(
        connection,
        actor=actor,
        entity=ENTITY,
        entity_id=advertiser_id,
        action="archive" if outcome == "archived" else "delete",
        before=history_view(public(row)),
        after=after,
        now=now,
    )
    return Removal(entity=ENTITY, id=str(advertiser_id), outcome=outcome)


def _archive_campaigns(
    connection: Connection, *, advertiser_id: int, actor: Actor, now: datetime
) -> None:
    rows = connection.execute(
        select(CAMPAIGNS.c.id, CAMPAIGNS.c.status, CAMPAIGNS.c.version).where(
            CAMPAIGNS.c.advertiser_id == advertiser_id, CAMPAIGNS.c.status != "archived"
        )
    ).all()
    for campaign in rows:
        write_version(
            connection, CAMPAIGNS, campaign, {"status": "archived"}, expected=None, now=now
        )
        history.record(
            connection,
            actor=actor,
            entity="campaign",
            entity_id=campaign.id,
            action="archive",
            before={"status": campaign.status},
            after={"status": "archived"},
            now=now,
        )
    if rows:
        bump_inventory(connection)
