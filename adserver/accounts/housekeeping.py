"""Hourly clean-up of what sign-ins leave behind: expired sessions, spent or expired password
links, and login failures older than the throttle looks back. None of these opens anything
once expired; pruning only keeps the tables small."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete

from adserver.accounts import throttle
from adserver.accounts.sessions import SessionPolicy, prune_sessions
from adserver.core.models import AccountLink, LoginFailure, table

LINKS = table(AccountLink)
FAILURES = table(LoginFailure)


def prune_accounts(engine: Engine, *, now: datetime, policy: SessionPolicy | None = None) -> str:
    """Delete expired sessions, used or expired links and stale login failures; says how many."""
    with engine.begin() as connection:
        sessions = prune_sessions(connection, now=now, policy=policy or SessionPolicy())
        spent = (LINKS.c.used_at.is_not(None)) | (LINKS.c.expires_at < now)
        links = connection.execute(delete(LINKS).where(spent)).rowcount
        cutoff = int(now.timestamp()) - throttle.KEEP
        failures = connection.execute(delete(FAILURES).where(FAILURES.c.at < cutoff)).rowcount
    return f"pruned {sessions} sessions, {links} links and {failures} login failures"
