"""Signing in: the throttle, the password check and a new session, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select

from adserver.accounts import throttle
from adserver.accounts.passwords import verify_password
from adserver.accounts.sessions import SignedInUser, start_session
from adserver.core.models import User, table

USERS = table(User)


@dataclass(frozen=True, slots=True)
class LoginOutcome:
    """``user`` is set when the login succeeded; ``refused_for`` > 0 when the address is
    throttled (the password was not even checked); ``delay``: hold the answer this long."""

    user: SignedInUser | None
    refused_for: int = 0
    delay: float = 0.0


def normalise_email(email: str) -> str:
    return email.strip().lower()


def attempt_login(
    connection: Connection, *, email: str, password: str, address: str, now: datetime
) -> LoginOutcome:
    """Check one login attempt and, when it succeeds, start a session. A wrong e-mail and a
    wrong password are the same failure to the caller. The caller commits."""
    email = normalise_email(email)
    epoch = int(now.timestamp())
    verdict = throttle.verdict(connection, address=address, email=email, now=epoch)
    if verdict.refused_for:
        return LoginOutcome(None, verdict.refused_for, verdict.delay)
    row = connection.execute(
        select(
            USERS.c.id,
            USERS.c.email,
            USERS.c.role,
            USERS.c.advertiser_id,
            USERS.c.active,
            USERS.c.password_hash,
        ).where(func.lower(USERS.c.email) == email)
    ).first()
    matches = verify_password(row.password_hash if row is not None else None, password)
    if row is None or not matches or not row.active:
        throttle.record_failure(connection, address=address, email=email, now=epoch)
        return LoginOutcome(None, 0, verdict.delay)
    throttle.forget_failures(connection, address=address, email=email)
    key = start_session(connection, user_id=row.id, now=now)
    return LoginOutcome(
        SignedInUser(row.id, row.email, row.role, row.advertiser_id, key), 0, verdict.delay
    )
