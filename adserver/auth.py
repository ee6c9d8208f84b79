"""Who is asking, and what they may see: the one place that decides it.

A request is made by a :class:`Principal`: an admin (sees and manages everything) or an
advertiser (reads only its own advertiser's figures). Today a principal comes from an API token
(``Authorization: Bearer TOKEN``, made by ``adserver token create``); signed-in users will map to
the same two kinds, so route code asks the principal, never the token or the user.

Tokens are stored as their SHA-256 only: a leaked database does not leak working tokens.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select

from adserver.models import ApiToken, table, utcnow

TOKEN_PREFIX = "ads_"
TOKENS = table(ApiToken)


class Forbidden(Exception):
    """The principal is known but may not see what it asked for; the message says why."""


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller; ``advertiser_id`` None means an admin."""

    name: str
    advertiser_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.advertiser_id is None

    @property
    def sees_delivery_counts(self) -> bool:
        """Requests and served belong to the publisher's slots, not to any advertiser."""
        return self.is_admin

    def advertiser_scope(self, requested: int | None) -> int | None:
        """The advertiser whose figures a query may read: ``requested`` for an admin (None for
        all), always the principal's own for an advertiser; asking for another is Forbidden."""
        if self.advertiser_id is None:
            return requested
        if requested is not None and requested != self.advertiser_id:
            raise Forbidden("this token may read only its own advertiser's statistics")
        return self.advertiser_id


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(connection: Connection, *, name: str, advertiser_id: int | None) -> str:
    """Store a new token (its hash) and return the token itself, which is never stored.

    The caller owns the transaction."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    connection.execute(
        insert(TOKENS).values(
            name=name,
            token_hash=hash_token(token),
            advertiser_id=advertiser_id,
            created_at=utcnow(),
        )
    )
    return token


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header, or None."""
    scheme, _, token = headers.get("authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def principal_for_token(connection: Connection, token: str) -> Principal | None:
    """The principal a token stands for, or None for an unknown token."""
    row = connection.execute(
        select(TOKENS.c.name, TOKENS.c.advertiser_id).where(
            TOKENS.c.token_hash == hash_token(token)
        )
    ).first()
    if row is None:
        return None
    return Principal(name=row.name, advertiser_id=row.advertiser_id)
