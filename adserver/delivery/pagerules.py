"""Page rules: what one page view may show together, decided over all of its slots.

- No campaign twice on a page, except house campaigns (a house ad may fill several slots) and
  roadblocks (which take all of their slots or none).
- Competitive exclusion: two campaigns sharing a label (``bank``, ``car``) never share a page.
- Lazy slots, asked for later in a second request, keep these rules for the page view: the tag
  sends the campaigns the page already shows (``shown``); a roadblock among them fills the
  lazy slots it fits, and a roadblock not among them cannot start on a page that is already
  partly filled.

The engine (``decide.py``) keeps a :class:`Page` per request and asks it about each campaign.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from adserver.delivery.decide import CampaignSpec


class Page(NamedTuple):
    """The campaigns one page view shows so far, and the labels they hold: a set and a dict
    that grow as the page is decided. A named tuple, so the engine makes one per request from
    its two fields (``tuple.__new__``) without a Python-level ``__init__``."""

    ids: set[int]
    #: Label -> the campaign that holds it on this page.
    labels: dict[str, int]

    def show(self, shown: Iterable[int], campaigns: Mapping[int, CampaignSpec]) -> None:
        """What earlier requests of this page view put on it (their labels when known)."""
        for campaign_id in shown:
            campaign = campaigns.get(campaign_id)
            if campaign is None:
                self.ids.add(campaign_id)
            else:
                self.take(campaign)

    def take(self, campaign: CampaignSpec) -> None:
        self.ids.add(campaign.id)
        for label in campaign.labels:
            self.labels.setdefault(label, campaign.id)

    def admits(self, campaign: CampaignSpec) -> bool:
        own = campaign.id
        if own in self.ids:
            return campaign.repeats
        labels = self.labels
        if not labels:  # most pages: nothing labelled on them yet
            return True
        return all(labels.get(label, own) == own for label in campaign.labels)


def roadblock_refusal(
    campaign: CampaignSpec, shown: frozenset[int] | None, page: Page
) -> str | None:
    """``page_rule`` when a roadblock may not take this page's slots: a lazy request (one with
    ``shown``) cannot start a roadblock the page does not already show, since the page's other
    slots went elsewhere; and a clashing label keeps it off as it does any campaign."""
    if shown is not None and campaign.id not in shown:
        return "page_rule"
    return None if page.admits(campaign) else "page_rule"
