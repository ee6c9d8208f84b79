"""Notifications: a campaign started delivering, reached its goal, ended (and why), fell behind
pace for two hours, or has no creative that fits any of its slots.

Each is sent once per campaign, when its condition first holds: the ``notice`` row's primary key
(kind, campaign) is the claim, taken in the transaction that queues the messages, so several
scheduler processes cannot both send it. Behind-pace is first noted, then sent once it has held
for ``BEHIND_FOR``; the note is dropped if the campaign catches up before. Every recipient can
switch each kind off (``notice:KIND``) with the link in the mail.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, and_, delete, select, update

from adserver.config import Settings
from adserver.core.db import insert_for
from adserver.core.models import Advertiser, Notice, User, table
from adserver.notify.mail import compose
from adserver.notify.optout import opted_out, unsubscribe_token
from adserver.notify.outbox import enqueue
from adserver.notify.reports import recipients_for
from adserver.reporting.report_pacing import CampaignStanding, campaign_standings
from adserver.reporting.report_render import number, percent

NOTICES = table(Notice)
#: Kinds the advertiser hears about too; the others are the publisher's to fix.
FOR_ADVERTISER = frozenset({"started", "goal_reached", "ended"})
#: How long a campaign must stay behind pace before anyone is told.
BEHIND_FOR = timedelta(hours=2)
#: Ends further back than this are history, not news (a first run on an old database).
RECENT = timedelta(days=7)


@dataclass(frozen=True)
class Notification:
    kind: str
    campaign: CampaignStanding
    subject: str
    text: str


def _describe(kind: str, c: CampaignStanding, now: datetime) -> Notification | None:
    name = c.name
    if kind == "started":
        return Notification(kind, c, f"{name} has started delivering", (
            f"Campaign {name} has started delivering: {number(c.delivered)} "
            f"{'clicks' if c.goal_kind == 'clicks' else 'impressions'} so far."
        ))  # fmt: skip
    if kind == "goal_reached":
        return Notification(kind, c, f"{name} reached its goal", (
            f"Campaign {name} reached its goal of {number(c.goal_total)} "
            f"{'clicks' if c.goal_kind == 'clicks' else 'impressions'} "
            f"({number(c.delivered)} delivered) and has stopped delivering."
        ))  # fmt: skip
    if kind == "ended":
        why = "its budget is spent" if c.budget_spent else "its end date has passed"
        return Notification(kind, c, f"{name} has ended", f"Campaign {name} has ended: {why}.")
    if kind == "behind_pace":
        return Notification(kind, c, f"{name} is behind pace", (
            f"Campaign {name} has been behind pace for {BEHIND_FOR.seconds // 3600} hours: "
            f"{number(c.delivered)} of {number(c.goal_total)} delivered, "
            f"{percent(c.pace, 0)} of what even delivery would have reached by now"
            + (f", with {c.days_left} days left." if c.days_left is not None else ".")
        ))  # fmt: skip
    if kind == "no_fit":
        return Notification(kind, c, f"{name} cannot deliver: no creative fits", (
            f"Campaign {name} is active but none of its active creatives fits any of its "
            "slots' sizes, so it delivers nothing. Add a creative of a slot's size, or assign "
            "a slot that takes one of its creatives."
        ))  # fmt: skip
    return None


def _conditions(c: CampaignStanding, now: datetime, margin: float) -> list[str]:
    """The kinds whose condition holds for ``c`` now."""
    holds = []
    live = c.status == "active" and c.started(now) and not c.ended(now)
    if live and (c.delivered > 0 or c.spend_nanos > 0):
        holds.append("started")
    if c.goal_reached:
        holds.append("goal_reached")
    elif c.budget_spent or (c.ended(now) and _recent_end(c, now)):
        holds.append("ended")
    if live and not c.goal_reached and not c.budget_spent:
        if c.pace is not None and c.pace < 1 - margin:
            holds.append("behind_pace")
        if not c.fits:
            holds.append("no_fit")
    return holds


def _recent_end(c: CampaignStanding, now: datetime) -> bool:
    assert c.ends_at is not None
    return now.astimezone(c.zone).replace(tzinfo=None) - c.ends_at <= RECENT


def run_notices(engine: Engine, settings: Settings, *, now: datetime) -> str:
    """The ``notices`` job: note each condition as it first holds and queue its messages."""
    with engine.connect() as connection:
        standings = [
            s for s in campaign_standings(connection, now=now) if s.status in ("active", "paused")
        ]
        known = {(str(r.kind), int(r.campaign_id)): r for r in connection.execute(select(NOTICES))}
    queued = 0
    for campaign in standings:
        holds = _conditions(campaign, now, settings.pace_margin)
        for kind in holds:
            row = known.get((kind, campaign.id))
            if row is not None and row.sent_at is not None:
                continue
            with engine.begin() as connection:
                queued += _notify(connection, settings, kind, campaign, row, now)
        pending = known.get(("behind_pace", campaign.id))
        if "behind_pace" not in holds and pending is not None and pending.sent_at is None:
            with engine.begin() as connection:  # caught up before anyone was told
                connection.execute(
                    delete(NOTICES).where(
                        NOTICES.c.kind == "behind_pace",
                        NOTICES.c.campaign_id == campaign.id,
                        NOTICES.c.sent_at.is_(None),
                    )
                )
    return f"queued {queued} notification messages"


def _notify(
    connection: Connection,
    settings: Settings,
    kind: str,
    campaign: CampaignStanding,
    row: Any | None,
    now: datetime,
) -> int:
    """Claim (kind, campaign) and queue its messages; 0 when another process has it, or when
    behind-pace has not held long enough yet."""
    if kind == "behind_pace":
        if row is None:
            connection.execute(
                insert_for(connection)(NOTICES)
                .values(kind=kind, campaign_id=campaign.id, first_seen_at=now)
                .on_conflict_do_nothing()
            )
            return 0
        if now - row.first_seen_at < BEHIND_FOR:
            return 0
        claimed = connection.execute(
            update(NOTICES)
            .where(
                and_(
                    NOTICES.c.kind == kind,
                    NOTICES.c.campaign_id == campaign.id,
                    NOTICES.c.sent_at.is_(None),
                )
            )
            .values(sent_at=now)
            .returning(NOTICES.c.kind)
        ).first()
    else:
        claimed = connection.execute(
            insert_for(connection)(NOTICES)
            .values(kind=kind, campaign_id=campaign.id, first_seen_at=now, sent_at=now)
            .on_conflict_do_nothing()
            .returning(NOTICES.c.kind)
        ).first()
        if kind == "goal_reached" and claimed is not None:
            # Reaching the goal ends the campaign: the "ended" notice would say it again.
            connection.execute(
                insert_for(connection)(NOTICES)
                .values(kind="ended", campaign_id=campaign.id, first_seen_at=now, sent_at=now)
                .on_conflict_do_nothing()
            )
    if claimed is None:
        return 0
    notification = _describe(kind, campaign, now)
    assert notification is not None
    recipients = recipients_for(connection, advertiser_id=None, listed=[])
    if kind in FOR_ADVERTISER:
        recipients += _advertiser_addresses(connection, campaign.advertiser_id)
    topic = f"notice:{kind}"
    skip = opted_out(connection, topic, recipients)
    queued = 0
    for address in dict.fromkeys(recipients):
        if address.lower() in skip:
            continue
        enqueue(
            connection,
            _message(settings, notification, address, topic),
            kind="notice",
            now=now,
        )
        queued += 1
    return queued


def _advertiser_addresses(connection: Connection, advertiser_id: int) -> list[str]:
    advertisers, users = table(Advertiser), table(User)
    email = connection.execute(
        select(advertisers.c.email).where(advertisers.c.id == advertiser_id)
    ).scalar()
    people = connection.execute(
        select(users.c.email).where(
            users.c.advertiser_id == advertiser_id, users.c.active.is_(True)
        )
    ).scalars()
    return [str(a) for a in [email, *people] if a]


def _message(
    settings: Settings, notification: Notification, address: str, topic: str
) -> EmailMessage:
    token = unsubscribe_token(settings.secret_key, address, topic)
    unsubscribe = f"{settings.base_url}/v1/unsubscribe/{token}"
    label = notification.kind.replace("_", " ")
    text = (
        f"{notification.text}\n\n"
        f"Open the admin or your dashboard: {settings.base_url}/\n\n"
        f"Stop these notifications ({label}) for {address}: {unsubscribe}\n"
    )
    digest = hashlib.sha256(f"{notification.kind}:{notification.campaign.id}:{address}".encode())
    domain = urlsplit(settings.base_url).hostname or "localhost"
    return compose(
        sender=settings.mail_from,
        to=[address],
        subject=notification.subject,
        text=text,
        headers={
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        message_id=f"<notice-{digest.hexdigest()[:24]}@{domain}>",
    )
