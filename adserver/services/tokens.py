"""API tokens: created (the secret shown once), looked up by their hash, listed and revoked.

Tokens are stored as their SHA-256 only: a leaked database does not leak working tokens. Every
request looks its token up, so a revocation holds at once in every process. The last use is
written at most once a minute per token, so a busy script costs no write per request.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field
from sqlalchemy import Connection, insert, or_, select, update

from adserver.accounts.principal import Principal
from adserver.core.models import Advertiser, ApiToken, table, utcnow
from adserver.services import history
from adserver.services.common import (
    SYSTEM,
    Actor,
    Name,
    Public,
    Schema,
    check_version,
    fetch_row,
    history_view,
    inserted_id,
    named,
)
from adserver.services.errors import PreconditionFailed, invalid
from adserver.services.paging import Page, PageQuery, fetch_page

TOKEN_PREFIX = "ads_"
TOKENS = table(ApiToken)
ADVERTISERS = table(Advertiser)
ENTITY = "token"
#: ``last_used_at`` is rewritten only when older than this.
USE_RECORDED_EVERY = timedelta(minutes=1)


class TokenCreate(Schema):
    nullable = frozenset({"advertiser"})

    name: Name
    #: The advertiser the token reads for; null: an admin token.
    advertiser: int | None = Field(default=None, ge=1)


class TokenUpdate(Schema):
    read_only = Schema.read_only | {"token", "last_used_at", "revoked_at", "active"}
    immutable = frozenset({"advertiser"})

    name: Name | None = None


class TokenPublic(Public):
    id: int
    name: str
    advertiser: int | None
    #: False once revoked.
    active: bool
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    version: int
    updated_at: datetime


class TokenCreated(TokenPublic):
    """The answer to a creation: the only time the secret is shown."""

    token: str


class TokenRemoval(Public):
    """The answer to deleting a token: it is revoked, and kept for the change history."""

    entity: Literal["token"] = "token"
    id: str
    outcome: Literal["revoked"] = "revoked"


class TokenQuery(PageQuery):
    advertiser: int | None = Field(default=None, ge=1)
    status: Literal["active", "revoked"] | None = None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def public(row: Any) -> TokenPublic:
    return TokenPublic(
        id=row.id,
        name=row.name,
        advertiser=row.advertiser_id,
        active=row.revoked_at is None,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        version=row.version,
        updated_at=row.updated_at,
    )


def list_tokens(connection: Connection, *, query: TokenQuery) -> Page[TokenPublic]:
    statement = select(TOKENS)
    if query.advertiser is not None:
        statement = statement.where(TOKENS.c.advertiser_id == query.advertiser)
    if query.status == "active":
        statement = statement.where(TOKENS.c.revoked_at.is_(None))
    elif query.status == "revoked":
        statement = statement.where(TOKENS.c.revoked_at.is_not(None))
    return fetch_page(
        connection, statement, TOKENS.c.id, limit=query.limit, after=query.after, build=public
    )


def get_token(connection: Connection, *, token_id: int) -> TokenPublic:
    return public(fetch_row(connection, TOKENS, ENTITY, id=token_id))


def create_token(
    connection: Connection, *, data: TokenCreate, actor: Actor, now: datetime
) -> TokenCreated:
    """Store a new token (its hash) and return it with its secret, which is never stored."""
    if data.advertiser is not None:
        found = connection.execute(
            select(ADVERTISERS.c.id).where(ADVERTISERS.c.id == data.advertiser)
        ).first()
        if found is None:
            raise invalid("advertiser", "no such advertiser")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = inserted_id(
        connection.execute(
            insert(TOKENS).values(
                name=data.name,
                token_hash=hash_token(secret),
                advertiser_id=data.advertiser,
                created_at=now,
                updated_at=now,
            )
        )
    )
    token = get_token(connection, token_id=token_id)
    _record(connection, actor, token_id, "create", None, history_view(token), now)
    return TokenCreated(**token.model_dump(), token=secret)


def create_api_token(connection: Connection, *, name: str, advertiser_id: int | None) -> str:
    """A new token's secret, made by the system (the command line, tests' set-up)."""
    data = TokenCreate(name=name, advertiser=advertiser_id)
    return create_token(connection, data=data, actor=SYSTEM, now=utcnow()).token


def update_token(
    connection: Connection,
    *,
    token_id: int,
    data: TokenUpdate,
    expected_version: int | None,
    actor: Actor,
    now: datetime,
) -> TokenPublic:
    row = fetch_row(connection, TOKENS, ENTITY, id=token_id)
    _write(connection, row, named(data), expected_version, now)
    token = get_token(connection, token_id=token_id)
    before = history_view(public(row))
    _record(connection, actor, token_id, "update", before, history_view(token), now)
    return token


def revoke_token(
    connection: Connection,
    *,
    token_id: int,
    expected_version: int | None,
    actor: Actor,
    now: datetime,
) -> TokenRemoval:
    """Revoke a token: every process refuses it from the next request on. Revoking twice is
    harmless (the first revocation's time stays)."""
    row = fetch_row(connection, TOKENS, ENTITY, id=token_id)
    check_version(row, expected_version)
    if row.revoked_at is None:
        _write(connection, row, {"revoked_at": now}, expected_version, now)
        after = history_view(get_token(connection, token_id=token_id))
        _record(connection, actor, token_id, "archive", history_view(public(row)), after, now)
    return TokenRemoval(id=str(token_id))


def principal_for_token(
    connection: Connection, token: str, *, now: datetime | None = None
) -> Principal | None:
    """The principal a token stands for, or None for an unknown or revoked token. With
    ``now``, the use is recorded (at most once a minute; the caller commits)."""
    if len(token) > 200:
        return None
    row = connection.execute(
        select(TOKENS.c.id, TOKENS.c.name, TOKENS.c.advertiser_id, TOKENS.c.last_used_at).where(
            TOKENS.c.token_hash == hash_token(token), TOKENS.c.revoked_at.is_(None)
        )
    ).first()
    if row is None:
        return None
    stale = row.last_used_at is None or (
        now is not None and now - row.last_used_at >= USE_RECORDED_EVERY
    )
    if now is not None and stale:
        connection.execute(
            update(TOKENS)
            .where(
                TOKENS.c.id == row.id,
                or_(
                    TOKENS.c.last_used_at.is_(None),
                    TOKENS.c.last_used_at <= now - USE_RECORDED_EVERY,
                ),
            )
            .values(last_used_at=now)
        )
    return Principal(name=row.name, advertiser_id=row.advertiser_id, token_id=row.id)


def _write(
    connection: Connection, row: Any, values: dict[str, Any], expected: int | None, now: datetime
) -> None:
    """Compare and set on the version read, so of two concurrent writers one gets a 412."""
    check_version(row, expected)
    done = connection.execute(
        update(TOKENS)
        .where(TOKENS.c.id == row.id, TOKENS.c.version == row.version)
        .values(**values, version=row.version + 1, updated_at=now)
    ).rowcount
    if done != 1:
        raise PreconditionFailed("this token changed while it was being written: try again")


def _record(
    connection: Connection,
    actor: Actor,
    token_id: int,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    now: datetime,
) -> None:
    history.record(
        connection,
        actor=actor,
        entity=ENTITY,
        entity_id=token_id,
        action=action,
        before=before,
        after=after,
        now=now,
    )
