"""/admin/campaigns: every field of a campaign in one form, and its delivery against its goal."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Connection
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.delivery.forecast import ForecastError, SlotForecast, forecast
from adserver.reporting.stats import BadQuery, StatsQuery, StatsResult, run_stats
from adserver.services import advertisers, campaigns, creatives, sites, slots
from adserver.services.common import parse
from adserver.services.errors import NotFound
from adserver.web.pages.admin.campaign_form import (
    ALIASES,
    CHOICES,
    FIELDS,
    form_payload,
    form_values,
    stored_values,
)
from adserver.web.pages.admin.common import (
    PAGE_SIZE,
    Form,
    actor,
    attempt,
    blank_form,
    done,
    list_query,
    not_found,
    now,
    page_links,
    read,
    remove,
    render,
    version_of,
)


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
        values = form_values(await request.form())
        outcome = await attempt(
            request,
            values,
            FIELDS,
            lambda: partial(
                campaigns.create_campaign,
                data=parse(campaigns.CampaignCreate, form_payload(values, new=True)),
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
    form: Form = blank_form(stored_values(campaign))
    if request.method == "POST":
        submitted = await request.form()
        values = {
            **form_values(submitted),
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
                data=parse(campaigns.CampaignUpdate, form_payload(values, new=False)),
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
