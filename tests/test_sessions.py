"""Server-side sessions and the login throttle, against both databases."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text

from adserver.accounts import links, throttle
from adserver.accounts.housekeeping import prune_accounts
from adserver.accounts.login import attempt_login
from adserver.accounts.sessions import (
    SessionPolicy,
    end_user_sessions,
    prune_sessions,
    session_user,
    start_session,
)
from tests.accounts_helpers import PASSWORD, add_user

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
POLICY = SessionPolicy(idle=timedelta(hours=2), absolute=timedelta(hours=12))


def test_a_session_is_stored_as_a_hash_and_opens_for_its_user(engine: Engine) -> None:
    user_id = add_user(engine, "ops@example.com")
    with engine.begin() as connection:
        key = start_session(connection, user_id=user_id, now=NOW)
        stored = connection.execute(text("SELECT id FROM user_session")).scalar_one()
        assert stored == hashlib.sha256(key.encode()).hexdigest() and key not in stored
        user = session_user(connection, key=key, now=NOW, policy=POLICY)
        assert user is not None and user.user_id == user_id and user.home == "/admin"
        assert user.principal().is_admin and user.principal().user_id == user_id
        assert session_user(connection, key=stored, now=NOW, policy=POLICY) is None


def test_idle_and_absolute_expiry(engine: Engine) -> None:
    user_id = add_user(engine, "ops@example.com")
    with engine.begin() as connection:
        idle = start_session(connection, user_id=user_id, now=NOW)
        assert session_user(connection, key=idle, now=NOW + timedelta(hours=1), policy=POLICY)
        # Each request within the idle time keeps it alive...
        later = NOW + timedelta(hours=2, minutes=59)
        assert session_user(connection, key=idle, now=later, policy=POLICY)
        # ...until nothing is asked for longer than the idle time; then it is gone for good.
        gone = later + timedelta(hours=2, seconds=1)
        assert session_user(connection, key=idle, now=gone, policy=POLICY) is None
        assert session_user(connection, key=idle, now=later, policy=POLICY) is None

        busy = start_session(connection, user_id=user_id, now=NOW)
        at = NOW
        while at < NOW + timedelta(hours=11, minutes=30):
            at += timedelta(minutes=30)
            assert session_user(connection, key=busy, now=at, policy=POLICY)
        end = NOW + timedelta(hours=12, minutes=1)
        assert session_user(connection, key=busy, now=end, policy=POLICY) is None


def test_a_disabled_user_and_ended_sessions_open_nothing(engine: Engine) -> None:
    ops = add_user(engine, "ops@example.com")
    buyer = add_user(engine, "buyer@acme.test", role="advertiser", advertiser="Acme")
    with engine.begin() as connection:
        keys = [start_session(connection, user_id=ops, now=NOW) for _ in range(3)]
        other = start_session(connection, user_id=buyer, now=NOW)
        principal = session_user(connection, key=other, now=NOW, policy=POLICY)
        assert principal is not None and not principal.principal().is_admin
        assert end_user_sessions(connection, user_id=ops) == 3
        assert all(session_user(connection, key=k, now=NOW, policy=POLICY) is None for k in keys)
        connection.execute(text("UPDATE app_user SET active = false WHERE id = :id"), {"id": buyer})
        assert session_user(connection, key=other, now=NOW, policy=POLICY) is None
        assert connection.execute(text("SELECT count(*) FROM user_session")).scalar_one() == 0


def test_prune_removes_only_expired_sessions(engine: Engine) -> None:
    user_id = add_user(engine, "ops@example.com")
    with engine.begin() as connection:
        start_session(connection, user_id=user_id, now=NOW - timedelta(hours=3))
        live = start_session(connection, user_id=user_id, now=NOW)
        assert prune_sessions(connection, now=NOW, policy=POLICY) == 1
        assert session_user(connection, key=live, now=NOW, policy=POLICY)


def test_a_stranger_slows_an_account_but_never_locks_it(engine: Engine) -> None:
    add_user(engine, "ops@example.com")
    with engine.begin() as connection:
        for second in range(5):
            outcome = attempt_login(
                connection,
                email="ops@example.com",
                password="guess",
                address="203.0.113.9",
                now=NOW + timedelta(seconds=second),
            )
            assert outcome.user is None and not outcome.refused_for
        later = NOW + timedelta(seconds=10)
        refused = attempt_login(
            connection, email="ops@example.com", password=PASSWORD, address="203.0.113.9", now=later
        )
        assert refused.user is None and 50 <= refused.refused_for <= 60
        owner = attempt_login(
            connection,
            email="OPS@example.com",
            password=PASSWORD,
            address="198.51.100.4",
            now=later,
        )
        assert owner.user is not None and owner.delay == throttle.delay_for(5) > 0
        # A minute after its first failures the stranger's address may try again.
        again = NOW + timedelta(seconds=61)
        verdict = throttle.verdict(
            connection, address="203.0.113.9", email="ops@example.com", now=int(again.timestamp())
        )
        assert verdict.refused_for == 0


def test_the_slow_down_grows_and_is_capped() -> None:
    delays = [throttle.delay_for(n) for n in range(12)]
    assert delays[:3] == [0, 0, 0] and delays[3] == 0.25
    assert delays == sorted(delays) and max(delays) == throttle.MAX_DELAY


def test_the_hourly_job_prunes_what_no_longer_opens_anything(engine: Engine) -> None:
    user_id = add_user(engine, "ops@example.com")
    with engine.begin() as connection:
        start_session(connection, user_id=user_id, now=NOW - timedelta(hours=13))
        live = start_session(connection, user_id=user_id, now=NOW)
        links.issue_link(connection, user_id=user_id, purpose="reset", now=NOW - timedelta(hours=2))
        fresh = links.issue_link(connection, user_id=user_id, purpose="invite", now=NOW)
        throttle.record_failure(connection, address="a", email="x", now=int(NOW.timestamp()))
        throttle.record_failure(connection, address="a", email="x", now=int(NOW.timestamp()) - 7200)
    assert prune_accounts(engine, now=NOW, policy=POLICY) == (
        "pruned 1 sessions, 1 links and 1 login failures"
    )
    with engine.begin() as connection:
        assert session_user(connection, key=live, now=NOW, policy=POLICY)
        assert links.link_user(connection, token=fresh, purpose="invite", now=NOW) == user_id
