"""Campaigns: what an advertiser bought, where and when it serves, and how it is paced.

Money is a decimal string in the site's currency units (stored in micro-units); flight times
are ISO 8601, with an offset (that instant on every site) or without (each site's own wall
clock), and are given back as they were given. Targeting is compiled on write, so a pattern
that cannot compile is a 422 now rather than a failure while serving."""

from __future__ import annotations

import fnmatch
import re
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator
from sqlalchemy import Connection, delete, insert, select

from adserver.core.models import (
    Campaign,
    CampaignDelivery,
    CampaignSlot,
    Creative,
    FlatBooking,
    ShareLink,
    Site,
    Slot,
    table,
)
from adserver.delivery.targeting import compile_targeting
from adserver.services import history
from adserver.services.advertisers import require_advertiser
from adserver.services.common import (
    Actor,
    Count,
    Id,
    Money,
    Name,
    Public,
    Removal,
    Schema,
    Slug,
    bump_inventory,
    check_version,
    fetch_row,
    has_statistics,
    history_view,
    inserted_id,
    micros,
    money_string,
    named,
    write_version,
)
from adserver.services.errors import NotFound, ServiceError
from adserver.services.paging import Page, PageQuery, fetch_page

CAMPAIGNS = table(Campaign)
CAMPAIGN_SLOTS = table(CampaignSlot)
SLOTS = table(Slot)
SITES = table(Site)
ENTITY = "campaign"

Status = Literal["draft", "active", "paused", "archived"]
Tier = Literal["sponsorship", "standard", "price", "house"]
Pricing = Literal["cpm", "cpc", "flat", "house"]


def _flight_time(value: str) -> str:
    try:
        datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError("must be an ISO 8601 time such as 2026-12-01T09:00 or ...+05:30") from exc
    return value


def _path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("must be a path pattern starting with '/', such as /sports/*")
    return value


def _country(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z]{2}", value):
        raise ValueError("must be a two-letter country code such as IN")
    return value.upper()


FlightTime = Annotated[str, AfterValidator(_flight_time)]
PathPattern = Annotated[str, Field(max_length=300), AfterValidator(_path)]
Keyword = Annotated[str, Field(min_length=1, max_length=100)]
Country = Annotated[str, AfterValidator(_country)]


class Goal(Schema):
    kind: Literal["impressions", "clicks"]
    total: Count | None = None
    daily: Count | None = None
    nullable = frozenset({"total", "daily"})

    @model_validator(mode="after")
    def _some_figure(self) -> Goal:
        if self.total is None and self.daily is None:
            raise ValueError("a goal needs a total, a daily figure, or both")
        return self


class FrequencyCap(Schema):
    count: int = Field(ge=1, le=10_000)
    per: Literal["hour", "day", "week", "flight"]


class Targeting(Schema):
    """All optional; an empty list (or a missing one) does not restrict."""

    paths: list[PathPattern] = Field(default_factory=list, max_length=100)
    exclude_paths: list[PathPattern] = Field(default_factory=list, max_length=100)
    keywords: list[Keyword] = Field(default_factory=list, max_length=200)
    exclude_keywords: list[Keyword] = Field(default_factory=list, max_length=200)
    devices: list[Literal["desktop", "mobile", "tablet"]] = Field(default_factory=list)
    countries: list[Country] = Field(default_factory=list, max_length=250)
    days: list[Annotated[int, Field(ge=0, le=6)]] = Field(default_factory=list)
    hours: list[Annotated[int, Field(ge=0, le=23)]] = Field(default_factory=list)


class CampaignFields(Schema):
    """What a create may set and an update may change (everything but the advertiser)."""

    nullable = frozenset({"starts_at", "ends_at", "goal", "budget", "frequency_cap"})

    name: Name
    status: Status = "draft"
    tier: Tier = "standard"
    pricing: Pricing = "cpm"
    price: Money = "0"
    weight: int = Field(default=1, ge=1, le=1000)
    starts_at: FlightTime | None = None
    ends_at: FlightTime | None = None
    goal: Goal | None = None
    budget: Money | None = None
    pacing: Literal["even", "asap"] = "even"
    frequency_cap: FrequencyCap | None = None
    targeting: Targeting = Field(default_factory=Targeting)
    slots: list[Id] = Field(default_factory=list, max_length=500)
    rotation: Literal["even", "weighted", "ctr"] = "even"
    roadblock: bool = False
    labels: list[Slug] = Field(default_factory=list, max_length=20)
    utm: bool = False


class CampaignCreate(CampaignFields):
    advertiser: Id


class CampaignUpdate(Schema):
    """Every field optional: PATCH replaces the ones it names (``goal``, ``targeting`` whole)."""

    immutable = frozenset({"advertiser"})
    nullable = CampaignFields.nullable

    name: Name | None = None
    status: Status | None = None
    tier: Tier | None = None
    pricing: Pricing | None = None
    price: Money | None = None
    weight: int | None = Field(default=None, ge=1, le=1000)
    starts_at: FlightTime | None = None
    ends_at: FlightTime | None = None
    goal: Goal | None = None
    budget: Money | None = None
    pacing: Literal["even", "asap"] | None = None
    frequency_cap: FrequencyCap | None = None
    targeting: Targeting | None = None
    slots: list[Id] | None = Field(default=None, max_length=500)
    rotation: Literal["even", "weighted", "ctr"] | None = None
    roadblock: bool | None = None
    labels: list[Slug] | None = Field(default=None, max_length=20)
    utm: bool | None = None


class CampaignPublic(Public):
    id: int
    advertiser: int
    name: str
    status: str
    tier: str
    pricing: str
    price: str
    weight: int
    starts_at: str | None
    ends_at: str | None
    goal: dict[str, Any] | None
    budget: str | None
    pacing: str
    frequency_cap: dict[str, Any] | None
    targeting: dict[str, Any]
    slots: list[int]
    rotation: str
    roadblock: bool
    labels: list[str]
    utm: bool
    version: int
    created_at: datetime
    updated_at: datetime


class CampaignQuery(PageQuery):
    advertiser: Id | None = None
    site: str | None = None
    status: Status | None = None


# Stored form <-> public form.


def _split_time(value: str | None) -> tuple[datetime | None, int | None]:
    """An ISO 8601 time as (wall clock as written, its UTC offset in minutes or None)."""
    if value is None:
        return None, None
    parsed = datetime.fromisoformat(value)
    offset = parsed.utcoffset()
    minutes = None if offset is None else int(offset.total_seconds() // 60)
    return parsed.replace(tzinfo=None), minutes


def _join_time(wall: datetime | None, offset: int | None) -> str | None:
    if wall is None:
        return None
    if offset is None:
        return wall.isoformat()
    return wall.replace(tzinfo=timezone(timedelta(minutes=offset))).isoformat()


def _columns(values: dict[str, Any]) -> dict[str, Any]:
    """Public field values (as parsed) to the columns that store them."""
    columns: dict[str, Any] = {}
    for name, value in values.items():
        if name == "price":
            columns["price_micros"] = micros(value)
        elif name == "budget":
            columns["budget_micros"] = None if value is None else micros(value)
        elif name in ("starts_at", "ends_at"):
            wall, offset = _split_time(value)
            columns[name] = wall
            columns[name.replace("_at", "_offset")] = offset
        elif name == "goal":
            columns["goal_kind"] = None if value is None else value.kind
            columns["goal_total"] = None if value is None else value.total
            columns["goal_daily"] = None if value is None else value.daily
        elif name == "frequency_cap":
            columns["fc_count"] = None if value is None else value.count
            columns["fc_per"] = None if value is None else value.per
        elif name == "targeting":
            columns["targeting"] = value.model_dump(exclude_defaults=True)
        elif name == "advertiser":
            columns["advertiser_id"] = value
        elif name != "slots":
            columns[name] = value
    return columns


def public(row: Any, slots: list[int]) -> CampaignPublic:
    goal = None
    if row.goal_kind is not None:
        goal = {"kind": row.goal_kind, "total": row.goal_total, "daily": row.goal_daily}
    cap = None if row.fc_count is None else {"count": row.fc_count, "per": row.fc_per}
    return CampaignPublic(
        id=row.id,
        advertiser=row.advertiser_id,
        name=row.name,
        status=row.status,
        tier=row.tier,
        pricing=row.pricing,
        price=money_string(row.price_micros),
        weight=row.weight,
        starts_at=_join_time(row.starts_at, row.starts_offset),
        ends_at=_join_time(row.ends_at, row.ends_offset),
        goal=goal,
        budget=None if row.budget_micros is None else money_string(row.budget_micros),
        pacing=row.pacing,
        frequency_cap=cap,
        targeting=dict(row.targeting or {}),
        slots=slots,
        rotation=row.rotation,
        roadblock=row.roadblock,
        labels=list(row.labels or []),
        utm=row.utm,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _slots_of(connection: Connection, campaign_ids: list[int]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {campaign_id: [] for campaign_id in campaign_ids}
    if campaign_ids:
        rows = connection.execute(
            select(CAMPAIGN_SLOTS.c.campaign_id, CAMPAIGN_SLOTS.c.slot_id)
            .where(CAMPAIGN_SLOTS.c.campaign_id.in_(campaign_ids))
            .order_by(CAMPAIGN_SLOTS.c.slot_id)
        )
        for campaign_id, slot_id in rows:
            found[campaign_id].append(slot_id)
    return found


# Checks a write makes beyond each field's own.


def _check(connection: Connection, merged: dict[str, Any], *, slots_changed: bool = True) -> None:
    """Cross-field rules on the campaign as it would be after the write; every problem named.
    The slots are checked only when the write names them."""
    fields: dict[str, str] = {}
    starts, _ = _split_time(merged.get("starts_at"))
    ends, _ = _split_time(merged.get("ends_at"))
    if starts is not None and ends is not None:
        start_at = datetime.fromisoformat(merged["starts_at"])
        end_at = datetime.fromisoformat(merged["ends_at"])
        if (start_at.tzinfo is None) == (end_at.tzinfo is None) and end_at <= start_at:
            fields["ends_at"] = "must be after starts_at"
    if merged.get("roadblock") and merged.get("tier") != "sponsorship":
        fields["roadblock"] = "only a sponsorship campaign can be a roadblock"
    targeting = merged.get("targeting")
    raw = targeting.model_dump() if isinstance(targeting, Targeting) else targeting or {}
    never = [
        pattern
        for pattern in (raw.get("paths") or []) + (raw.get("exclude_paths") or [])
        if "(?!)" in fnmatch.translate(pattern)
    ]
    if never:
        fields["targeting"] = f"a path pattern can never match (an empty range): {never[0]}"
    else:
        try:
            compile_targeting(raw)
        except (re.error, ValueError) as exc:
            fields["targeting"] = f"does not compile: {exc}"
    slots = (merged.get("slots") or []) if slots_changed else []
    if len(set(slots)) != len(slots):
        fields["slots"] = "lists a slot twice"
    elif slots:
        known = set(connection.execute(select(SLOTS.c.id).where(SLOTS.c.id.in_(slots))).scalars())
        missing = [slot for slot in slots if slot not in known]
        if missing:
            fields["slots"] = f"no such slot: {', '.join(map(str, missing))}"
    if fields:
        raise ServiceError(
            "invalid " + ", ".join(sorted(fields)) + ": " + "; ".join(fields.values()), fields
        )


def _set_slots(connection: Connection, campaign_id: int, slots: list[int]) -> None:
    connection.execute(delete(CAMPAIGN_SLOTS).where(CAMPAIGN_SLOTS.c.campaign_id == campaign_id))
    if slots:
        connection.execute(
            insert(CAMPAIGN_SLOTS), [{"campaign_id": campaign_id, "slot_id": s} for s in slots]
        )


# The service functions.


def list_campaigns(
    connection: Connection, *, query: CampaignQuery, scope: int | None = None
) -> Page[CampaignPublic]:
    statement = select(CAMPAIGNS)
    if scope is not None:
        statement = statement.where(CAMPAIGNS.c.advertiser_id == scope)
    if query.advertiser is not None:
        statement = statement.where(CAMPAIGNS.c.advertiser_id == query.advertiser)
    if query.status is not None:
        statement = statement.where(CAMPAIGNS.c.status == query.status)
    if query.site is not None:
        on_site = (
            select(CAMPAIGN_SLOTS.c.campaign_id)
            .join(SLOTS, SLOTS.c.id == CAMPAIGN_SLOTS.c.slot_id)
            .join(SITES, SITES.c.id == SLOTS.c.site_id)
            .where(SITES.c.key == query.site)
        )
        statement = statement.where(CAMPAIGNS.c.id.in_(on_site))
    page = fetch_page(
        connection,
        statement,
        CAMPAIGNS.c.id,
        limit=query.limit,
        after=query.after,
        build=lambda row: row,
    )
    slots = _slots_of(connection, [row.id for row in page.items])
    return Page([public(row, slots[row.id]) for row in page.items], page.next_after)


def _row(connection: Connection, campaign_id: int, scope: int | None) -> Any:
    row = fetch_row(connection, CAMPAIGNS, ENTITY, id=campaign_id)
    if scope is not None and row.advertiser_id != scope:
        raise NotFound(f"no such {ENTITY}")
    return row


def get_campaign(
    connection: Connection, *, campaign_id: int, scope: int | None = None
) -> CampaignPublic:
    row = _row(connection, campaign_id, scope)
    return public(row, _slots_of(connection, [campaign_id])[campaign_id])


def create_campaign(
    connection: Connection,
    *,
    data: CampaignCreate,
    actor: Actor,
    now: datetime,
    scope: int | None = None,
) -> CampaignPublic:
    require_advertiser(connection, data.advertiser, scope)
    values = {name: getattr(data, name) for name in CampaignCreate.model_fields}
    _check(connection, values)
    new_id = inserted_id(
        connection.execute(
            insert(CAMPAIGNS).values(**_columns(values), created_at=now, updated_at=now)
        )
    )
    _set_slots(connection, new_id, data.slots)
    bump_inventory(connection)
    campaign = get_campaign(connection, campaign_id=new_id)
    history.record(
        connection,
        actor=actor,
        entity=ENTITY,
        entity_id=new_id,
        action="create",
        before=None,
        after=history_view(campaign),
        now=now,
    )
    return campaign


def update_campaign(
    connection: Connection,
    *,
    campaign_id: int,
    data: CampaignUpdate,
    expected_version: int | None,
    actor: Actor,
    now: datetime,
    scope: int | None = None,
) -> CampaignPublic:
    row = _row(connection, campaign_id, scope)
    before = public(row, _slots_of(connection, [campaign_id])[campaign_id])
    values = named(data)
    check_version(row, expected_version)
    merged = {**before.model_dump(), **values}
    # The slots it keeps were checked when they were booked (and a slot's bookings go with it).
    _check(connection, merged, slots_changed="slots" in values)
    written = write_version(
        connection, CAMPAIGNS, row, _columns(values), expected=expected_version, now=now
    )
    slots = before.slots
    if "slots" in values:
        _set_slots(connection, campaign_id, values["slots"])
        slots = sorted(values["slots"])
    campaign = public(written, slots)
    history.record(
        connection,
        actor=actor,
        entity=ENTITY,
        entity_id=campaign_id,
        action="update",
        before=history_view(before),
        after=history_view(campaign),
        now=now,
    )
    return campaign


def delete_campaign(
    connection: Connection,
    *,
    campaign_id: int,
    expected_version: int | None,
    actor: Actor,
    now: datetime,
    scope: int | None = None,
) -> Removal:
    """Delete a campaign that never delivered (with its creatives, slot bookings and share
    links); archive one with statistics, which stays in every report under its name."""
    row = _row(connection, campaign_id, scope)
    before = history_view(public(row, _slots_of(connection, [campaign_id])[campaign_id]))
    outcome: Literal["deleted", "archived"]
    if has_statistics(connection, "campaign_id", campaign_id):
        if row.status != "archived":
            write_version(
                connection,
                CAMPAIGNS,
                row,
                {"status": "archived"},
                expected=expected_version,
                now=now,
            )
        outcome, after = "archived", history_view(get_campaign(connection, campaign_id=campaign_id))
    else:
        check_version(row, expected_version)
        _set_slots(connection, campaign_id, [])
        # Its share links show a campaign that never delivered: they go with it.
        for model in (Creative, CampaignDelivery, FlatBooking, ShareLink):
            rows = table(model)
            connection.execute(delete(rows).where(rows.c.campaign_id == campaign_id))
        connection.execute(delete(CAMPAIGNS).where(CAMPAIGNS.c.id == campaign_id))
        bump_inventory(connection)
        outcome, after = "deleted", None
    history.record(
        connection,
        actor=actor,
        entity=ENTITY,
        entity_id=campaign_id,
        action="archive" if outcome == "archived" else "delete",
        before=before,
        after=after,
        now=now,
    )
    return Removal(entity=ENTITY, id=str(campaign_id), outcome=outcome)


def require_campaign(connection: Connection, campaign_id: int, scope: int | None) -> Any:
    """The campaign a payload names (the caller's own), or a 422 on ``campaign``."""
    try:
        return _row(connection, campaign_id, scope)
    except NotFound as exc:
        raise ServiceError(
            f"campaign: no campaign {campaign_id}", {"campaign": "no such campaign"}
        ) from exc
