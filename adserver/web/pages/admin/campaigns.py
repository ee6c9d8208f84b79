"""/admin/campaigns: every field of a campaign in one form, and its delivery against its goal."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Connection
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.core.enums import PRICINGS, STATUSES, TIERS
from adserver.delivery.forecast import ForecastError, SlotForecast, forecast
from adserver.reporting.stats import BadQuery, StatsQuery, StatsResult, run_stats
from adserver.services import advertisers, campaigns, creatives, sites, slots
from adserver.services.common import parse
from adserver.services.errors import NotFound
from adserver.web.pages.admin.common import (
    PAGE_SIZE,
    Form,
    actor,
    attempt,
    blank_form,
    done,
    lines,
    list_query,
    many,
    not_found,
    now,
    page_links,
    read,
    remove,
    render,
    text,
    version_of,
)

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


def _values(form: FormData) -> dict[str, Any]:
    """What was typed, as the form shows it again."""
    values: dict[str, Any] = {name: text(form, name) for name in TEXT_FIELDS}
    values.update({name: many(form, name) for name in LIST_FIELDS})
    values.update({name: bool(form.get(name)) for name in FLAGS})
    return values


def _blank_none(value: str) -> str | None:
    return value or None


def _payload(values: dict[str, Any], *, new: bool) -> dict[str, Any]:
    """The service layer's campaign from the flat form; blanks mean "none" and the schema
    checks and converts the rest (a typed "12" is a number, "abc" is refused beside its field)."""
    goal = None
    if values["goal_kind"] or values["goal_total"] or values["goal_daily"]:
        goal = {
            "kind": values["goal_kind"],
            "total": _blank_none(values["goal_total"]),
            "daily": _blank_none(values["goal_daily"]),
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
        "starts_at": _blank_none(values["starts_at"]),
        "ends_at": _blank_none(values["ends_at"]),
        "goal": goal,
        "budget": _blank_none(values["budget"]),
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


def _stored(campaign: campaigns.CampaignPublic) -> dict[str, Any]:
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
        "goal_total": _shown(goal.get("total")),
        "goal_daily": _shown(goal.get("daily")),
        "budget": campaign.budget or "",
        "pacing": campaign.pacing,
        "frequency_cap_count": _shown(cap.get("count")),
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


def _shown(value: Any) -> str:
    return "" if value is None else str(value)


def _choices(connection: Connection) -> dict[str, Any]:
    """The advertisers to book for and the slots to book on, grouped by site."""
    sellers = advertisers.list_advertisers(
        connection, query=advertisers.AdvertiserQuery(limit=1000, status="active")
    )
    places = slots.list_slots(connection, query=slots.SlotQuery(limit=1000))
    site_names = {
        site.key: site.name
        for site in sites.list_sites(connection, query=sites.SiteQuery(limit=1000)).items
    }
    by_site: dict[str, list[tuple[str, str]]] = {}
    for slot in places.items:
        label = f"{slot.name} ({', '.join(slot.sizes)})"
        if slot.status != "active":
            label += f" [{slot.status}]"
        by_site.setdefault(slot.site, []).append((str(slot.id), label))
    return {
        "advertiser_choices": [(str(a.id), a.name) for a in sellers.items],
        "slot_groups": [(key, site_names.get(key, key), group) for key, group in by_site.items()],
        **CHOICES,
    }


async def campaign_list(request: Request) -> Response:
    query, chosen = list_query(request, campaigns.CampaignQuery, "advertiser", "site", "status")

    def load(connection: Connection) -> dict[str, Any]:
        page = campaigns.list_campaigns(connection, query=query)
        names = {
            a.id: a.name
            for a in advertisers.list_advertisers(
                connection, query=advertisers.AdvertiserQuery(limit=1000)
            ).items
        }
        site_choices = [
            (s.key, s.name)
            for s in sites.list_sites(connection, query=sites.SiteQuery(limit=1000)).items
        ]
        return {"page": page, "advertiser_names": names, "site_choices": site_choices}

    context = await read(request, load)
    context.update(
        links=page_links(request, context["page"]),
        chosen=chosen,
        statuses=CHOICES["statuses"],
    )
    return render(request, "admin/campaigns/list.html", context, section="campaigns")


async def campaign_new(request: Request) -> Response:
    form: Form = blank_form(
        {
            "advertiser": request.query_params.get("advertiser", ""),
            "status": "draft",
            "tier": "standard",
            "pricing": "cpm",
            "price": "0",
            "weight": "1",
            "pacing": "even",
            "rotation": "even",
        }
    )
    if request.method == "POST":
        values = _values(await request.form())
        outcome = await attempt(
            request,
            values,
            FIELDS,
            lambda: partial(
                campaigns.create_campaign,
                data=parse(campaigns.CampaignCreate, _payload(values, new=True)),
                actor=actor(request),
                now=now(),
            ),
            ALIASES,
        )
        if isinstance(outcome, campaigns.CampaignPublic):
            return done(
                request, f"/admin/campaigns/{outcome.id}", f"Campaign {outcome.name} created."
            )
        form = outcome
    context = {"form": form, "campaign": None, **await read(request, _choices)}
    return render(
        request,
        "admin/campaigns/form.html",
        context,
        section="campaigns",
        status_code=form.status,
    )


def _delivery(connection: Connection, campaign: campaigns.CampaignPublic) -> StatsResult | None:
    """The campaign's delivery so far, from the same statistics as /v1/stats; None when it
    spans sites billed in different currencies (the dashboard shows those side by side)."""
    first = campaign.starts_at[:10] if campaign.starts_at else None
    start = date.fromisoformat(first) if first else campaign.created_at.date()
    today = now().date() + timedelta(days=1)  # the day already begun east of UTC
    query = StatsQuery(start=min(start, today), end=today, by=("campaign",), campaign=campaign.id)
    try:
        return run_stats(connection, query)
    except BadQuery:
        return None


@dataclass(frozen=True)
class Forecast:
    """Availability for the campaign's slots over ``start``..``end``, per site (a forecast
    covers one site's slots), or why it could not be made."""

    start: date
    end: date
    sites: list[tuple[str, list[SlotForecast]]]
    problem: str | None = None


def _forecast_days(request: Request, campaign: campaigns.CampaignPublic) -> tuple[date, date]:
    """The days asked for, else what is left of the campaign's flight (30 days when open)."""
    today = now().date()
    start = max(today, date.fromisoformat(campaign.starts_at[:10]) if campaign.starts_at else today)
    end = date.fromisoformat(campaign.ends_at[:10]) if campaign.ends_at else start + timedelta(30)
    params = request.query_params
    try:
        if params.get("forecast_from"):
            start = date.fromisoformat(params["forecast_from"])
        if params.get("forecast_to"):
            end = date.fromisoformat(params["forecast_to"])
    except ValueError as exc:
        raise HTTPException(400, "forecast days must be dates as YYYY-MM-DD") from exc
    return start, end


def _forecast(
    connection: Connection, campaign: campaigns.CampaignPublic, start: date, end: date
) -> Forecast:
    """What the campaign's slots can still deliver to its targeting and tier: the engine's
    forecast from the last weeks' traffic, less what competing campaigns will take."""
    by_site: dict[str, list[str]] = {}
    for slot_id in campaign.slots:
        slot = slots.get_slot(connection, slot_id=slot_id)
        by_site.setdefault(slot.site, []).append(slot.name)
    results: list[tuple[str, list[SlotForecast]]] = []
    try:
        for site_key, names in by_site.items():
            results.append(
                (
                    site_key,
                    forecast(
                        connection,
                        site_key=site_key,
                        slot_names=names,
                        start=start,
                        end=end,
                        targeting=campaign.targeting,
                        tier=campaign.tier,
                        now=time.time(),
                    ),
                )
            )
    except ForecastError as exc:
        return Forecast(start, end, [], str(exc))
    return Forecast(start, end, results)


async def campaign_detail(request: Request) -> Response:
    campaign_id: int = request.path_params["campaign_id"]
    try:
        campaign = await read(request, lambda c: campaigns.get_campaign(c, campaign_id=campaign_id))
    except NotFound as exc:
        raise not_found(exc) from exc
    form: Form = blank_form(_stored(campaign))
    if request.method == "POST":
        submitted = await request.form()
        values = {
            **_values(submitted),
            "advertiser": str(campaign.advertiser),
            "version": campaign.version,
        }
        outcome = await attempt(
            request,
            values,
            FIELDS,
            lambda: partial(
                campaigns.update_campaign,
                campaign_id=campaign_id,
                data=parse(campaigns.CampaignUpdate, _payload(values, new=False)),
                expected_version=version_of(submitted),
                actor=actor(request),
                now=now(),
            ),
            ALIASES,
        )
        if isinstance(outcome, campaigns.CampaignPublic):
            return done(request, f"/admin/campaigns/{campaign_id}", "Campaign saved.")
        form = outcome

    wants_forecast = "forecast_from" in request.query_params
    days = _forecast_days(request, campaign)

    def load(connection: Connection) -> dict[str, Any]:
        owner = advertisers.get_advertiser(connection, advertiser_id=campaign.advertiser)
        query = creatives.CreativeQuery(campaign=campaign_id, limit=PAGE_SIZE)
        return {
            "forecast_days": days,
            "forecast": _forecast(connection, campaign, *days) if wants_forecast else None,
            "advertiser": owner,
            "creatives": creatives.list_creatives(connection, query=query),
            "delivery": _delivery(connection, campaign),
            **_choices(connection),
        }

    context = {"form": form, "campaign": campaign, **await read(request, load)}
    return render(
        request,
        "admin/campaigns/form.html",
        context,
        section="campaigns",
        status_code=form.status,
    )


async def campaign_delete(request: Request) -> Response:
    campaign_id: int = request.path_params["campaign_id"]
    submitted = await request.form()
    return await remove(
        request,
        partial(
            campaigns.delete_campaign,
            campaign_id=campaign_id,
            expected_version=version_of(submitted),
            actor=actor(request),
            now=now(),
        ),
        here=f"/admin/campaigns/{campaign_id}",
        listing="/admin/campaigns",
        noun="Campaign",
    )


routes = [
    Route("/admin/campaigns", campaign_list, methods=["GET"], name="admin_campaigns"),
    Route("/admin/campaigns/new", campaign_new, methods=["GET", "POST"], name="admin_campaign_new"),
    Route(
        "/admin/campaigns/{campaign_id:int}",
        campaign_detail,
        methods=["GET", "POST"],
        name="admin_campaign",
    ),
    Route(
        "/admin/campaigns/{campaign_id:int}/delete",
        campaign_delete,
        methods=["POST"],
        name="admin_campaign_delete",
    ),
]
