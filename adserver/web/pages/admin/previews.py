"""What a creative looks like where it will show: its real size, or for a fluid creative each
size of the slots its campaign is booked on."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection
from starlette.requests import Request

from adserver.services import campaigns, creatives, slots
from adserver.services.errors import NotFound
from adserver.web.common import app_of
from adserver.web.pages.admin.common import read

#: The box a fluid creative is shown in when its campaign has no slot of a fixed size.
FALLBACK_SIZE = (300, 250)


@dataclass(frozen=True)
class Preview:
    creative: creatives.CreativePublic
    campaign_name: str
    #: (width, height) boxes to show the creative in.
    sizes: list[tuple[int, int]]


def preview_sizes(
    connection: Connection, creative: creatives.CreativePublic
) -> list[tuple[int, int]]:
    if creative.width and creative.height:
        return [(creative.width, creative.height)]
    campaign = campaigns.get_campaign(connection, campaign_id=creative.campaign)
    found: list[tuple[int, int]] = []
    for slot_id in campaign.slots:
        try:
            slot = slots.get_slot(connection, slot_id=slot_id)
        except NotFound:
            continue
        for size in slot.sizes:
            width, _, height = size.partition("x")
            if width.isdigit() and height.isdigit() and (int(width), int(height)) not in found:
                found.append((int(width), int(height)))
    return found or [FALLBACK_SIZE]


async def preview_of(request: Request, creative_id: int) -> Preview | None:
    """The preview of one creative, or None when it no longer exists."""
    base_url = app_of(request).settings.base_url

    def load(connection: Connection) -> Preview | None:
        try:
            creative = creatives.get_creative(
                connection, creative_id=creative_id, base_url=base_url
            )
            campaign = campaigns.get_campaign(connection, campaign_id=creative.campaign)
        except NotFound:
            return None
        return Preview(creative, campaign.name, preview_sizes(connection, creative))

    return await read(request, load)
