"""The ``adserver`` command. Mistakes in arguments or settings exit 2 with a message."""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, select
from sqlmodel import Session
from starlette.applications import Starlette

from adserver.config import Settings, SettingsError
from adserver.core.db import make_engine, migrate, schema_state
from adserver.core.enums import ROLES
from adserver.core.models import Advertiser, table
from adserver.launcher import DEFAULT_SERVER, SERVERS
from adserver.services.tokens import create_api_token


class UsageError(Exception):
    """A mistake the user can fix; printed without a traceback, exit code 2."""


def app_from_env() -> Starlette:
    """The app for server processes (uvicorn workers import it by name)."""
    from adserver.app import create_app

    return create_app(Settings.from_env())


def demo_app_from_env() -> Starlette:
    """The app ``adserver demo`` serves: the same, with the demo pages mounted."""
    from adserver.app import create_app

    return create_app(Settings.from_env().with_changes(demo=True))


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (UsageError, SettingsError) as exc:
        print(f"adserver: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adserver", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the ad server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--server",
        choices=SERVERS,
        default=DEFAULT_SERVER,
        help=f"the HTTP server (default {DEFAULT_SERVER}; see docs/performance.md)",
    )
    serve.set_defaults(handler=cmd_serve)

    demo = commands.add_parser("demo", help="add demo data when the database has none, serve")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.set_defaults(handler=cmd_demo)

    commands.add_parser("migrate", help="bring the database schema up to date").set_defaults(
        handler=cmd_migrate
    )

    user = commands.add_parser("user", help="manage users").add_subparsers(
        required=True, metavar="ACTION"
    )
    user_add = user.add_parser("add", help="add a user")
    user_add.add_argument("email")
    user_add.add_argument("--role", required=True, choices=ROLES)
    user_add.add_argument("--advertiser", help="the advertiser an advertiser user belongs to")
    user_add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    user_add.set_defaults(handler=cmd_user_add)

    token = commands.add_parser("token", help="API tokens").add_subparsers(
        required=True, metavar="ACTION"
    )
    token_create = token.add_parser("create", help="create a token and print it once")
    token_create.add_argument("name")
    token_create.add_argument("--advertiser", help="limit the token to this advertiser's stats")
    token_create.set_defaults(handler=cmd_token_create)
    token.add_parser("list", help="list tokens (never their secrets)").set_defaults(
        handler=cmd_token_list
    )
    token_revoke = token.add_parser("revoke", help="revoke a token, at once in every process")
    token_revoke.add_argument("id", type=int)
    token_revoke.set_defaults(handler=cmd_token_revoke)

    backup = commands.add_parser(
        "backup", help="write a consistent copy of the database while it serves"
    )
    backup.add_argument("file", type=Path, help="the new backup file")
    backup.set_defaults(handler=cmd_backup)

    commands.add_parser("tally", help="roll new events into the statistics now").set_defaults(
        handler=cmd_tally
    )
    commands.add_parser(
        "scheduler", help="run only the scheduled jobs, until SIGTERM or Ctrl-C"
    ).set_defaults(handler=cmd_scheduler)

    report = commands.add_parser(
        "report", help="build and archive a report now; --send mails it (a deliberate resend)"
    )
    report.add_argument("--advertiser", help="the advertiser (default: the publisher's summary)")
    report.add_argument("--period", choices=("day", "week", "month"))
    report.add_argument(
        "--date", help="a day in the period, YYYY-MM-DD (default: the last complete period)"
    )
    report.add_argument("--send", action="store_true", help="mail it to its recipients now")
    report.set_defaults(handler=cmd_report)
    return parser


def _settings() -> Settings:
    return Settings.from_env()


@contextlib.contextmanager
def _database(settings: Settings) -> Iterator[Engine]:
    """An engine on an up-to-date schema, disposed of afterwards (no pooled connection left)."""
    engine = make_engine(settings.database_url)
    try:
        current, head = schema_state(engine)
        if current != head:
            raise UsageError(
                f"the database schema is at {current or 'nothing'}, this adserver needs {head}: "
                "run `adserver migrate` first"
            )
        yield engine
    finally:
        engine.dispose()


def _check_port(port: int) -> None:
    if not 0 < port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, not {port}")


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings()
    settings.require_secret()
    _check_port(args.port)
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    with _database(settings):
        pass
    _run_server(args.host, args.port, args.workers, args.server)
    return 0


def _run_server(
    host: str, port: int, workers: int, server: str = DEFAULT_SERVER, *, demo: bool = False
) -> None:
    from adserver.launcher import run

    factory = "adserver.cli:demo_app_from_env" if demo else "adserver.cli:app_from_env"
    run(factory, host=host, port=port, workers=workers, server=server)


def cmd_demo(args: argparse.Namespace) -> int:
    from adserver.demo.data import DEMO_LOGINS, add_demo_data
    from adserver.demo.history import DAYS, add_history

    _check_port(args.port)
    if not os.environ.get("ADSERVER_SECRET_KEY"):
        os.environ["ADSERVER_SECRET_KEY"] = secrets.token_urlsafe(32)
    if not os.environ.get("ADSERVER_BASE_URL"):
        os.environ["ADSERVER_BASE_URL"] = f"http://127.0.0.1:{args.port}"
    settings = _settings()
    engine = make_engine(settings.database_url)
    try:
        before, head = schema_state(engine)
        migrate(settings.database_url)
        info = add_demo_data(engine, base_url=settings.base_url)
        if info is not None:
            add_history(engine, now=datetime.now(UTC))
    finally:
        engine.dispose()
    base = settings.base_url
    print("adserver demo")
    print(
        f"  database: {settings.database_url}"
        + ("  (demo data added)" if info else "  (had data already; left as it was)")
    )
    print(
        f"  schema:   migrated from {before or 'nothing'} to {head}"
        if before != head
        else f"  schema:   up to date ({head})"
    )
    if info is not None:
        print(f"  history:  {DAYS} days of generated statistics, so every page has figures")
    print(f"  demo article: {base}/demo/")
    print(f"  the tag:      {base}/tag.js")
    print(f"  health:       {base}/healthz")
    for login in info.logins if info is not None else DEMO_LOGINS:
        print(f"  login: {login.email} / {login.password} ({login.role})")
    print("  Open the demo article: three slots fill with ads; their impressions, views and")
    print("  clicks are recorded. Stop with Ctrl-C.")
    sys.stdout.flush()
    # One process, in the foreground: uvicorn, whose log says when shutdown has completed.
    _run_server(args.host, args.port, 1, "uvicorn", demo=True)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings()
    migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    current, _ = schema_state(engine)
    engine.dispose()
    print(f"database schema is at revision {current}")
    return 0


def _advertiser_id(session: Session, name: str | None) -> int | None:
    if name is None:
        return None
    advertiser = session.scalars(select(Advertiser).where(table(Advertiser).c.name == name)).first()
    if advertiser is None:
        raise UsageError(f"no advertiser named {name!r}")
    assert advertiser.id is not None
    return advertiser.id


def cmd_user_add(args: argparse.Namespace) -> int:
    from adserver.accounts.links import link_url
    from adserver.core.models import utcnow
    from adserver.services import users
    from adserver.services.common import SYSTEM, parse
    from adserver.services.errors import ServiceError

    if args.role == "advertiser" and not args.advertiser:
        raise UsageError("an advertiser user needs --advertiser NAME")
    if args.role == "admin" and args.advertiser:
        raise UsageError("an admin user belongs to no advertiser; leave out --advertiser")
    if "@" not in args.email:
        raise UsageError(f"{args.email!r} is not an e-mail address")
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
    settings = _settings()
    with _database(settings) as engine, Session(engine) as session:
        fields: dict[str, object] = {"email": args.email, "role": args.role}
        if args.advertiser:
            fields["advertiser"] = _advertiser_id(session, args.advertiser)
        now = utcnow()
        try:
            data = parse(users.UserCreate, fields)
            user = users.create_user(
                session.connection(), data=data, actor=SYSTEM, now=now, password=password
            )
            link = None
            if password is None:
                link = users.issue_link(
                    session.connection(), user_id=user.id, purpose="invite", now=now
                )
        except ServiceError as exc:
            raise UsageError(exc.message) from None
        session.commit()
    print(f"added {args.role} {user.email}")
    if link is not None:
        print("no password yet: open this single-use link within 7 days to set one:")
        print(link_url(settings.base_url, "invite", link))
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    with _database(_settings()) as engine, Session(engine) as session:
        advertiser_id = _advertiser_id(session, args.advertiser)
        token = create_api_token(session.connection(), name=args.name, advertiser_id=advertiser_id)
        session.commit()
    scope = f"advertiser {args.advertiser}" if args.advertiser else "admin"
    print(f"created {scope} token {args.name!r}; it is shown once, keep it safe:")
    print(token)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    from adserver.services.paging import MAX_LIMIT
    from adserver.services.tokens import TokenQuery, list_tokens

    def stamp(value: object) -> str:
        return "-" if value is None else str(value)[:16].replace("T", " ")

    rows: list[tuple[str, ...]] = []
    with _database(_settings()) as engine, engine.connect() as connection:
        advertisers = table(Advertiser)
        found = connection.execute(select(advertisers.c.id, advertisers.c.name))
        names = {row.id: row.name for row in found}
        after = None
        while True:
            page = list_tokens(connection, query=TokenQuery(limit=MAX_LIMIT, after=after))
            for token in page.items:
                scope = "admin" if token.advertiser is None else names.get(token.advertiser, "?")
                status = "active" if token.active else f"revoked {stamp(token.revoked_at)}"
                rows.append(
                    (
                        str(token.id),
                        token.name,
                        scope,
                        stamp(token.created_at),
                        stamp(token.last_used_at),
                        status,
                    )
                )
            if page.next_after is None:
                break
            after = int(page.next_after)
    header = ("ID", "NAME", "SCOPE", "CREATED (UTC)", "LAST USED", "STATUS")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from adserver.core.models import utcnow
    from adserver.services.common import SYSTEM
    from adserver.services.errors import ServiceError
    from adserver.services.tokens import revoke_token

    with _database(_settings()) as engine, engine.begin() as connection:
        try:
            revoke_token(
                connection, token_id=args.id, expected_version=None, actor=SYSTEM, now=utcnow()
            )
        except ServiceError as exc:
            raise UsageError(f"token {args.id}: {exc.message}") from None
    print(f"revoked token {args.id}; every server refuses it from now on")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from adserver.core.backup import BackupError, backup

    settings = _settings()
    with _database(settings):
        pass
    try:
        print(backup(settings.database_url, args.file))
    except BackupError as exc:
        raise UsageError(str(exc)) from None
    return 0


def cmd_tally(args: argparse.Namespace) -> int:
    from adserver.reporting.tally import run_tally

    with _database(_settings()) as engine:
        count = run_tally(engine)
    print(f"rolled up {count} events")
    return 0


def cmd_scheduler(args: argparse.Namespace) -> int:
    from adserver.jobs.registry import run_until_signalled

    settings = _settings()
    with _database(settings) as engine:
        run_until_signalled(engine, settings)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from datetime import UTC, date, datetime

    from adserver.notify.jobs import holder
    from adserver.notify.mail import MailConfigError, Mailer
    from adserver.notify.outbox import drain
    from adserver.notify.reports import report_on_demand

    day = None
    if args.date is not None:
        try:
            day = date.fromisoformat(args.date)
        except ValueError:
            raise UsageError(f"--date must be YYYY-MM-DD, not {args.date!r}") from None
    settings = _settings()
    try:
        mailer = Mailer.from_url(settings.smtp_url)
    except MailConfigError as exc:
        raise UsageError(str(exc)) from None
    now = datetime.now(UTC)
    with _database(settings) as engine:
        try:
            done = report_on_demand(
                engine,
                settings,
                advertiser=args.advertiser,
                period_kind=args.period,
                day=day,
                send=args.send,
                now=now,
            )
        except LookupError as exc:
            raise UsageError(str(exc)) from None
        made = done.made
        print(f"archived report {made.id}: {made.title}")
        print(f"  html: {settings.base_url}/v1/reports/{made.id}.html")
        print(f"  csv:  {settings.base_url}/v1/reports/{made.id}.csv")
        if args.send:
            if not done.recipients:
                raise UsageError(
                    "no recipients: give the schedule recipients, or the advertiser an e-mail"
                )
            result = drain(engine, mailer, holder=holder(), now=now, report_id=made.id)
            print(f"  mail to {', '.join(done.recipients)}: {result}")
            if result.failed or result.deferred:
                return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
