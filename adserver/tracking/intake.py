"""Intake: what one arriving impression, view or click is, before it is stored.

The request handler hands over what it read (the token, the user agent, the purpose header)
and gets back the token's state and the event record to store, already marked with what the
request itself shows: ``forged``, ``expired``, ``prefetch``, ``bot`` or ``too-fast`` (see
``abuse``). The writer decides ``duplicate`` and ``no-impression`` (see ``events.store``), the
tally ``click-flood`` and ``burst``.
"""

from __future__ import annotations

from collections.abc import Callable

from adserver.tracking import abuse, traffic
from adserver.tracking.events import EventRecord
from adserver.tracking.tokens import TokenSigner, TokenState


def classify(
    signer: TokenSigner,
    token: str,
    *,
    kind: str,
    now: float,
    ttl: int,
    user_agent: str,
    purpose: str,
    hour_of: Callable[[int, float], int],
    reader: str = "",
) -> tuple[TokenState, EventRecord]:
    """The token's state and the event to record; ``hour_of(site_id, now)`` buckets it,
    ``reader`` is the reader's key (``abuse.ReaderKeys``; "" for none, and no abuse rules)."""
    verified = signer.verify(token, now=int(now), ttl=ttl)
    claims = verified.claims
    reason: str | None = None
    if verified.state is TokenState.FORGED:
        reason = "forged"
    elif verified.state is TokenState.EXPIRED:
        reason = "expired"
    elif traffic.is_prefetch(purpose):
        reason = "prefetch"
    elif traffic.is_bot(user_agent):
        reason = "bot"
    elif reader and claims is not None and abuse.too_fast(kind, claims, now):
        reason = "too-fast"
    site_id = claims.site_id if claims else 0
    record = EventRecord.new(
        decision_id=claims.decision_id if claims else "",
        kind=kind,
        at=int(now),
        hour=hour_of(site_id, now),
        site_id=site_id,
        slot_id=claims.slot_id if claims else 0,
        campaign_id=claims.campaign_id if claims else 0,
        creative_id=claims.creative_id if claims else 0,
        reason=reason,
        reader=reader,
    )
    return verified.state, record
