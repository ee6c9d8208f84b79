"""Slots: the named places on a site's pages; the name is fixed once tags carry it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field
from sqlalchemy import Connection, delete, exists, insert, select

from adserver.core.models import CampaignSlot, Site, Slot, table
from adserver.services import history
from adserver.services.common import (
    Actor,
    Public,
    Removal,
    Schema,
    Size,
    Slug,
    bump_inventory,
    check_version,
    fetch_row,
    has_statistics,
    history_view,
    inserted_id,
    named,
    valid_id,
    write_version,
)
from adserver.services.errors import Conflict, NotFound
from adserver.services.paging import Page, PageQuery, fetch_page
from adserver.services.sites import require_site

SLOTS = table(Slot)
SITES = table(Site)
CAMPAIGN_SLOTS = table(CampaignSlot)
ENTITY = "slot"

Sizes = list[Size]


class SlotCreate(Schema):
    nullable = frozenset({"fallback_html"})

    site: Slug
    name: Slug
    sizes: Sizes = Field(min_length=1, max_length=20)
    #: Shown when no campaign fills the slot; null collapses it.
    fallback_html: str | None = Field(default=None, max_length=20_000)


class SlotUpdate(Schema):
    immutable = frozenset({"site", "name"})
    nullable = frozenset({"fallback_html"})

    sizes: Sizes | None = Field(default=None, min_length=1, max_length=20)
    fallback_html: str | None = Field(default=None, max_length=20_000)
    status: Literal["active", "archived"] | None = None


class SlotPublic(Public):
    id: int
    site: str
    name: str
    sizes: list[str]
    fallback_html: str | None
    status: str
    version: int
    updated_at: datetime


class SlotQuery(PageQuery):
    site: str | None = None
    status: Literal["active", "archived"] | None = None


def _select() -> Any:
    return select(*SLOTS.c, SITES.c.key.label("site_key")).join(
        SITES, SITES.c.id == SLOTS.c.site_id
    )


def public(row: Any) -> SlotPublic:
    return SlotPublic(
        id=row.id,
        site=row.site_key,
        name=row.name,
        sizes=list(row.sizes),
        fallback_html=row.fallback_html,
        status=row.status,
        version=row.version,
        updated_at=row.updated_at,
    )


def list_slots(connection: Connection, *, query: SlotQuery) -> Page[SlotPublic]:
    statement = _select()
    if query.site is not None:
        statement = statement.where(SITES.c.key == query.site)
    if query.status is not None:
        statement = statement.where(SLOTS.c.status == query.status)
    return fetch_page(
        connection, statement, SLOTS.c.id, limit=query.limit, after=query.after, build=public
    )


def get_slot(connection: Connection, *, slot_id: int) -> SlotPublic:
    if not valid_id(slot_id):
        raise NotFound(f"no such {ENTITY}")
    row = connection.execute(_select().where(SLOTS.c.id == slot_id)).first()
    if row is None:
        raise NotFound(f"no such {ENTITY}")
    return public(row)


def create_slot(
    connection: Connection, *, data: SlotCreate, actor: Actor, now: datetime
) -> SlotPublic:
    site_id = require_site(connection, data.site)
    taken = select(SLOTS.c.id).where(SLOTS.c.site_id == site_id, SLOTS.c.name == data.name)
    if connection.execute(taken).first():
        raise Conflict(
            f"site {data.site!r} has a slot named {data.name!r}", {"name": "is already in use"}
        )
    new_id = inserted_id(
        connection.execute(
            insert(SLOTS).values(
                site_id=site_id,
                name=data.name,
                sizes=data.sizes,
                fallback_html=data.fallback_html,
                status="active",
                updated_at=now,
            )
        )
    )
    slot = get_slot(connection, slot_id=new_id)
    bump_inventory(connection)
    history.record(
        connection,
        actor=actor,
        entity=ENTITY,
        entity_id=slot.id,
        action="create",
        before=None,
        after=history_view(slot),
        now=now,
    )
    return slot


def update_slot(
    connection: Connection,
    *,
    slot_id: int,
    data: SlotUpdate,
    expected_version: int | None,
    actor: Actor,
    now: datetime,
) -> SlotPublic:
    before = get_slot(connection, slot_id=slot_id)
    row = fetch_row(connection, SLOTS, ENTITY, id=slot_id)
    write_version(connection, SLOTS, row, named(data), expected=expected_version, now=now)
    slot = get_slot(connection, slot_id=slot_id)
    history.record(
        connection,
        actor=actor,
        entity=ENTITY,
        entity_id=slot_id,
        action="update",
        before=history_view(before),
        after=history_view(slot),
        now=now,
    )
    return slot


def delete_slot(
    connection: Connection,
    *,
    slot_id: int,
    expected_version: int | None,
    actor: Actor,
    now: datetime,
) -> Removal:
    """Delete a slot nothing refers to; archive one with statistics or a campaign booked."""
    before = get_slot(connection, slot_id=slot_id)
    row = fetch_row(connection, SLOTS, ENTITY, id=slot_id)
    booked = connection.execute(
        select(exists().where(CAMPAIGN_SLOTS.c.slot_id == slot_id))
    ).scalar()
    outcome: Literal["deleted", "archived"]
    if booked or has_statistics(connection, "slot_id", slot_id):
        if row.status != "archived":
            write_version(
                connection, SLOTS, row, {"status": "archived"}, expected=expected_version, now=now
            )
        outcome, after = "archived", history_view(get_slot(connection, slot_id=slot_id))
    else:
        check_version(row, expected_version)
        connection.execute(delete(SLOTS).where(SLOTS.c.id == slot_id))
        bump_inventory(connection)
        outcome, after = "deleted", None
    history.record(
        connection,
        actor=actor,
        entity=ENTITY,
        entity_id=slot_id,
        action="archive" if outcome == "archived" else "delete",
        before=history_view(before),
        after=after,
        now=now,
    )
    return Removal(entity=ENTITY, id=str(slot_id), outcome=outcome)
