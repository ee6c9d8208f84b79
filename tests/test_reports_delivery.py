"""Exactly once on PostgreSQL: concurrent builders make one report per schedule and period,
concurrent senders send each message once, a crash between building and sending (or during
sending) loses nothing and repeats at most the one message, with its Message-ID; two scheduler
processes started after the hour send one late report, once. Also the command line's
deliberate resend, and a permanent refusal recorded and shown in the publisher's summary."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from adserver.cli import main
from adserver.config import Settings
from adserver.core.db import make_engine, migrate
from adserver.core.models import JobRun, Outbox, Report, table
from adserver.notify.mail import Mailer
from adserver.notify.outbox import CLAIM_SECONDS, drain
from adserver.notify.reports import run_due_reports
from tests.conftest import SECRET, postgres_database
from tests.processes import AdserverProcess, adserver_env, run_cli
from tests.report_world import add_schedule, seed, utc
from tests.smtp_server import SmtpServer, smtp_server
from tests.waiting import wait_for

OUTBOX = table(Outbox)
REPORTS = table(Report)


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_database() as url:
        migrate(url)
        yield url


@pytest.fixture
def pg(pg_url: str) -> Iterator[tuple[Engine, dict[str, int]]]:
    engine = make_engine(pg_url, pool_size=10)
    ids = seed(engine)
    yield engine, ids
    engine.dispose()


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    with smtp_server(tmp_path, security="starttls") as server:
        yield server


def _settings(url: str) -> Settings:
    return Settings(database_url=url, secret_key=SECRET, base_url="https://ads.example")


def _together(count: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` in ``count`` threads released at the same moment."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


def _reports(smtp: SmtpServer) -> list[Any]:
    """The report messages received (the scheduler also sends its notifications)."""
    return [m for m in smtp.recorder.messages if str(m["Message-ID"]).startswith("<report-")]


def _message_ids(smtp: SmtpServer) -> Counter[str]:
    return Counter(str(m["Message-ID"]) for m in smtp.recorder.messages)


@pytest.mark.postgres
def test_concurrent_builders_and_senders_make_and_send_each_once(
    pg: tuple[Engine, dict[str, int]], pg_url: str, smtp: SmtpServer
) -> None:
    engine, ids = pg
    recipients = [f"r{n}@acme.example" for n in range(12)]
    for advertiser in ("acme", "bolt"):
        add_schedule(
            engine, advertiser_id=ids[advertiser], period="week", weekday=0, hour=9,
            timezone="Asia/Kolkata", recipients=recipients,
        )  # fmt: skip
    at = utc(2026, 3, 16, 4)
    settings = _settings(pg_url)
    notes = _together(6, lambda i: run_due_reports(engine, settings, now=at))
    assert sum(n.built for n in notes) == 2  # type: ignore[attr-defined]
    with engine.connect() as connection:
        assert connection.execute(select(REPORTS.c.id)).all().__len__() == 2
        assert len(connection.execute(select(OUTBOX.c.id)).all()) == 24

    mailer = Mailer.from_url(smtp.url(), ssl_context=smtp.client_context)
    results = _together(4, lambda i: drain(engine, mailer, holder=f"sender-{i}", now=at, limit=5))
    assert sum(r.sent for r in results) == 24  # type: ignore[attr-defined]
    ids_sent = _message_ids(smtp)
    assert len(ids_sent) == 24 and set(ids_sent.values()) == {1}


@pytest.mark.postgres
def test_a_crash_between_building_and_sending_or_while_sending_repeats_at_most_one(
    pg: tuple[Engine, dict[str, int]], pg_url: str, smtp: SmtpServer
) -> None:
    engine, ids = pg
    add_schedule(
        engine, advertiser_id=ids["acme"], period="day", hour=6, timezone="UTC",
        recipients=["ann@acme.example", "bob@acme.example", "cat@acme.example"],
    )  # fmt: skip
    at = utc(2026, 3, 10, 7)
    # The builder commits its report and messages, then "dies" before the mail job runs.
    run_due_reports(engine, _settings(pg_url), now=at)
    # A sender claimed one message, handed it over, and died before marking it sent.
    mailer = Mailer.from_url(smtp.url(), ssl_context=smtp.client_context)
    with engine.begin() as connection:
        first = connection.execute(select(OUTBOX.c.id).order_by(OUTBOX.c.id)).scalars().first()
        connection.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id == first)
            .values(status="sending", claimed_by="dead:1", claimed_until=at + timedelta(minutes=5))
        )
    raw = bytes(connection_row(engine, first))
    mailer.send([_parse(raw)])  # the server did accept it

    # Restarted: the two never sent go at once; the claimed one waits out its claim.
    assert drain(engine, mailer, holder="restarted", now=at).sent == 2
    assert drain(engine, mailer, holder="restarted", now=at + timedelta(minutes=6)).sent == 1
    assert drain(engine, mailer, holder="restarted", now=at + timedelta(hours=1)).sent == 0
    counts = _message_ids(smtp)
    assert sorted(counts.values()) == [1, 1, 2]  # the one window: one message, same Message-ID
    with engine.connect() as connection:
        assert set(connection.execute(select(OUTBOX.c.status)).scalars()) == {"sent"}


def connection_row(engine: Engine, outbox_id: int | None) -> bytes:
    with engine.connect() as connection:
        return bytes(
            connection.execute(
                select(OUTBOX.c.message).where(OUTBOX.c.id == outbox_id)
            ).scalar_one()
        )


def _parse(raw: bytes) -> object:
    from email import policy
    from email.message import EmailMessage
    from email.parser import BytesParser

    return BytesParser(_class=EmailMessage, policy=policy.default).parsebytes(raw)


@pytest.mark.postgres
@pytest.mark.slow
def test_two_scheduler_processes_started_after_the_hour_send_it_once_late(
    pg: tuple[Engine, dict[str, int]], pg_url: str, tmp_path: Path
) -> None:
    engine, ids = pg
    now = datetime.now(UTC)
    # Due two hours ago: both schedulers were down at the hour.
    hour = (now - timedelta(hours=2)).hour
    add_schedule(
        engine, advertiser_id=ids["acme"], period="day", hour=hour, timezone="UTC",
        recipients=["ann@acme.example", "bob@acme.example"],
    )  # fmt: skip
    cert_dir = tmp_path / "certs"
    cert_dir.mkdir()
    with smtp_server(cert_dir, security="starttls") as smtp:
        env = adserver_env(
            pg_url,
            "https://ads.example",
            tmp_path / "spool",
            ADSERVER_SMTP_URL=smtp.url(),
            ADSERVER_MAIL_FROM="reports@ads.example",
            SSL_CERT_FILE=str(cert_dir / "smtp-cert.pem"),
        )
        schedulers = [
            AdserverProcess(["scheduler"], env, tmp_path / f"scheduler-{n}.log").start(
                wait_healthy=False
            )
            for n in range(2)
        ]
        try:
            wait_for(lambda: len(_reports(smtp)) >= 2, "the late report's two messages")

            def both_ran() -> bool:
                for process in schedulers:
                    process.assert_running()
                with engine.connect() as connection:
                    runs = connection.execute(
                        select(table(JobRun).c.job).where(
                            table(JobRun).c.job.in_(("reports", "mail")),
                            table(JobRun).c.finished_at.is_not(None),
                        )
                    ).all()
                return len(runs) >= 2 and all("running" in p.log() for p in schedulers)

            wait_for(both_ran, "both schedulers to have started and the jobs to have run")
        finally:
            for process in schedulers:
                process.stop()
        messages = _reports(smtp)
    assert sorted(str(m["To"]) for m in messages) == ["ann@acme.example", "bob@acme.example"]
    assert all(str(m["Subject"]).endswith("(late)") for m in messages)
    with engine.connect() as connection:
        (report,) = connection.execute(select(REPORTS)).all()
    assert report.late is True
    due_day = (now - timedelta(hours=2)).date()
    assert report.period_start == (due_day - timedelta(days=1)).isoformat()


@pytest.mark.postgres
def test_cli_report_archives_and_a_deliberate_resend_goes_again(
    pg: tuple[Engine, dict[str, int]],
    pg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``adserver report`` as an operator runs it (in this process: each command's output and
    exit code are what a shell would see)."""
    with smtp_server(tmp_path, security="plain") as smtp:
        monkeypatch.setenv("ADSERVER_DATABASE_URL", pg_url)
        monkeypatch.setenv("ADSERVER_SECRET_KEY", SECRET)
        monkeypatch.setenv("ADSERVER_BASE_URL", "https://ads.example")
        monkeypatch.setenv("ADSERVER_SMTP_URL", smtp.url(login=False))

        def run(*args: str) -> tuple[int, str, str]:
            code = main(["report", *args])
            out, err = capsys.readouterr()
            return code, out, err

        code, out, err = run("--advertiser", "Acme", "--period", "week", "--date", "2026-03-11")
        assert code == 0, err
        assert "archived report 1: Acme: 9 Mar to 15 Mar 2026" in out
        assert "https://ads.example/v1/reports/1.html" in out
        assert smtp.recorder.messages == []
        for _ in range(2):
            code, out, err = run("--advertiser", "Acme", "--date", "2026-03-11", "--send")
            assert code == 0, err
            assert "mail to acme@example.com: sent 1" in out
        assert [str(m["To"]) for m in smtp.recorder.messages] == ["acme@example.com"] * 2
        code, _, err = run("--advertiser", "Nobody")
        assert code == 2 and "no advertiser named 'Nobody'" in err
        code, _, err = run("--date", "11/03/2026")
        assert code == 2 and "--date must be YYYY-MM-DD" in err
        code, out, err = run("--period", "day", "--date", "2026-03-09")
        assert code == 0, err
        assert "summary: Mon 9 Mar 2026" in out
    # The command as a real process, once: it is installed and reads the same settings.
    env = adserver_env(pg_url, "https://ads.example", tmp_path / "spool")
    made = run_cli(env, "report", "--advertiser", "Bolt", "--date", "2026-03-11")
    assert made.returncode == 0, made.stderr
    assert "archived report 5: Bolt: 9 Mar to 15 Mar 2026" in made.stdout


@pytest.mark.postgres
def test_a_permanent_refusal_is_recorded_and_shown_in_the_summary(
    pg: tuple[Engine, dict[str, int]], pg_url: str, smtp: SmtpServer
) -> None:
    engine, ids = pg
    add_schedule(
        engine, advertiser_id=ids["acme"], period="day", hour=6, timezone="UTC",
        recipients=["gone@acme.example", "ann@acme.example"],
    )  # fmt: skip
    smtp.recorder.refuse_permanently = {"gone@acme.example"}
    mailer = Mailer.from_url(smtp.url(), ssl_context=smtp.client_context)
    at = utc(2026, 3, 10, 7)
    run_due_reports(engine, _settings(pg_url), now=at)
    result = drain(engine, mailer, holder="t", now=at)
    assert (result.sent, result.failed) == (1, 1)
    with engine.connect() as connection:
        failed = connection.execute(
            select(OUTBOX.c.recipients, OUTBOX.c.detail).where(OUTBOX.c.status == "failed")
        ).one()
    assert failed.recipients == ["gone@acme.example"] and "550" in failed.detail
    # The publisher's daily summary lists it.
    add_schedule(engine, advertiser_id=None, period="day", hour=8, timezone="UTC",
                 recipients=["owner@news.example"])  # fmt: skip
    run_due_reports(engine, _settings(pg_url), now=utc(2026, 3, 10, 8, 1))
    drain(engine, mailer, holder="t", now=utc(2026, 3, 10, 8, 1))
    summary = next(m for m in smtp.recorder.messages if m["To"] == "owner@news.example")
    text = summary.get_body(("plain",))
    assert text is not None
    assert "Mail that did not go out" in text.get_content()
    assert "to gone@acme.example: failed (recipients refused" in text.get_content()
    assert "550 5.1.1 no such mailbox" in text.get_content()


@pytest.mark.postgres
@pytest.mark.slow
def test_a_scheduler_restarted_after_a_crash_between_building_and_sending_sends_once(
    pg: tuple[Engine, dict[str, int]], pg_url: str, tmp_path: Path
) -> None:
    engine, ids = pg
    now = datetime.now(UTC)
    add_schedule(
        engine, advertiser_id=ids["acme"], period="day", hour=now.hour, timezone="UTC",
        recipients=["ann@acme.example", "bob@acme.example"],
    )  # fmt: skip
    # What a scheduler killed after building leaves: the report and its messages, unsent.
    run_due_reports(engine, _settings(pg_url), now=now)
    with engine.connect() as connection:
        assert set(connection.execute(select(OUTBOX.c.status)).scalars()) == {"pending"}
    with smtp_server(tmp_path, security="plain") as smtp:
        env = adserver_env(
            pg_url, "https://ads.example", tmp_path / "spool",
            ADSERVER_SMTP_URL=smtp.url(login=False),
        )  # fmt: skip
        restarted = AdserverProcess(["scheduler"], env, tmp_path / "scheduler.log")
        restarted.start(wait_healthy=False)
        try:
            wait_for(lambda: len(_reports(smtp)) >= 2, "the two messages")

            def reports_ran() -> bool:
                restarted.assert_running()
                with engine.connect() as connection:
                    return bool(
                        connection.execute(
                            select(table(JobRun).c.job).where(
                                table(JobRun).c.job == "reports",
                                table(JobRun).c.finished_at.is_not(None),
                            )
                        ).first()
                    )

            wait_for(reports_ran, "the restarted scheduler's reports job")
        finally:
            restarted.stop()
        received = [str(m["To"]) for m in _reports(smtp)]
    assert sorted(received) == ["ann@acme.example", "bob@acme.example"]
    with engine.connect() as connection:
        assert len(connection.execute(select(REPORTS.c.id)).all()) == 1
        assert set(connection.execute(select(OUTBOX.c.status)).scalars()) == {"sent"}


@pytest.mark.postgres
@pytest.mark.slow
def test_a_scheduler_killed_while_sending_a_report_loses_no_message_and_sends_none_twice(
    pg: tuple[Engine, dict[str, int]], pg_url: str, tmp_path: Path
) -> None:
    """SIGKILL the scheduler while the mail server holds a report message's DATA unanswered:
    the report stays built once, its messages stay claimed, and once the dead claim runs out
    the mail job's drain sends each recipient exactly one."""
    engine, ids = pg
    now = datetime.now(UTC)
    add_schedule(
        engine, advertiser_id=ids["acme"], period="day", hour=now.hour, timezone="UTC",
        recipients=["ann@acme.example", "bob@acme.example"],
    )  # fmt: skip
    with smtp_server(tmp_path, security="plain") as smtp:
        smtp.recorder.hold_reports = 1
        env = adserver_env(
            pg_url, "https://ads.example", tmp_path / "spool",
            ADSERVER_SMTP_URL=smtp.url(login=False),
        )  # fmt: skip
        scheduler = AdserverProcess(["scheduler"], env, tmp_path / "scheduler.log")
        scheduler.start(wait_healthy=False)
        try:

            def holding() -> bool:
                scheduler.assert_running()
                return smtp.recorder.held == 1

            wait_for(holding, "a report message held in the middle of its sending")
        finally:
            scheduler.kill()
        smtp.recorder.release.set()
        with engine.connect() as connection:
            assert len(connection.execute(select(REPORTS.c.id)).all()) == 1
            statuses = Counter(
                connection.execute(
                    select(OUTBOX.c.status).where(OUTBOX.c.report_id.is_not(None))
                ).scalars()
            )
        assert statuses["sending"] >= 1 and sum(statuses.values()) == 2, statuses
        later = datetime.now(UTC) + timedelta(seconds=CLAIM_SECONDS + 1)
        drain(engine, Mailer.from_url(smtp.url(login=False)), holder="after", now=later)
        received = sorted(str(m["To"]) for m in _reports(smtp))
    assert received == ["ann@acme.example", "bob@acme.example"]
    with engine.connect() as connection:
        assert len(connection.execute(select(REPORTS.c.id)).all()) == 1
        statuses = Counter(
            connection.execute(
                select(OUTBOX.c.status).where(OUTBOX.c.report_id.is_not(None))
            ).scalars()
        )
    assert statuses == Counter({"sent": 2})
