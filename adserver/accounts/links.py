"""Single-use links to set a password: invitations (a new user) and resets (forgotten password).

The link carries a random token; the table keeps its SHA-256, when it expires and when it was
used. Redeeming is one compare-and-set ``UPDATE``, so two clicks on one link set one password.
A new link for a user and purpose replaces the older ones, and setting a password voids them.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, Connection, and_, delete, insert, select, update

from adserver.core.models import AccountLink, table

LINKS = table(AccountLink)

Purpose = Literal["invite", "reset"]
#: How long each kind of link stays usable.
LIFETIMES: dict[str, timedelta] = {"invite": timedelta(days=7), "reset": timedelta(hours=1)}
#: The pages that redeem each kind of link (``BASE + PATH + token``).
PATHS: dict[str, str] = {"invite": "/invite/", "reset": "/reset/"}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_link(connection: Connection, *, user_id: int, purpose: Purpose, now: datetime) -> str:
    """A new link token for ``user_id`` (older unused ones of the same purpose stop working).
    The caller commits and builds the URL with :func:`link_url`."""
    connection.execute(delete(LINKS).where(LINKS.c.user_id == user_id, LINKS.c.purpose == purpose))
    token = secrets.token_urlsafe(32)
    connection.execute(
        insert(LINKS).values(
            token_hash=_hash(token),
            user_id=user_id,
            purpose=purpose,
            created_at=now,
            expires_at=now + LIFETIMES[purpose],
        )
    )
    return token


def issued_since(
    connection: Connection, *, user_id: int, purpose: Purpose, since: datetime
) -> bool:
    """Whether a link of this purpose was made for the user after ``since`` (a second "forgot
    password" within a minute sends nothing more)."""
    found = connection.execute(
        select(LINKS.c.id).where(
            LINKS.c.user_id == user_id, LINKS.c.purpose == purpose, LINKS.c.created_at > since
        )
    ).first()
    return found is not None


def link_url(base_url: str, purpose: str, token: str) -> str:
    return f"{base_url}{PATHS[purpose]}{token}"


def _usable(token: str, purpose: str, now: datetime) -> ColumnElement[bool]:
    return and_(
        LINKS.c.token_hash == _hash(token),
        LINKS.c.purpose == purpose,
        LINKS.c.used_at.is_(None),
        LINKS.c.expires_at > now,
    )


def link_user(connection: Connection, *, token: str, purpose: Purpose, now: datetime) -> int | None:
    """The user a usable link is for (unused, unexpired), without using it; else None."""
    if len(token) > 100:
        return None
    found = connection.execute(select(LINKS.c.user_id).where(_usable(token, purpose, now))).scalar()
    return None if found is None else int(found)


def redeem_link(
    connection: Connection, *, token: str, purpose: Purpose, now: datetime
) -> int | None:
    """Use a link once: the user it was for, or None when it is unknown, expired or used."""
    user_id = link_user(connection, token=token, purpose=purpose, now=now)
    if user_id is None:
        return None
    used = connection.execute(
        update(LINKS).where(_usable(token, purpose, now)).values(used_at=now)
    ).rowcount
    return user_id if used == 1 else None


def void_links(connection: Connection, *, user_id: int) -> None:
    """Every outstanding link of a user stops working (a new password, a disabled user)."""
    connection.execute(delete(LINKS).where(LINKS.c.user_id == user_id))
