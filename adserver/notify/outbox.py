"""The outbox: every message is a row, claimed by one process and marked sent in the database.

Building a message and sending it are separate steps, so a crash between them loses nothing: the
row waits, ``pending``, for the next drain. A sender claims rows by moving them to ``sending``
with a deadline in one UPDATE whose condition is re-checked on each row, so two processes never
claim the same row; a claim whose deadline passed (its process died) is taken over. Each message
is marked ``sent`` the moment the server accepts it, so the one window SMTP leaves open (accepted,
then the process died before marking it) is one message wide, and the resend carries the same
Message-ID.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from adserver.core.models import Outbox, table
from adserver.notify.mail import SMTP_POLICY, Envelope, Mailer, Outcome

log = logging.getLogger(__name__)

OUTBOX = table(Outbox)
#: How long a claim holds before another process may take the message over.
CLAIM_SECONDS = 300
#: Rounds of temporary failure (each with the mailer's own retries) before giving up.
MAX_ROUNDS = 6
#: The wait before the next round after a temporary failure, doubled each round.
RETRY_AFTER = timedelta(minutes=5)


def enqueue(
    connection: Connection,
    message: EmailMessage,
    *,
    kind: str,
    now: datetime,
    report_id: int | None = None,
) -> int:
    """Queue ``message`` in the caller's transaction; returns the outbox id."""
    recipients = [a.strip() for a in str(message["To"]).split(",") if a.strip()]
    result = connection.execute(
        insert(OUTBOX)
        .values(
            report_id=report_id,
            kind=kind,
            message_id=str(message["Message-ID"]),
            recipients=recipients,
            subject=str(message["Subject"]),
            message=message.as_bytes(policy=SMTP_POLICY),
            status="pending",
            attempts=0,
            not_before=now,
            created_at=now,
        )
        .returning(OUTBOX.c.id)
    )
    return int(result.scalar_one())


@dataclass(frozen=True)
class DrainResult:
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    off: int = 0

    def __str__(self) -> str:
        return (
            f"sent {self.sent}, failed {self.failed}, deferred {self.deferred}, "
            f"archived with mail off {self.off}"
        )


def _claimable(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(OUTBOX.c.status == "pending", OUTBOX.c.not_before <= now),
        and_(OUTBOX.c.status == "sending", OUTBOX.c.claimed_until < now),
    )


def claim(
    engine: Engine,
    *,
    holder: str,
    now: datetime,
    limit: int = 200,
    report_id: int | None = None,
) -> list[tuple[int, int, bytes]]:
    """Claim up to ``limit`` due messages (of one report, if given) for ``holder``:
    (id, attempts, raw message) each."""
    condition = _claimable(now)
    if report_id is not None:
        condition = and_(condition, OUTBOX.c.report_id == report_id)
    with engine.begin() as connection:
        ids = select(OUTBOX.c.id).where(condition).order_by(OUTBOX.c.id).limit(limit)
        rows = connection.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id.in_(ids.scalar_subquery()), condition)
            .values(
                status="sending",
                claimed_by=holder,
                claimed_until=now + timedelta(seconds=CLAIM_SECONDS),
                attempts=OUTBOX.c.attempts + 1,
            )
            .returning(OUTBOX.c.id, OUTBOX.c.attempts, OUTBOX.c.message)
        ).all()
    return sorted((int(r.id), int(r.attempts), bytes(r.message)) for r in rows)


def drain(
    engine: Engine,
    mailer: Mailer,
    *,
    holder: str,
    now: datetime,
    limit: int = 200,
    report_id: int | None = None,
) -> DrainResult:
    """Send what is due (of one report, if given), batch by batch over one connection each,
    until nothing is claimable."""
    totals = DrainResult()
    while True:
        claimed = claim(engine, holder=holder, now=now, limit=limit, report_id=report_id)
        if not claimed:
            return totals
        result = _send(engine, mailer, claimed, holder=holder, now=now)
        totals = DrainResult(
            totals.sent + result.sent,
            totals.failed + result.failed,
            totals.deferred + result.deferred,
            totals.off + result.off,
        )
        if len(claimed) < limit:
            return totals


def _send(
    engine: Engine,
    mailer: Mailer,
    claimed: list[tuple[int, int, bytes]],
    *,
    holder: str,
    now: datetime,
) -> DrainResult:
    messages = [Envelope.of(raw) for _, _, raw in claimed]
    recorded: set[int] = set()

    def record(index: int, outcome: Outcome) -> None:
        outbox_id, rounds, _ = claimed[index]
        values: dict[str, object] = {"detail": outcome.detail[:1000] or None}
        if outcome.status == "sent":
            values.update(status="sent", sent_at=datetime.now(now.tzinfo))
        elif outcome.status == "off":
            values.update(status="off")
        elif outcome.status == "failed" or rounds >= MAX_ROUNDS:
            values.update(status="failed")
        else:
            values.update(status="pending", not_before=now + RETRY_AFTER * 2 ** (rounds - 1))
        with engine.begin() as connection:
            connection.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id == outbox_id, OUTBOX.c.claimed_by == holder)
                .values(claimed_by=None, claimed_until=None, **values)
            )
        recorded.add(index)

    outcomes = mailer.send(messages, on_settled=record)
    for index, outcome in enumerate(outcomes):
        if index not in recorded:
            record(index, outcome)
    counts = {
        status: sum(o.status == status for o in outcomes)
        for status in ("sent", "failed", "deferred", "off")
    }
    if counts["failed"] or counts["deferred"]:
        log.warning("outbox: %s", counts)
    return DrainResult(counts["sent"], counts["failed"], counts["deferred"], counts["off"])


def prune(engine: Engine, *, now: datetime, keep_days: int) -> int:
    """Forget messages settled (sent, refused, or archived with mail off) more than
    ``keep_days`` ago: each holds a whole rendered message, and its report stays archived."""
    with engine.begin() as connection:
        result = connection.execute(
            delete(OUTBOX).where(
                OUTBOX.c.status.in_(("sent", "failed", "off")),
                OUTBOX.c.created_at < now - timedelta(days=keep_days),
            )
        )
    return int(result.rowcount or 0)


def mail_status(connection: Connection) -> dict[str, int]:
    """How many messages are in each state, for the admin and the health page."""
    return {
        str(status): int(count)
        for status, count in connection.execute(
            select(OUTBOX.c.status, func.count()).group_by(OUTBOX.c.status)
        )
    }
