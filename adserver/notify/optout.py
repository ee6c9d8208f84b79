"""Switching mail off per recipient: signed one-click unsubscribe links (RFC 8058) and the
opt-outs they record.

A topic is ``schedule:ID`` (one report schedule) or ``notice:KIND`` (one kind of notification).
The link carries the address and topic with an HMAC of both under the server's secret key: it
is its own authorisation, so the unsubscribe POST needs no session and no CSRF token, and a
recipient can pause only the mail the link came with.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, delete, select

from adserver.core.db import insert_for
from adserver.core.models import MailOptOut, table

OPTOUT = table(MailOptOut)
_MAC_BYTES = 16


def _mac(secret: str, address: str, topic: str) -> bytes:
    key = hashlib.sha256(b"unsubscribe:" + secret.encode()).digest()
    return hmac.new(key, f"{topic}\n{address}".encode(), hashlib.sha256).digest()[:_MAC_BYTES]


def unsubscribe_token(secret: str, address: str, topic: str) -> str:
    payload = f"{topic}\n{address}".encode() + _mac(secret, address, topic)
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def read_unsubscribe_token(secret: str, token: str) -> tuple[str, str] | None:
    """(address, topic) of a genuine token, or None for a malformed or forged one."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        topic, _, address = body.decode().partition("\n")
    except (ValueError, UnicodeDecodeError):
        return None
    if not address or not hmac.compare_digest(mac, _mac(secret, address, topic)):
        return None
    return address, topic


def opt_out(connection: Connection, *, address: str, topic: str, now: datetime) -> None:
    """Record that ``address`` wants no more mail on ``topic`` (again: no change)."""
    connection.execute(
        insert_for(connection)(OPTOUT)
        .values(address=address.lower(), topic=topic, created_at=now)
        .on_conflict_do_nothing()
    )


def opt_in(connection: Connection, *, address: str, topic: str) -> None:
    connection.execute(
        delete(OPTOUT).where(OPTOUT.c.address == address.lower(), OPTOUT.c.topic == topic)
    )


def opted_out(connection: Connection, topic: str, addresses: Iterable[str]) -> set[str]:
    """Which of ``addresses`` (lower-cased) switched ``topic`` off."""
    wanted = sorted({a.lower() for a in addresses})
    if not wanted:
        return set()
    return {
        str(a)
        for a in connection.execute(
            select(OPTOUT.c.address).where(OPTOUT.c.topic == topic, OPTOUT.c.address.in_(wanted))
        ).scalars()
    }
