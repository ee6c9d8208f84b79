"""API tokens: created (shown once), looked up by their hash, listed and revoked.

Tokens are stored as their SHA-256 only: a leaked database does not leak working tokens.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import Connection, insert, select

from adserver.accounts.principal import Principal
from adserver.core.models import ApiToken, table, utcnow

TOKEN_PREFIX = "ads_"
TOKENS = table(ApiToken)


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
