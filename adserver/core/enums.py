"""The fixed vocabularies of the contract: statuses, tiers, pricings, event kinds and reasons."""

from __future__ import annotations

STATUSES = ("draft", "active", "paused", "archived")
TIERS = ("sponsorship", "standard", "price", "house")
PRICINGS = ("cpm", "cpc", "flat", "house")
PACINGS = ("even", "asap")
ROTATIONS = ("even", "weighted", "ctr")
CREATIVE_KINDS = ("image", "html", "text")
EVENT_KINDS = ("imp", "view", "click")
ROLES = ("admin", "advertiser")
#: Why an event does not count; each is kept and shown apart, never dropped.
INVALID_REASONS = (
    "bot",
    "duplicate",
    "expired",
    "forged",
    "no-impression",
    "prefetch",
    # The abuse rules (tracking/abuse.py, docs/invalid-traffic.md).
    "too-fast",
    "click-flood",
    "burst",
)
