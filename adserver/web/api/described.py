"""The /v1 routes outside the management table, described for the OpenAPI document: decide,
beacons, clicks, the slot frame, creative images, statistics and unsubscribe links.

Their handlers parse by hand (the hot lane cannot afford a model per request), so the models
here only describe what they take and give; ``tests/test_openapi.py`` checks the document
against the live server, and that every /v1 route of the app is in it.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from adserver.web.api import reports, stats
from adserver.web.api.registry import Operation
from adserver.web.serve.decide import decide_endpoint, decide_preflight
from adserver.web.serve.events import beacon_endpoint, click_endpoint
from adserver.web.serve.files import asset
from adserver.web.serve.frame import slot_frame

Kind = Literal["image", "html", "text"]
Dimension = Literal["hour", "day", "site", "slot", "advertiser", "campaign", "creative"]


class DecideQuery(BaseModel):
    """What a page (or a publisher's server) asks for; POST may send the same as JSON."""

    model_config = ConfigDict(extra="forbid")

    site: str = Field(description="The site's key.", min_length=1, max_length=64)
    slots: str = Field(
        description='Slot names as a comma list, or a JSON list of {"name", "sizes"}.',
        min_length=1,
        max_length=4000,
    )
    url: str | None = Field(default=None, description="The page's URL (its path is targeted).")
    keywords: str | None = Field(default=None, description="The page's keywords, a comma list.")
    shown: str | None = Field(
        default=None, description="Campaign ids this page view already shows, a comma list."
    )
    fc: str | None = Field(
        default=None,
        description="Frequency data kept by the reader's browser: a JSON object from campaign "
        "id to the UNIX times of the reader's recent impressions of it.",
    )
    explain: Literal["0", "1"] | None = Field(
        default=None, description="1 with an admin token: why each campaign won or lost."
    )


class SlotAsk(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
    sizes: list[str] | None = None


class DecideBody(BaseModel):
    """A decide as JSON (merged over the query string)."""

    model_config = ConfigDict(extra="forbid")

    site: str = Field(min_length=1, max_length=64)
    slots: list[SlotAsk | str] = Field(min_length=1, max_length=50)
    url: str | None = None
    keywords: list[str] | str | None = None
    shown: list[int] | str | None = None
    fc: dict[str, list[float]] | None = None
    explain: bool | None = None


class Decision(BaseModel):
    """The creative chosen for one slot, with its signed beacon and click URLs."""

    id: str
    campaign: int
    creative: int
    kind: Kind
    width: int
    height: int
    html: str
    impression_url: str
    view_url: str
    click_url: str


class Explanation(BaseModel):
    campaign: int
    name: str
    outcome: Literal["chosen", "dropped"]
    reason: str | None


class DecideAnswer(BaseModel):
    site: str
    decisions: dict[str, Decision | None]
    #: Unknown slot names, which got null.
    errors: list[str] | None = None
    explain: dict[str, list[Explanation]] | None = None


class BeaconQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    img: Literal["1"] | None = Field(default=None, description="Answer a 1x1 GIF, not a 204.")


class SlotFrameQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, description="The page's URL (else the Referer).")
    keywords: str | None = None


class StatsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_: str = Field(alias="from", pattern=r"^\d{4}-\d{2}-\d{2}$", description="First day.")
    to: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="Last day (included).")
    by: str | None = Field(
        default=None, description="Dimensions, a comma list of: " + ", ".join(get_args(Dimension))
    )
    site: str | None = None
    advertiser: int | None = Field(default=None, ge=1)
    campaign: int | None = Field(default=None, ge=1)
    currency: str | None = Field(default=None, description="Only sites in this currency.")
    format: Literal["json", "csv"] | None = None


class Figures(BaseModel):
    """The figures of a row or the totals; requests and served for admin tokens only."""

    model_config = ConfigDict(extra="allow")

    requests: int | None = None
    served: int | None = None
    impressions: int
    viewable: int
    clicks: int
    invalid_impressions: int
    invalid_views: int
    invalid_clicks: int
    ctr: float | None
    viewability: float | None
    spend: str
    ecpm: str | None
    invalid: dict[str, int]


class StatsAnswer(BaseModel):
    from_: str = Field(alias="from")
    to: str
    by: list[Dimension]
    currency: str | None
    #: Each row carries its dimensions (``day``, ``slot`` and ``slot_name``, ...) and figures.
    rows: list[Figures]
    totals: Figures


TOKEN_PATH_ERRORS = (403, 410, 503)

operations = [
    Operation(
        "GET", "/v1/decide", "decide", "Choose an ad for each slot of a page", decide_endpoint,
        auth="none", optional_auth=True, query=DecideQuery, response=DecideAnswer,
        errors=(400, 403, 404),
    ),
    Operation(
        "POST", "/v1/decide", "decide_post", "Choose ads, asked as JSON", decide_endpoint,
        auth="none", optional_auth=True, body=DecideBody, response=DecideAnswer,
        errors=(400, 403, 404, 413),
    ),
    Operation(
        "OPTIONS", "/v1/decide", "decide_preflight", "CORS preflight of a decide",
        decide_preflight, auth="none", status=204,
    ),
    *[
        Operation(
            method, f"/v1/{kind}/{{token}}", f"{kind}_{method.lower()}",
            f"Count the {'impression' if kind == 'imp' else 'viewable impression'} of a decision",
            beacon_endpoint, auth="none", query=BeaconQuery, status=204, also=(200,),
            media=("image/gif",), errors=TOKEN_PATH_ERRORS,
        )
        for kind in ("imp", "view")
        for method in ("GET", "POST")
    ],
    Operation(
        "GET", "/v1/click/{token}", "click",
        "Count a click and redirect to the creative's landing page", click_endpoint,
        auth="none", status=302, errors=(400, 404), error_media="text/html",
    ),
    Operation(
        "GET", "/v1/slot/{site}/{slot}.html", "slot_frame",
        "A whole HTML document holding one slot's ad, for an iframe", slot_frame,
        auth="none", query=SlotFrameQuery, media=("text/html",), errors=(400, 404),
        error_media="text/html",
    ),
    Operation(
        "GET", "/v1/asset/{creative_id}", "asset", "A creative's image", asset, auth="none",
        media=("image/png", "image/jpeg", "image/gif", "image/webp"), also=(304,), errors=(404,),
    ),
    Operation(
        "GET", "/v1/stats", "stats", "Delivery statistics, as JSON or CSV", stats.stats_endpoint,
        auth="token", query=StatsQuery, response=StatsAnswer, media=("text/csv",),
        errors=(400, 401, 403),
    ),
    *[
        Operation(
            method, "/v1/unsubscribe/{token}", f"unsubscribe_{method.lower()}",
            "Stop a report or notification mail for one address (the signed link authorises)",
            reports.unsubscribe, auth="none", media=("text/html",), errors=(404,),
            error_media="text/html",
        )
        for method in ("GET", "POST")
    ],
]  # fmt: skip
