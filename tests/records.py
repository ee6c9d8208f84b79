"""A small factory of event records, as request handlers make them, for the writer's tests."""

from __future__ import annotations

from adserver.tracking.events import EventRecord

AT = 1_790_000_000
HOUR = 1_789_999_200


def event(
    decision_id: str,
    kind: str = "imp",
    reason: str | None = None,
    *,
    ids: tuple[int, int, int, int] = (1, 2, 3, 4),
    at: int = AT,
    hour: int = HOUR,
) -> EventRecord:
    """An event of ``kind`` for ``decision_id``; ``ids`` are its site, slot, campaign and
    creative."""
    site_id, slot_id, campaign_id, creative_id = ids
    return EventRecord.new(
        decision_id=decision_id,
        kind=kind,
        at=at,
        hour=hour,
        site_id=site_id,
        slot_id=slot_id,
        campaign_id=campaign_id,
        creative_id=creative_id,
        reason=reason,
    )
