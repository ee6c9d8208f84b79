"""SQLModel tables.

Entities (site, slot, advertiser, campaign, creative) carry integer ids. Raw events and the
statistics they roll into use plain integers (epoch seconds, ids with 0 for "none") so the hot
paths and the tally stay simple, portable SQL on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    LargeBinary,
    Table,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel


def table(model: type[SQLModel]) -> Table:
    """The Core table behind a model, for typed column expressions in queries."""
    return model.__table__  # type: ignore[attr-defined,no-any-return]


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: SQLite keeps no zone, PostgreSQL keeps it anyway."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is expected")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _utc_column(nullable: bool = False) -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=nullable)


class Site(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=64)
    name: str
    domains: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    timezone: str = "UTC"
    currency: str = "USD"
    #: Shown at the top of reports: the publisher's logo (an https URL) and where the
    #: publisher's own summary goes (else to the admin users).
    logo_url: str | None = None
    report_email: str | None = None
    #: ``active`` or ``archived`` (kept, with its statistics, once something refers to it).
    status: str = "active"
    created_at: datetime = _utc_column()
    #: Bumped by every write; the management API's ETag, checked against If-Match.
    version: int = 1
    updated_at: datetime = _utc_column()


class Slot(SQLModel, table=True):
    __table_args__ = (Index("ix_slot_site_name", "site_id", "name", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id")
    name: str = Field(max_length=100)
    sizes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    #: Shown when no campaign fills the slot; None collapses the slot.
    fallback_html: str | None = None
    status: str = "active"
    #: Bumped by every write; the management API's ETag, checked against If-Match.
    version: int = 1
    updated_at: datetime = _utc_column()


class Advertiser(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    email: str = ""
    status: str = "active"
    created_at: datetime = _utc_column()
    #: Bumped by every write; the management API's ETag, checked against If-Match.
    version: int = 1
    updated_at: datetime = _utc_column()


class Campaign(SQLModel, table=True):
    """A flight of creatives sold to an advertiser.

    ``starts_at`` and ``ends_at`` are wall-clock times in the time zone of the site the
    campaign serves on (stored without a zone), as publishers book them.
    """

    id: int | None = Field(default=None, primary_key=True)
    advertiser_id: int = Field(foreign_key="advertiser.id", index=True)
    name: str
    status: str = "draft"
    tier: str = "standard"
    pricing: str = "cpm"
    price_micros: int = Field(default=0, sa_type=BigInteger)
    weight: int = 1
    starts_at: datetime | None = Field(default=None, sa_type=DateTime)
    ends_at: datetime | None = Field(default=None, sa_type=DateTime)
    #: The UTC offset (minutes) the time was given with: that instant on every site. None:
    #: the wall clock of each site the campaign serves on.
    starts_offset: int | None = None
    ends_offset: int | None = None
    goal_kind: str | None = None
    goal_total: int | None = None
    goal_daily: int | None = None
    budget_micros: int | None = Field(default=None, sa_type=BigInteger)
    pacing: str = "even"
    fc_count: int | None = None
    fc_per: str | None = None
    targeting: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    rotation: str = "even"
    roadblock: bool = False
    #: Competitive exclusion: two campaigns sharing a label never share a page.
    labels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    #: Add utm_* parameters to the landing URL at the click redirect.
    utm: bool = False
    created_at: datetime = _utc_column()
    version: int = 1
    updated_at: datetime = _utc_column()


class CampaignSlot(SQLModel, table=True):
    __tablename__ = "campaign_slot"

    campaign_id: int = Field(foreign_key="campaign.id", primary_key=True)
    slot_id: int = Field(foreign_key="slot.id", primary_key=True)


class Creative(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    name: str
    kind: str = "image"
    width: int = 0
    height: int = 0
    click_url: str = ""
    weight: int = 1
    #: ``active``, ``paused``, ``archived``, or ``pending``/``rejected`` (the publisher's review).
    status: str = "active"
    #: Why the publisher rejected it, shown to the advertiser.
    review_note: str | None = None
    #: https URLs the reader's browser calls when our impression is counted.
    impression_trackers: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    image: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    image_type: str | None = None
    html: str | None = None
    title: str | None = None
    body: str | None = None
    cta: str | None = None
    created_at: datetime = _utc_column()
    #: Bumped by every write; the management API's ETag, checked against If-Match.
    version: int = 1
    updated_at: datetime = _utc_column()


class User(SQLModel, table=True):
    __tablename__ = "app_user"  # "user" is a reserved word in PostgreSQL

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True)
    role: str = "advertiser"
    advertiser_id: int | None = Field(default=None, foreign_key="advertiser.id")
    password_hash: str = ""
    #: A disabled user cannot sign in, and its open sessions end at once.
    active: bool = True
    created_at: datetime = _utc_column()
    #: Bumped by every write; the management API's ETag, checked against If-Match.
    version: int = 1
    updated_at: datetime = _utc_column()


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str
    #: SHA-256 of the token; the token itself is shown once and never stored.
    token_hash: str = Field(unique=True, max_length=64)
    advertiser_id: int | None = Field(default=None, foreign_key="advertiser.id")
    created_at: datetime = _utc_column()
    #: Set once by revocation; a revoked token fails at once in every process.
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: Written at most once a minute per token, so a busy script costs no write per request.
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: Bumped by every write; the management API's ETag, checked against If-Match.
    version: int = 1
    updated_at: datetime = _utc_column()


class UserSession(SQLModel, table=True):
    """A signed-in browser: the cookie holds a random id, the table only its SHA-256."""

    __tablename__ = "user_session"

    id: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    created_at: datetime = _utc_column()
    #: Last request seen (updated at most once a minute), for the idle expiry.
    seen_at: datetime = _utc_column()


class LoginFailure(SQLModel, table=True):
    """A wrong password, kept an hour: the login throttle counts these per address and e-mail."""

    __tablename__ = "login_failure"
    __table_args__ = (
        Index("ix_login_failure_address", "address", "at"),
        Index("ix_login_failure_email", "email", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(max_length=64)
    email: str = Field(max_length=320)
    at: int = Field(sa_type=BigInteger)


class AccountLink(SQLModel, table=True):
    """A single-use link to set a password (an invitation or a reset); stored as its SHA-256."""

    __tablename__ = "account_link"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, max_length=64)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    #: ``invite`` or ``reset``.
    purpose: str = Field(max_length=16)
    created_at: datetime = _utc_column()
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Change(SQLModel, table=True):
    """One write through the service layer: who, when, which entity, the fields before and
    after (only those that changed; all of them on create and delete)."""

    __table_args__ = (Index("ix_change_entity", "entity", "entity_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _utc_column()
    #: ``user``, ``token`` or ``system`` (the command line, the demo).
    actor_kind: str = Field(max_length=8)
    actor_id: int | None = None
    actor_name: str = ""
    entity: str = Field(max_length=32)
    #: The id as the API names it (a site's key, other entities' integer ids).
    entity_id: str = Field(max_length=64)
    #: ``create``, ``update``, ``archive`` or ``delete``.
    action: str = Field(max_length=8)
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class Event(SQLModel, table=True):
    """One impression, view or click as it arrived, valid or not (with the reason).

    ``dedup_key`` is ``decision:kind`` for an event that counts and NULL for an invalid one: the
    unique index refuses a second counted event for the same decision without a read first.
    ``tally_batch`` stays NULL until the tally claims the row in the same transaction that adds
    it to the statistics, which is what makes the tally exact with concurrent writers.
    """

    __table_args__ = (
        Index(
            "ix_event_untallied",
            "tally_batch",
            sqlite_where=Column("tally_batch").is_(None),
            postgresql_where=Column("tally_batch").is_(None),
        ),
        Index("ix_event_at", "at"),
    )

    id: str = Field(primary_key=True, max_length=32)
    decision_id: str = Field(max_length=32)
    kind: str = Field(max_length=8)
    at: int = Field(sa_type=BigInteger)
    #: Start of the site-local hour the event fell in, as UTC epoch seconds.
    hour: int = Field(sa_type=BigInteger)
    site_id: int = 0
    slot_id: int = 0
    campaign_id: int = 0
    creative_id: int = 0
    valid: bool
    reason: str | None = Field(default=None, max_length=16)
    dedup_key: str | None = Field(default=None, unique=True, max_length=48)
    tally_batch: int | None = Field(default=None, sa_type=BigInteger)
    #: A daily-salted hash of the reader's address and user agent (``tracking.abuse``), never
    #: the address itself; empty where no reader can be told apart (loopback).
    reader: str = Field(default="", max_length=24, sa_column_kwargs={"server_default": ""})


class HourlyStat(SQLModel, table=True):
    """Delivery in one site-local hour; ids are 0 where a figure has no such dimension."""

    __tablename__ = "hourly_stat"

    hour: int = Field(sa_type=BigInteger, primary_key=True)
    site_id: int = Field(primary_key=True)
    slot_id: int = Field(primary_key=True)
    campaign_id: int = Field(primary_key=True)
    creative_id: int = Field(primary_key=True)
    requests: int = Field(default=0, sa_type=BigInteger)
    served: int = Field(default=0, sa_type=BigInteger)
    impressions: int = Field(default=0, sa_type=BigInteger)
    viewable: int = Field(default=0, sa_type=BigInteger)
    clicks: int = Field(default=0, sa_type=BigInteger)
    invalid_impressions: int = Field(default=0, sa_type=BigInteger)
    invalid_views: int = Field(default=0, sa_type=BigInteger)
    invalid_clicks: int = Field(default=0, sa_type=BigInteger)
    #: Spend in nano-units of the site's currency (micro-units x 1,000) so CPM stays exact.
    spend_nanos: int = Field(default=0, sa_type=BigInteger)


class InvalidStat(SQLModel, table=True):
    """Invalid events per hour, kind and reason, kept apart from the billable figures."""

    __tablename__ = "invalid_stat"

    hour: int = Field(sa_type=BigInteger, primary_key=True)
    site_id: int = Field(primary_key=True)
    slot_id: int = Field(primary_key=True)
    campaign_id: int = Field(primary_key=True)
    creative_id: int = Field(primary_key=True)
    kind: str = Field(primary_key=True, max_length=8)
    reason: str = Field(primary_key=True, max_length=16)
    count: int = Field(default=0, sa_type=BigInteger)


class DailyStat(SQLModel, table=True):
    """The hourly statistics summed per site-local day (``YYYY-MM-DD``), written in the same
    transaction as the hourly rows (``reporting/rollups.py``), so the two always agree."""

    __tablename__ = "daily_stat"
    # On SQLite the rows live in the primary key's tree (no rowid): a range of days is read in
    # one pass instead of an index lookup then a table lookup per row.
    __table_args__ = (
        Index("ix_daily_stat_campaign_day", "campaign_id", "day"),
        {"sqlite_with_rowid": False},
    )

    day: str = Field(primary_key=True, max_length=10)
    site_id: int = Field(primary_key=True)
    slot_id: int = Field(primary_key=True)
    campaign_id: int = Field(primary_key=True)
    creative_id: int = Field(primary_key=True)
    requests: int = Field(default=0, sa_type=BigInteger)
    served: int = Field(default=0, sa_type=BigInteger)
    impressions: int = Field(default=0, sa_type=BigInteger)
    viewable: int = Field(default=0, sa_type=BigInteger)
    clicks: int = Field(default=0, sa_type=BigInteger)
    invalid_impressions: int = Field(default=0, sa_type=BigInteger)
    invalid_views: int = Field(default=0, sa_type=BigInteger)
    invalid_clicks: int = Field(default=0, sa_type=BigInteger)
    spend_nanos: int = Field(default=0, sa_type=BigInteger)


class InvalidDaily(SQLModel, table=True):
    """``invalid_stat`` summed per site-local day, beside ``daily_stat``."""

    __tablename__ = "invalid_daily"
    __table_args__ = ({"sqlite_with_rowid": False},)

    day: str = Field(primary_key=True, max_length=10)
    site_id: int = Field(primary_key=True)
    slot_id: int = Field(primary_key=True)
    campaign_id: int = Field(primary_key=True)
    creative_id: int = Field(primary_key=True)
    kind: str = Field(primary_key=True, max_length=8)
    reason: str = Field(primary_key=True, max_length=16)
    count: int = Field(default=0, sa_type=BigInteger)


class ShareLink(SQLModel, table=True):
    """A read-only link to one campaign's dashboard, opened without a login.

    The link's token is an HMAC of the id and ``salt`` under the secret key, never stored: the
    database alone does not open a dashboard, and every link can be shown again to its owner.
    """

    __tablename__ = "share_link"

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    salt: str = Field(max_length=32)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: Who made it (a user's e-mail or a token's name), for the owner's list.
    created_by: str = ""
    created_at: datetime = _utc_column()


class FlatBooking(SQLModel, table=True):
    """A flat-priced campaign's day, booked once when it first delivers that (local) day."""

    __tablename__ = "flat_booking"

    campaign_id: int = Field(primary_key=True)
    day: str = Field(primary_key=True, max_length=10)


class CampaignDelivery(SQLModel, table=True):
    """Delivered-so-far per campaign, refreshed by the pacing job, read by the inventory."""

    __tablename__ = "campaign_delivery"

    campaign_id: int = Field(primary_key=True)
    impressions: int = Field(default=0, sa_type=BigInteger)
    clicks: int = Field(default=0, sa_type=BigInteger)
    spend_nanos: int = Field(default=0, sa_type=BigInteger)
    today_impressions: int = Field(default=0, sa_type=BigInteger)
    today_clicks: int = Field(default=0, sa_type=BigInteger)
    today_spend_nanos: int = Field(default=0, sa_type=BigInteger)
    day: str = Field(default="", max_length=10)


class JobRun(SQLModel, table=True):
    """One row per scheduled job and period: the insert that wins is the one that runs it."""

    __tablename__ = "job_run"

    job: str = Field(primary_key=True, max_length=32)
    period: int = Field(sa_type=BigInteger, primary_key=True)
    holder: str = Field(max_length=64)
    started_at: datetime = _utc_column()
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ok: bool | None = None
    detail: str | None = None


class Meta(SQLModel, table=True):
    """Small counters shared by all processes, e.g. the inventory version bumped by writes."""

    key: str = Field(primary_key=True, max_length=32)
    value: int = Field(default=0, sa_type=BigInteger)


class ReportSchedule(SQLModel, table=True):
    """When an advertiser's report (or, with no advertiser, the publisher's summary) is sent.

    Sent at ``hour`` local time in ``timezone``: daily, weekly on ``weekday`` (0 = Monday) or
    monthly on ``day`` (1-28); each covers the last whole period of the sites' own days.
    """

    __tablename__ = "report_schedule"

    id: int | None = Field(default=None, primary_key=True)
    advertiser_id: int | None = Field(default=None, foreign_key="advertiser.id", index=True)
    period: str = Field(default="week", max_length=8)
    weekday: int | None = None
    day: int | None = None
    hour: int = 8
    timezone: str = "UTC"
    recipients: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    active: bool = True
    created_at: datetime = _utc_column()
    #: Bumped by every write; the management API's ETag, checked against If-Match.
    version: int = 1
    updated_at: datetime = _utc_column()


class Report(SQLModel, table=True):
    """An archived report, exactly as it was mailed (or would have been, with mail off).

    One per schedule and period: the unique index makes building it a claim, so however many
    scheduler processes run, one builds it. Reports made on demand have no schedule.
    """

    __table_args__ = (
        Index("ix_report_schedule_period", "schedule_id", "period", "period_start", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    schedule_id: int | None = Field(default=None, foreign_key="report_schedule.id")
    advertiser_id: int | None = Field(default=None, foreign_key="advertiser.id", index=True)
    #: ``day``, ``week`` or ``month``; the period is the local days start..end inclusive.
    period: str = Field(max_length=8)
    period_start: str = Field(max_length=10)
    period_end: str = Field(max_length=10)
    title: str
    html: str
    text: str
    csv: str
    chart: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    #: Built after its scheduled time had passed (the scheduler was down at the hour).
    late: bool = False
    created_at: datetime = _utc_column()


class Outbox(SQLModel, table=True):
    """One message to send, claimed by one process and marked sent in the database.

    ``status``: pending, sending (claimed; ``claimed_until`` bounds a crashed sender's claim),
    sent, failed (refused for good), off (no SMTP: archived only). The Message-ID never
    changes, so the one resend a crash can cause is recognisable.
    """

    __table_args__ = (Index("ix_outbox_status", "status", "not_before"),)

    id: int | None = Field(default=None, primary_key=True)
    report_id: int | None = Field(default=None, foreign_key="report.id", index=True)
    #: ``report``, ``summary``, ``notice`` or ``account``.
    kind: str = Field(max_length=16)
    message_id: str = Field(unique=True, max_length=200)
    recipients: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    subject: str
    message: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status: str = Field(default="pending", max_length=10)
    attempts: int = 0
    not_before: datetime = _utc_column()
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    detail: str | None = None
    created_at: datetime = _utc_column()


class MailOptOut(SQLModel, table=True):
    """A recipient who switched off one kind of mail: ``schedule:ID`` (that report, by its
    one-click unsubscribe link) or a notification kind."""

    __tablename__ = "mail_optout"

    address: str = Field(primary_key=True, max_length=254)
    topic: str = Field(primary_key=True, max_length=40)
    created_at: datetime = _utc_column()


class Notice(SQLModel, table=True):
    """A notification condition as first seen for a campaign: sent once, when it first holds
    (or, for behind-pace, once it has held for long enough)."""

    kind: str = Field(primary_key=True, max_length=24)
    campaign_id: int = Field(primary_key=True)
    first_seen_at: datetime = _utc_column()
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    detail: str | None = None


class AudienceDay(SQLModel, table=True):
    """Requests per slot and site-local day by device class and country: what a forecast scales
    by targeting. Nothing here is about one reader."""

    __tablename__ = "audience_day"

    day: str = Field(primary_key=True, max_length=10)
    site_id: int = Field(primary_key=True)
    slot_id: int = Field(primary_key=True)
    device: str = Field(primary_key=True, max_length=16)
    country: str = Field(primary_key=True, max_length=2)
    requests: int = Field(default=0, sa_type=BigInteger)


class AudienceSample(SQLModel, table=True):
    """A small sample of one slot's recent page paths and keywords, for forecasts by path and
    keyword targeting: ``[[path, [keyword, ...]], ...]``."""

    __tablename__ = "audience_sample"

    site_id: int = Field(primary_key=True)
    slot_id: int = Field(primary_key=True)
    samples: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
