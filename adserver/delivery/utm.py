"""UTM tagging of landing URLs for campaigns that ask for it (``utm``), so the advertiser's own
analytics see our clicks as we count them: source the site, medium ``display``, campaign and
content (the creative) by name. A parameter the advertiser already set is left as it is."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import Connection, select

from adserver.core.models import CampaignSlot, Site, Slot, table


def tagged(url: str, *, source: str, campaign: str, content: str) -> str:
    """``url`` with the UTM parameters it lacks."""
    parts = urlsplit(url)
    present = {name for name, _ in parse_qsl(parts.query, keep_blank_values=True)}
    wanted = {
        "utm_source": source,
        "utm_medium": "display",
        "utm_campaign": campaign,
        "utm_content": content,
    }
    extra = urlencode({k: v for k, v in wanted.items() if k not in present})
    if not extra:
        return url
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


def sources(connection: Connection, campaign_ids: Iterable[int]) -> dict[int, str]:
    """Each campaign's ``utm_source``: the key of the site of its first slot."""
    ids = list(campaign_ids)
    if not ids:
        return {}
    links, slots, sites = table(CampaignSlot), table(Slot), table(Site)
    found: dict[int, str] = {}
    for campaign_id, key in connection.execute(
        select(links.c.campaign_id, sites.c.key)
        .join(slots, slots.c.id == links.c.slot_id)
        .join(sites, sites.c.id == slots.c.site_id)
        .where(links.c.campaign_id.in_(ids))
        .order_by(links.c.campaign_id, links.c.slot_id)
    ):
        found.setdefault(int(campaign_id), str(key))
    return found


def landing(row: object, campaign: object | None, source: str | None) -> str:
    """A creative row's landing URL, tagged when its campaign asks for it."""
    url: str = getattr(row, "click_url", "") or ""
    if campaign is None or not getattr(campaign, "utm", False) or source is None or not url:
        return url
    return tagged(
        url,
        source=source,
        campaign=str(getattr(campaign, "name", "")),
        content=str(getattr(row, "name", "")),
    )
