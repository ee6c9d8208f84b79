"""Demo data: one site with three slots and three advertisers, added only to an empty database.

``adserver demo`` calls :func:`add_demo_data`; it adds rows in one transaction when the database
has no site at all, and never deletes or changes anything. The demo logins use fixed, public
passwords: a demo database is for trying adserver out, not for the internet.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from argon2 import PasswordHasher
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import Connection, Engine, insert, select

from adserver.core.models import Site, User, table
from adserver.services import advertisers, campaigns, creatives, sites, slots
from adserver.services.advertisers import AdvertiserCreate
from adserver.services.campaigns import CampaignCreate
from adserver.services.common import SYSTEM
from adserver.services.creatives import CreativeCreate
from adserver.services.errors import Conflict
from adserver.services.sites import SiteCreate
from adserver.services.slots import SlotCreate

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

SITE_KEY = "demo"
SITE_NAME = "The Millbrook Courier"
TIMEZONE = "Europe/London"
SLOTS = {
    "top-of-post": ["728x90"],
    "below-post": ["728x90", "300x250"],
    "ads-area": ["300x250"],
}
ADMIN_EMAIL, ADMIN_PASSWORD = "admin@example.com", "demo-admin"
ADVERTISER_EMAIL, ADVERTISER_PASSWORD = "advertiser@example.com", "demo-advertiser"


@dataclass(frozen=True, slots=True)
class DemoAdvertiser:
    slug: str
    name: str
    tagline: str
    cta: str
    #: Banner background and text colours.
    colours: tuple[str, str]


HARBOURSIDE = DemoAdvertiser(
    "harbourside-bikes",
    "Harbourside Bikes",
    "Spring tune-ups while you wait, on the quay",
    "Book a tune-up",
    ("#0b5563", "#ffffff"),
)
COPPER_KETTLE = DemoAdvertiser(
    "copper-kettle",
    "The Copper Kettle Tearoom",
    "Breakfast by the river, every day from 8",
    "See the menu",
    ("#c2571a", "#fff8ee"),
)
COURIER = DemoAdvertiser(
    "courier-supporters",
    "Millbrook Courier Supporters",
    "Local news, kept local. Become a supporter.",
    "Join today",
    ("#222222", "#f4d35e"),
)
#: Landing-page names by the ``ad`` parameter of a demo click URL.
ADVERTISERS = {a.slug: a for a in (HARBOURSIDE, COPPER_KETTLE, COURIER)}


@dataclass(frozen=True, slots=True)
class DemoLogin:
    role: str
    email: str
    password: str


DEMO_LOGINS = (
    DemoLogin("admin", ADMIN_EMAIL, ADMIN_PASSWORD),
    DemoLogin("advertiser", ADVERTISER_EMAIL, ADVERTISER_PASSWORD),
)


@dataclass(frozen=True, slots=True)
class DemoInfo:
    site_key: str
    page_url: str
    #: Logins created now; an e-mail that already had a user is left alone and not listed.
    logins: tuple[DemoLogin, ...]


def add_demo_data(
    engine: Engine,
    *,
    base_url: str,
    now: datetime | None = None,
    hasher: PasswordHasher | None = None,
) -> DemoInfo | None:
    """Add the demo site when the database has no site at all; None (and no change) otherwise.

    ``now`` is an aware datetime (default: the current time); campaigns start the day before.
    ``hasher`` hashes the demo passwords (default: argon2's recommended parameters). Everything
    is created through the service layer, as the API and the pages create it, in one
    transaction.
    """
    base_url = base_url.rstrip("/")
    zone = ZoneInfo(TIMEZONE)
    moment = now or datetime.now(UTC)
    local_now = moment.astimezone(zone).replace(tzinfo=None)
    starts = local_now.replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    with engine.connect() as connection:
        if connection.execute(select(table(Site).c.id).limit(1)).first() is not None:
            return None
        logins = _new_logins(connection)
    # Hash before the first write: SQLite holds its write lock until the commit.
    hashes = [(hasher or PasswordHasher()).hash(login.password) for login in logins]
    with engine.begin() as connection:
        demo = _Demo(connection, base_url=base_url, now=moment.astimezone(UTC))
        slot_ids = demo.site()
        tearoom_id = demo.campaigns(slot_ids=slot_ids, starts=starts)
        for login, password_hash in zip(logins, hashes, strict=True):
            advertiser_id = tearoom_id if login.role == "advertiser" else None
            connection.execute(
                insert(table(User)).values(
                    email=login.email,
                    role=login.role,
                    advertiser_id=advertiser_id,
                    password_hash=password_hash,
                    active=True,
                    created_at=moment,
                    updated_at=moment,
                )
            )
    return DemoInfo(site_key=SITE_KEY, page_url=f"{base_url}/demo/", logins=logins)


class _Demo:
    """Creates the demo's entities through the service layer, as the system."""

    def __init__(self, connection: Connection, *, base_url: str, now: datetime) -> None:
        self.connection = connection
        self.base_url = base_url
        self.now = now

    def site(self) -> dict[str, int]:
        """The demo site and its slots; returns slot ids by name."""
        site = SiteCreate(
            key=SITE_KEY,
            name=SITE_NAME,
            domains=["localhost", "127.0.0.1"],
            timezone=TIMEZONE,
            currency="USD",
        )
        sites.create_site(self.connection, data=site, actor=SYSTEM, now=self.now)
        created = [
            slots.create_slot(
                self.connection,
                data=SlotCreate(site=SITE_KEY, name=name, sizes=sizes),
                actor=SYSTEM,
                now=self.now,
            )
            for name, sizes in SLOTS.items()
        ]
        return {slot.name: slot.id for slot in created}

    def advertiser(self, advertiser: DemoAdvertiser, *, email: str) -> int:
        """The advertiser, named "... (demo)" when its name is taken already."""
        name = advertiser.name
        while True:
            try:
                return advertisers.create_advertiser(
                    self.connection,
                    data=AdvertiserCreate(name=name, email=email),
                    actor=SYSTEM,
                    now=self.now,
                ).id
            except Conflict:
                name += " (demo)"

    def campaign(self, **fields: Any) -> int:
        data = CampaignCreate.model_validate(fields)
        return campaigns.create_campaign(self.connection, data=data, actor=SYSTEM, now=self.now).id

    def creative(self, campaign_id: int, **fields: Any) -> None:
        data = CreativeCreate.model_validate({"campaign": campaign_id, **fields})
        creatives.create_creative(
            self.connection, data=data, actor=SYSTEM, now=self.now, base_url=self.base_url
        )

    def campaigns(self, *, slot_ids: dict[str, int], starts: datetime) -> int:
        """A sponsorship, a standard CPM and a house campaign; returns the tearoom's
        advertiser id."""
        bikes = self.advertiser(HARBOURSIDE, email="shop@harbourside-bikes.example")
        sponsorship = self.campaign(
            advertiser=bikes,
            name="Spring sponsorship: top of every post",
            status="active",
            tier="sponsorship",
            pricing="flat",
            price="40",
            starts_at=starts.isoformat(),
            ends_at=(starts + timedelta(days=31)).isoformat(),
            pacing="asap",
            frequency_cap={"count": 3, "per": "hour"},
            slots=[slot_ids["top-of-post"]],
        )
        self.creative(sponsorship, **self.image(HARBOURSIDE, 728, 90))

        tearoom = self.advertiser(COPPER_KETTLE, email="hello@copperkettle.example")
        standard = self.campaign(
            advertiser=tearoom,
            name="Breakfast by the river",
            status="active",
            tier="standard",
            pricing="cpm",
            price="3.50",
            starts_at=starts.isoformat(),
            ends_at=(starts + timedelta(days=61)).isoformat(),
            goal={"kind": "impressions", "total": 100_000},
            budget="350",
            pacing="even",
            rotation="even",
            slots=[slot_ids["top-of-post"], slot_ids["below-post"]],
        )
        self.creative(standard, **self.image(COPPER_KETTLE, 728, 90))
        self.creative(standard, **self.image(COPPER_KETTLE, 300, 250))
        self.creative(
            standard,
            name="Tearoom text ad",
            kind="text",
            click_url=_landing(self.base_url, COPPER_KETTLE),
            title="The Copper Kettle Tearoom",
            body="Bacon rolls, bottomless tea and a window on the river. Dogs welcome.",
            cta="See the menu",
        )

        supporters = self.advertiser(COURIER, email="supporters@millbrook-courier.example")
        house = self.campaign(
            advertiser=supporters,
            name="Become a supporter (house)",
            status="active",
            tier="house",
            pricing="house",
            starts_at=starts.isoformat(),
            slots=list(slot_ids.values()),
        )
        self.creative(house, **self.html(COURIER, 300, 250))
        self.creative(house, **self.html(COURIER, 728, 90))
        return tearoom

    def image(self, advertiser: DemoAdvertiser, width: int, height: int) -> dict[str, Any]:
        return {
            "name": f"{advertiser.name} {width}x{height}",
            "kind": "image",
            "width": width,
            "height": height,
            "click_url": _landing(self.base_url, advertiser),
            "image": base64.b64encode(banner_png(advertiser, width, height)).decode(),
        }

    def html(self, advertiser: DemoAdvertiser, width: int, height: int) -> dict[str, Any]:
        """An HTML creative: the tag shows it in a sandboxed iframe, never in the page."""
        background, colour = advertiser.colours
        html = (
            "<style>a{display:flex;flex-direction:column;justify-content:center;gap:8px;"
            f"box-sizing:border-box;width:{width}px;height:{height}px;padding:12px;"
            f"background:{background};color:{colour};font:16px/1.3 Georgia,serif;"
            "text-decoration:none;text-align:center}"
            "b{font-size:1.35em}span{animation:p 2s ease-in-out infinite alternate}"
            "@keyframes p{to{opacity:.55}}</style>"
            f'<a href="%%CLICK_URL%%" target="_blank" rel="sponsored noopener">'
            f"<b>{escape(advertiser.name)}</b><span>{escape(advertiser.tagline)}</span></a>"
        )
        return {
            "name": f"{advertiser.name} {width}x{height} (HTML)",
            "kind": "html",
            "width": width,
            "height": height,
            "click_url": _landing(self.base_url, advertiser),
            "html": html,
        }


def _new_logins(connection: Connection) -> tuple[DemoLogin, ...]:
    """The demo logins whose e-mail has no user yet (an existing user is left as it is)."""
    emails = [login.email for login in DEMO_LOGINS]
    users = table(User)
    taken = set(
        connection.execute(select(users.c.email).where(users.c.email.in_(emails))).scalars()
    )
    return tuple(login for login in DEMO_LOGINS if login.email not in taken)


def _landing(base_url: str, advertiser: DemoAdvertiser) -> str:
    return f"{base_url}/demo/landing?ad={advertiser.slug}"


def banner_png(advertiser: DemoAdvertiser, width: int, height: int) -> bytes:
    """A flat banner with the advertiser's name, tagline and a button, drawn now (no files)."""
    background, colour = advertiser.colours
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    draw.rectangle((3, 3, width - 4, height - 4), outline=colour, width=2)
    if width > 2 * height:  # a leaderboard: text on the left, the button on the right
        button = (width - 210.0, height * 0.27, width - 24.0, height * 0.73)
        text_width = button[0] - 48
        title = _font(draw, advertiser.name, text_width, height * 0.34)
        tagline = _font(draw, advertiser.tagline, text_width, height * 0.2)
        draw.text((24, height * 0.38), advertiser.name, fill=colour, font=title, anchor="lm")
        draw.text((24, height * 0.72), advertiser.tagline, fill=colour, font=tagline, anchor="lm")
    else:  # a box: name and tagline wrapped and centred, the button below
        button = (width * 0.2, height * 0.74, width * 0.8, height * 0.88)
        for text, size, middle in ((advertiser.name, 0.13, 0.27), (advertiser.tagline, 0.07, 0.55)):
            font = _font(draw, "", width, height * size)
            wrapped = _wrap(draw, text, font, width - 40)
            draw.multiline_text(
                (width / 2, height * middle),
                wrapped,
                fill=colour,
                font=font,
                anchor="mm",
                align="center",
                spacing=6,
            )
    draw.rounded_rectangle(button, radius=6, fill=colour)
    cta = _font(draw, advertiser.cta, button[2] - button[0] - 16, (button[3] - button[1]) * 0.45)
    centre = ((button[0] + button[2]) / 2, (button[1] + button[3]) / 2)
    draw.text(centre, advertiser.cta, fill=background, font=cta, anchor="mm")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _font(draw: ImageDraw.ImageDraw, text: str, width: float, size: float) -> Font:
    """The default font at ``size`` pixels, smaller until ``text`` fits ``width``."""
    points = max(8, int(size))
    while True:
        font = ImageFont.load_default(size=points)
        if points <= 8 or draw.textlength(text, font=font) <= width:
            return font
        points -= 1


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: Font, width: float) -> str:
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return "\n".join(lines)
