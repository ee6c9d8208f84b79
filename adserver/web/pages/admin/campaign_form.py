"""A campaign's form: its flat fields, read into the service layer's nested campaign (goal,
frequency cap, targeting) and a stored campaign shown in them again."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData

from adserver.core.enums import PRICINGS, STATUSES, TIERS
from adserver.services import campaigns
from adserver.web.pages.admin.common import lines, many, text

TARGETING_LISTS = ("paths", "exclude_paths", "keywords", "exclude_keywords", "countries")
TARGETING_CHOICES = ("devices", "days", "hours")
TEXT_FIELDS = (
    "advertiser",
    "name",
    "status",
    "tier",
    "pricing",
    "price",
    "weight",
    "starts_at",
    "ends_at",
    "goal_kind",
    "goal_total",
    "goal_daily",
    "budget",
    "pacing",
    "frequency_cap_count",
    "frequency_cap_per",
    "rotation",
    "labels",
    *(f"targeting_{name}" for name in TARGETING_LISTS),
)
LIST_FIELDS = ("slots", *(f"targeting_{name}" for name in TARGETING_CHOICES))
FLAGS = ("roadblock", "utm")
FIELDS = (*TEXT_FIELDS, *LIST_FIELDS, *FLAGS)
#: Errors about a whole nested object, shown beside its first field.
ALIASES = {
    "goal": "goal_kind",
    "frequency_cap": "frequency_cap_count",
    "targeting": "targeting_paths",
}
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
CHOICES = {
    "statuses": [(s, s.capitalize()) for s in STATUSES],
    "tiers": [(t, t.capitalize()) for t in TIERS],
    "pricings": [(p, p.upper() if p in {"cpm", "cpc"} else p.capitalize()) for p in PRICINGS],
    "pacings": [("even", "Even (spread over the flight)"), ("asap", "As fast as possible")],
    "rotations": [
        ("even", "Even"),
        ("weighted", "By creative weight"),
        ("ctr", "Best click-through rate"),
    ],
    "goal_kinds": [("impressions", "Impressions"), ("clicks", "Clicks")],
    "cap_periods": [(p, f"per {p}") for p in ("hour", "day", "week", "flight")],
    "devices": [("desktop", "Desktop"), ("mobile", "Phone"), ("tablet", "Tablet")],
    "days": list(enumerate(DAYS)),
    "hours": [(h, f"{h:02d}") for h in range(24)],
}


def form_values(form: FormData) -> dict[str, Any]:
    """What was typed, as the form shows it again."""
    values: dict[str, Any] = {name: text(form, name) for name in TEXT_FIELDS}
    values.update({name: many(form, name) for name in LIST_FIELDS})
    values.update({name: bool(form.get(name)) for name in FLAGS})
    return values


def blank_none(value: str) -> str | None:
    return value or None


def form_payload(values: dict[str, Any], *, new: bool) -> dict[str, Any]:
    """The service layer's campaign from the flat form; blanks mean "none" and the schema
    checks and converts the rest (a typed "12" is a number, "abc" is refused beside its field)."""
    goal = None
    if values["goal_kind"] or values["goal_total"] or values["goal_daily"]:
        goal = {
            "kind": values["goal_kind"],
            "total": blank_none(values["goal_total"]),
            "daily": blank_none(values["goal_daily"]),
        }
    cap = None
    if values["frequency_cap_count"] or values["frequency_cap_per"]:
        cap = {"count": values["frequency_cap_count"], "per": values["frequency_cap_per"]}
    targeting: dict[str, Any] = {
        name: lines(values[f"targeting_{name}"]) for name in TARGETING_LISTS
    }
    targeting.update({name: values[f"targeting_{name}"] for name in TARGETING_CHOICES})
    payload: dict[str, Any] = {
        "name": values["name"],
        "status": values["status"],
        "tier": values["tier"],
        "pricing": values["pricing"],
        "price": values["price"] or "0",
        "weight": values["weight"] or "1",
        "starts_at": blank_none(values["starts_at"]),
        "ends_at": blank_none(values["ends_at"]),
        "goal": goal,
        "budget": blank_none(values["budget"]),
        "pacing": values["pacing"],
        "frequency_cap": cap,
        "targeting": {name: value for name, value in targeting.items() if value},
        "slots": values["slots"],
        "rotation": values["rotation"],
        "roadblock": values["roadblock"],
        "labels": lines(values["labels"]),
        "utm": values["utm"],
    }
    if new:
        payload["advertiser"] = values["advertiser"]
    return payload


def stored_values(campaign: campaigns.CampaignPublic) -> dict[str, Any]:
    """A stored campaign as the form shows it."""
    goal = campaign.goal or {}
    cap = campaign.frequency_cap or {}
    targeting = campaign.targeting
    values: dict[str, Any] = {
        "advertiser": str(campaign.advertiser),
        "name": campaign.name,
        "status": campaign.status,
        "tier": campaign.tier,
        "pricing": campaign.pricing,
        "price": campaign.price,
        "weight": str(campaign.weight),
        "starts_at": campaign.starts_at or "",
        "ends_at": campaign.ends_at or "",
        "goal_kind": goal.get("kind") or "",
        "goal_total": shown(goal.get("total")),
        "goal_daily": shown(goal.get("daily")),
        "budget": campaign.budget or "",
        "pacing": campaign.pacing,
        "frequency_cap_count": shown(cap.get("count")),
        "frequency_cap_per": cap.get("per") or "",
        "rotation": campaign.rotation,
        "labels": ", ".join(campaign.labels),
        "slots": [str(slot) for slot in campaign.slots],
        "roadblock": campaign.roadblock,
        "utm": campaign.utm,
        "version": campaign.version,
    }
    for name in TARGETING_LISTS:
        joiner = "\n" if "paths" in name else ", "
        values[f"targeting_{name}"] = joiner.join(targeting.get(name) or [])
    for name in TARGETING_CHOICES:
        values[f"targeting_{name}"] = [str(item) for item in targeting.get(name) or []]
    return values


def shown(value: Any) -> str:
    return "" if value is None else str(value)
