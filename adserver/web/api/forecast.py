"""``GET /v1/forecast`` (admin): expected, taken and available impressions for slots, a date
range and a targeting, before a campaign is sold."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import orjson
from pydantic import BaseModel, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from adserver.delivery.forecast import ForecastError, forecast
from adserver.services.campaigns import Targeting
from adserver.web.api.auth import PRIVATE, authenticate
from adserver.web.api.registry import Operation
from adserver.web.common import JSONBytes, error, runtime


class BadForecast(ValueError):
    pass


def _day(params: Any, name: str) -> date:
    value = params.get(name)
    if not value:
        raise BadForecast(f"'{name}' is required (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadForecast(f"'{name}' must be a date as YYYY-MM-DD") from None


def _targeting(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    try:
        parsed = Targeting.model_validate_json(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "targeting"
        raise BadForecast(f"targeting: {where}: {first['msg']}") from None
    return parsed.model_dump()


async def forecast_endpoint(request: Request) -> Response:
    principal = await authenticate(request)
    if isinstance(principal, Response):
        return principal
    if not principal.is_admin:
        return error(403, "forecasts are for the publisher's admins")
    params = request.query_params
    try:
        site = params.get("site") or ""
        if not site:
            raise BadForecast("'site' is required")
        slots = [s.strip() for s in (params.get("slots") or "").split(",") if s.strip()]
        if not slots:
            raise BadForecast("'slots' must name at least one slot (a comma list)")
        start, end = _day(params, "from"), _day(params, "to")
        targeting = _targeting(params.get("targeting"))
        tier = params.get("tier") or "standard"
        now = time.time()
        result = await runtime(request).run_db(
            lambda c: forecast(
                c,
                site_key=site,
                slot_names=slots,
                start=start,
                end=end,
                targeting=targeting,
                tier=tier,
                now=now,
            )
        )
    except (BadForecast, ForecastError) as exc:
        return error(400, str(exc))
    answer = {
        "site": site,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "tier": tier,
        "slots": [
            {
                "slot": f.slot,
                "expected": f.expected,
                "taken": f.taken,
                "available": f.available,
                "competing": f.competing,
            }
            for f in result
        ],
    }
    return JSONBytes(orjson.dumps(answer), headers=PRIVATE)


class ForecastQuery(BaseModel):
    site: str = Field(description="The site's key.")
    slots: str = Field(description="Slot names, a comma list.")
    from_: str = Field(alias="from", description="First day, YYYY-MM-DD (the site's days).")
    to: str = Field(description="Last day, YYYY-MM-DD.")
    targeting: str | None = Field(
        default=None, description="The campaign's targeting as JSON, as campaigns take it."
    )
    tier: str | None = Field(
        default=None, description="The tier to sell at (default standard): what competes."
    )


class Competing(BaseModel):
    campaign: int
    name: str
    tier: str
    takes: int = Field(description="Impressions it will take of the expected ones.")


class SlotForecastAnswer(BaseModel):
    slot: str
    expected: int
    taken: int
    available: int
    competing: list[Competing]


class ForecastAnswer(BaseModel):
    site: str
    from_: str = Field(alias="from")
    to: str
    tier: str
    slots: list[SlotForecastAnswer]


operations = [
    Operation(
        "GET",
        "/v1/forecast",
        "forecast",
        "Expected, taken and available impressions for slots, dates and a targeting",
        forecast_endpoint,
        auth="admin",
        query=ForecastQuery,
        response=ForecastAnswer,
        errors=(400, 401, 403),
    )
]
