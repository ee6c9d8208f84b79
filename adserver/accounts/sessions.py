"""Server-side sessions: who a browser's cookie stands for, until idle or absolute expiry.

The cookie carries a random id; the table keeps only its SHA-256, so a copy of the database
opens no session. A session is valid only while its user is active: disabling a user ends its
sessions on the next request, and :func:`end_user_sessions` deletes them outright (disabled,
deleted, or a new password).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, insert, select, update

from adserver.accounts.principal import Principal
from adserver.core.models import User, UserSession, table

SESSIONS = table(UserSession)
USERS = table(User)

#: ``seen_at`` is rewritten at most this often: a page full of requests costs one write.
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """How long a session lives: ``idle`` since its last request, ``absolute`` since login."""

    idle: timedelta = timedelta(hours=2)
    absolute: timedelta = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class SignedInUser:
    """The user behind a valid session, as pages see it."""

    user_id: int
    email: str
    role: str
    advertiser_id: int | None
    #: The session's cookie value, the key its CSRF token is derived from.
    session_key: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def home(self) -> str:
        """Where this user lands after signing in."""
        return "/admin" if self.is_admin else "/dashboard"

    def principal(self) -> Principal:
        """The same principal an API token of this reach would be: the policy is decided once."""
        if self.is_admin:
            return Principal(self.email, user_id=self.user_id)
        # An advertiser user without an advertiser reads nothing: scope it to no advertiser.
        return Principal(self.email, advertiser_id=self.advertiser_id or 0, user_id=self.user_id)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def start_session(connection: Connection, *, user_id: int, now: datetime) -> str:
    """A new session for ``user_id``; returns the cookie value (never stored). Always a fresh
    id, so an id planted before login (session fixation) never becomes a signed-in one."""
    key = secrets.token_urlsafe(32)
    connection.execute(
        insert(SESSIONS).values(id=_hash(key), user_id=user_id, created_at=now, seen_at=now)
    )
    return key


def session_user(
    connection: Connection, *, key: str, now: datetime, policy: SessionPolicy
) -> SignedInUser | None:
    """The signed-in user of a session cookie, or None when unknown, expired or the user is
    disabled. An expired session is deleted; a live one has ``seen_at`` refreshed now and then.
    The caller commits."""
    session_id = _hash(key)
    row = connection.execute(
        select(
            SESSIONS.c.created_at,
            SESSIONS.c.seen_at,
            USERS.c.id,
            USERS.c.email,
            USERS.c.role,
            USERS.c.advertiser_id,
            USERS.c.active,
        )
        .join(USERS, USERS.c.id == SESSIONS.c.user_id)
        .where(SESSIONS.c.id == session_id)
    ).first()
    if row is None:
        return None
    expired = now - row.seen_at > policy.idle or now - row.created_at > policy.absolute
    if expired or not row.active:
        connection.execute(delete(SESSIONS).where(SESSIONS.c.id == session_id))
        return None
    if now - row.seen_at >= TOUCH_EVERY:
        connection.execute(update(SESSIONS).where(SESSIONS.c.id == session_id).values(seen_at=now))
    return SignedInUser(row.id, row.email, row.role, row.advertiser_id, key)


def end_session(connection: Connection, *, key: str) -> None:
    connection.execute(delete(SESSIONS).where(SESSIONS.c.id == _hash(key)))


def end_user_sessions(connection: Connection, *, user_id: int) -> int:
    """End every session of a user (disabled, deleted, or a new password); how many ended."""
    return connection.execute(delete(SESSIONS).where(SESSIONS.c.user_id == user_id)).rowcount


def prune_sessions(connection: Connection, *, now: datetime, policy: SessionPolicy) -> int:
    """Delete sessions past either expiry (housekeeping; expired ones never open anyway)."""
    stale = (SESSIONS.c.seen_at < now - policy.idle) | (
        SESSIONS.c.created_at < now - policy.absolute
    )
    return connection.execute(delete(SESSIONS).where(stale)).rowcount
