"""The change history: every write through the service layer records who, when, which entity,
and the fields before and after. Read back by ``GET /v1/manage/changes``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field
from sqlalchemy import Connection, insert, select

from adserver.core.db import lock_inventory_counter
from adserver.core.models import Change, table
from adserver.services.common import Actor, Public
from adserver.services.paging import Page, PageQuery, fetch_page

CHANGES = table(Change)
ENTITIES = (
    "site",
    "slot",
    "advertiser",
    "campaign",
    "creative",
    "user",
    "token",
    "report_schedule",
)


class ChangeQuery(PageQuery):
    entity: str = Field(pattern="^(" + "|".join(ENTITIES) + ")$")
    id: str = Field(min_length=1, max_length=64)


class ChangePublic(Public):
    id: int
    at: datetime
    actor: dict[str, Any]
    entity: str
    entity_id: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def record(
    connection: Connection,
    *,
    actor: Actor,
    entity: str,
    entity_id: str | int,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    now: datetime,
) -> None:
    """Add one change; for an update only the fields that changed are kept, on both sides.
    Part of the caller's transaction, so a write and its record land together or not at all;
    ids follow commit order (``lock_inventory_counter``), which the serving processes rely on
    to re-read only what changed."""
    lock_inventory_counter(connection)
    if before is not None and after is not None:
        changed = [key for key in after if before.get(key) != after.get(key)]
        before = {key: before.get(key) for key in changed}
        after = {key: after[key] for key in changed}
    connection.execute(
        insert(CHANGES).values(
            at=now,
            actor_kind=actor.kind,
            actor_id=actor.id,
            actor_name=actor.name,
            entity=entity,
            entity_id=str(entity_id),
            action=action,
            before=before,
            after=after,
        )
    )


def list_changes(connection: Connection, *, query: ChangeQuery) -> Page[ChangePublic]:
    """The changes of one entity, oldest first."""
    select_changes = select(CHANGES).where(
        CHANGES.c.entity == query.entity, CHANGES.c.entity_id == query.id
    )
    return fetch_page(
        connection,
        select_changes,
        CHANGES.c.id,
        limit=query.limit,
        after=query.after,
        build=_public,
    )


def _public(row: Any) -> ChangePublic:
    return ChangePublic(
        id=row.id,
        at=row.at,
        actor={"kind": row.actor_kind, "id": row.actor_id, "name": row.actor_name},
        entity=row.entity,
        entity_id=row.entity_id,
        action=row.action,
        before=row.before,
        after=row.after,
    )


def names_actor(connection: Connection, *, kind: str, actor_id: int) -> bool:
    """Whether the history names this user or token (a user it names is disabled, never
    deleted)."""
    found = connection.execute(
        select(CHANGES.c.id)
        .where(CHANGES.c.actor_kind == kind, CHANGES.c.actor_id == actor_id)
        .limit(1)
    ).first()
    return found is not None
