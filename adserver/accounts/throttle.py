"""Login throttling: per client address a hard limit, per account only a slow-down.

An address that has given :data:`ADDRESS_LIMIT` wrong passwords within a minute is refused for
the rest of that minute, whatever it sends next, right password included: guessing from one
place stops. Failures against one account from anywhere else only slow that account's answers
(:func:`delay_for`), so a stranger can never lock its owner out. Failures are rows in the
database, so every server process counts the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, insert, select

from adserver.core.models import LoginFailure, table

FAILURES = table(LoginFailure)

#: Wrong passwords one address may give per :data:`WINDOW` before it is refused.
ADDRESS_LIMIT = 5
WINDOW = 60
#: Failures against one account counted over this many seconds for the slow-down.
ACCOUNT_WINDOW = 15 * 60
#: The longest an answer is held back, in seconds.
MAX_DELAY = 5.0
#: Failure rows older than this are deleted as new ones arrive.
KEEP = 3600


@dataclass(frozen=True, slots=True)
class Verdict:
    """``refused_for``: seconds until this address may try again (0: it may); ``delay``: how
    long to hold the answer back."""

    refused_for: int
    delay: float


def delay_for(account_failures: int) -> float:
    """No delay for the first three failures, then doubling from 0.25 s up to MAX_DELAY."""
    if account_failures < 3:
        return 0.0
    return min(MAX_DELAY, 0.25 * 2.0 ** (account_failures - 3))


def verdict(connection: Connection, *, address: str, email: str, now: int) -> Verdict:
    """What to do with a login attempt from ``address`` for ``email`` at ``now`` (epoch s)."""
    recent = connection.execute(
        select(FAILURES.c.at)
        .where(FAILURES.c.address == address, FAILURES.c.at > now - WINDOW)
        .order_by(FAILURES.c.at)
    ).scalars()
    times = list(recent)
    refused_for = 0
    if len(times) >= ADDRESS_LIMIT:
        # Refused until the oldest of the last ADDRESS_LIMIT failures leaves the window.
        refused_for = max(1, times[-ADDRESS_LIMIT] + WINDOW - now)
    account = connection.execute(
        select(func.count())
        .select_from(FAILURES)
        .where(FAILURES.c.email == email, FAILURES.c.at > now - ACCOUNT_WINDOW)
    ).scalar_one()
    return Verdict(refused_for, delay_for(int(account)))


def record_failure(connection: Connection, *, address: str, email: str, now: int) -> None:
    """Count a wrong password (or an unknown e-mail: the two look the same from outside)."""
    connection.execute(delete(FAILURES).where(FAILURES.c.at < now - KEEP))
    connection.execute(insert(FAILURES).values(address=address[:64], email=email[:320], at=now))


def forget_failures(connection: Connection, *, address: str, email: str) -> None:
    """A successful login clears that address's failures for that account."""
    connection.execute(
        delete(FAILURES).where(FAILURES.c.address == address[:64], FAILURES.c.email == email)
    )
