"""Demo data: one site with three slots and three advertisers, added only to an empty database.

``adserver demo`` calls :func:`add_demo_data`; it adds rows in one transaction when the database
has no site at all, and never deletes or changes anything. The demo logins use fixed, public
passwords: a demo database is for trying adserver out, not for the internet.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from zoneinfo import ZoneInfo

from argon2 import PasswordHasher
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from adserver.core.db import bump_inventory_version
from adserver.core.models import Advertiser, Campaign, CampaignSlot, Creative, Site, Slot, User

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
    ``hasher`` hashes the demo passwords (default: argon2's recommended parameters).
    """
    base_url = base_url.rstrip("/")
    zone = ZoneInfo(TIMEZONE)
    local_now = (now or datetime.now(zone)).astimezone(zone).replace(tzinfo=None)
    starts = local_now.replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    with Session(engine) as session:
        if session.exec(select(Site.id)).first() is not None:
            return None
        # Hash before the first write: SQLite holds its write lock until the commit.
        logins = _new_logins(session)
        hashes = [(hasher or PasswordHasher()).hash(login.password) for login in logins]
        slots = _add_site(session)
        tearoom_id = _add_campaigns(session, slots=slots, base_url=base_url, starts=starts)
        for login, password_hash in zip(logins, hashes, strict=True):
            advertiser_id = tearoom_id if login.role == "advertiser" else None
            session.add(
                User(
                    email=login.email,
                    role=login.role,
                    advertiser_id=advertiser_id,
                    password_hash=password_hash,
                )
            )
        bump_inventory_version(session.connection())
        session.commit()
    return DemoInfo(site_key=SITE_KEY, page_url=f"{base_url}/demo/", logins=logins)


def _add_site(session: Session) -> dict[str, int]:
    """The demo site and its slots; returns slot ids by name."""
    site = Site(
        key=SITE_KEY,
        name=SITE_NAME,
        domains=["localhost", "127.0.0.1"],
        timezone=TIMEZONE,
        currency="USD",
    )
    session.add(site)
    session.flush()
    assert site.id is not None
    slots = [Slot(site_id=site.id, name=name, sizes=sizes) for name, sizes in SLOTS.items()]
    session.add_all(slots)
    session.flush()
    return {slot.name: _id(slot.id) for slot in slots}


def _add_campaigns(
    session: Session, *, slots: dict[str, int], base_url: str, starts: datetime
) -> int:
    """A sponsorship, a standard CPM and a house campaign; returns the tearoom's advertiser id."""
    bikes = _add_advertiser(session, HARBOURSIDE, email="shop@harbourside-bikes.example")
    sponsorship = _add_campaign(
        session,
        advertiser_id=bikes,
        slot_ids=[slots["top-of-post"]],
        campaign=Campaign(
            advertiser_id=bikes,
            name="Spring sponsorship: top of every post",
            status="active",
            tier="sponsorship",
            pricing="flat",
            price_micros=40_000_000,
            starts_at=starts,
            ends_at=starts + timedelta(days=31),
            pacing="asap",
            fc_count=3,
            fc_per="hour",
        ),
    )
    _add_creatives(
        session,
        campaign_id=sponsorship,
        creatives=[
            _image(HARBOURSIDE, 728, 90, base_url=base_url),
        ],
    )

    tearoom = _add_advertiser(session, COPPER_KETTLE, email="hello@copperkettle.example")
    standard = _add_campaign(
        session,
        advertiser_id=tearoom,
        slot_ids=[slots["top-of-post"], slots["below-post"]],
        campaign=Campaign(
            advertiser_id=tearoom,
            name="Breakfast by the river",
            status="active",
            tier="standard",
            pricing="cpm",
            price_micros=3_500_000,
            starts_at=starts,
            ends_at=starts + timedelta(days=61),
            goal_kind="impressions",
            goal_total=100_000,
            budget_micros=350_000_000,
            pacing="even",
            rotation="even",
        ),
    )
    _add_creatives(
        session,
        campaign_id=standard,
        creatives=[
            _image(COPPER_KETTLE, 728, 90, base_url=base_url),
            _image(COPPER_KETTLE, 300, 250, base_url=base_url),
            Creative(
                campaign_id=0,
                name="Tearoom text ad",
                kind="text",
                click_url=_landing(base_url, COPPER_KETTLE),
                title="The Copper Kettle Tearoom",
                body="Bacon rolls, bottomless tea and a window on the river. Dogs welcome.",
                cta="See the menu",
            ),
        ],
    )

    supporters = _add_advertiser(session, COURIER, email="supporters@millbrook-courier.example")
    house = _add_campaign(
        session,
        advertiser_id=supporters,
        slot_ids=list(slots.values()),
        campaign=Campaign(
            advertiser_id=supporters,
            name="Become a supporter (house)",
            status="active",
            tier="house",
            pricing="house",
            starts_at=starts,
        ),
    )
    _add_creatives(
        session,
        campaign_id=house,
        creatives=[
            _html(COURIER, 300, 250, base_url=base_url),
            _html(COURIER, 728, 90, base_url=base_url),
        ],
    )
    return tearoom


def _add_advertiser(session: Session, advertiser: DemoAdvertiser, *, email: str) -> int:
    name = advertiser.name
    while session.exec(select(Advertiser.id).where(Advertiser.name == name)).first() is not None:
        name += " (demo)"
    row = Advertiser(name=name, email=email)
    session.add(row)
    session.flush()
    return _id(row.id)


def _add_campaign(
    session: Session, *, advertiser_id: int, slot_ids: list[int], campaign: Campaign
) -> int:
    session.add(campaign)
    session.flush()
    campaign_id = _id(campaign.id)
    session.add_all(CampaignSlot(campaign_id=campaign_id, slot_id=s) for s in slot_ids)
    return campaign_id


def _add_creatives(session: Session, *, campaign_id: int, creatives: list[Creative]) -> None:
    for creative in creatives:
        creative.campaign_id = campaign_id
        session.add(creative)
    session.flush()


def _new_logins(session: Session) -> tuple[DemoLogin, ...]:
    """The demo logins whose e-mail has no user yet (an existing user is left as it is)."""
    emails = [login.email for login in DEMO_LOGINS]
    taken = set(session.exec(select(User.email).where(col(User.email).in_(emails))))
    return tuple(login for login in DEMO_LOGINS if login.email not in taken)


def _landing(base_url: str, advertiser: DemoAdvertiser) -> str:
    return f"{base_url}/demo/landing?ad={advertiser.slug}"


def _image(advertiser: DemoAdvertiser, width: int, height: int, *, base_url: str) -> Creative:
    return Creative(
        campaign_id=0,
        name=f"{advertiser.name} {width}x{height}",
        kind="image",
        width=width,
        height=height,
        click_url=_landing(base_url, advertiser),
        image=banner_png(advertiser, width, height),
        image_type="image/png",
    )


def _html(advertiser: DemoAdvertiser, width: int, height: int, *, base_url: str) -> Creative:
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
    return Creative(
        campaign_id=0,
        name=f"{advertiser.name} {width}x{height} (HTML)",
        kind="html",
        width=width,
        height=height,
        click_url=_landing(base_url, advertiser),
        html=html,
    )


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


def _id(value: int | None) -> int:
    assert value is not None
    return value
