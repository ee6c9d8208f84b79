"""Database engine, SQLite pragmas, Alembic migrations and the shared inventory version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import ConnectionPoolEntry

from adserver.core.models import Meta, table
from adserver.core.resources import resource_dir

INVENTORY_VERSION = "inventory_version"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the pragmas SQLite needs to be a durable, concurrent event store, and a
    quick reader of JSON columns."""
    kwargs.setdefault("json_deserializer", read_json)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # A database host that drops packets must not hold beacons for minutes: fail fast and spool.
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 3}, **kwargs)


def read_json(text: str | bytes) -> Any:
    """A JSON column's value: a full rebuild reads tens of thousands of them (targetings,
    sizes, labels), and the standard library's reader was a sixth of its time. What orjson
    refuses and the standard library's writer may have written (NaN, a lone surrogate) is read
    as before. (orjson reads integers beyond 64 bits as floats; validation keeps every integer
    the columns hold within 31.)"""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _sqlite_pragmas(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: an acknowledged event survives power loss, not only kill -9; group commit pays it.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resource_dir("migrations")))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str) -> None:
    """Bring the schema at ``url`` up to the newest migration."""
    command.upgrade(alembic_config(url), "head")


def schema_state(engine: Engine) -> tuple[str | None, str]:
    """(revision in the database, newest revision we ship)."""
    script = ScriptDirectory.from_config(alembic_config(str(engine.url)))
    head = script.get_current_head()
    assert head is not None
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return current, head


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for other databases and in-memory SQLite."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == "sqlite://" or ":memory:" in url:
        return None
    return Path(url[len(prefix) :])


def insert_for(connection: Connection | Engine) -> Any:
    """The dialect's ``insert`` construct, which has ``on_conflict_do_update`` and
    ``on_conflict_do_nothing``: the one place that tells SQLite's upsert from PostgreSQL's."""
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert


def ping(connection: Connection) -> None:
    """A round trip to the database (health checks)."""
    connection.execute(text("SELECT 1")).scalar()


def bump_inventory_version(connection: Any) -> None:
    """Tell every process that deliverable campaigns changed; call inside the writing txn."""
    connection.execute(
        text("UPDATE meta SET value = value + 1 WHERE key = :k"), {"k": INVENTORY_VERSION}
    )


def inventory_version(connection: Any) -> int:
    row = connection.execute(
        text("SELECT value FROM meta WHERE key = :k"), {"k": INVENTORY_VERSION}
    ).first()
    return int(row[0]) if row else 0


INVENTORY_EDITS = "inventory_edits"
INVENTORY_PACED = "inventory_paced"
_BUMP_TWO = text(
    "INSERT INTO meta (key, value) VALUES (:v, 1), (:k, 1) "
    "ON CONFLICT (key) DO UPDATE SET value = meta.value + 1"
)


def bump_for_edit(connection: Any) -> None:
    """Like ``bump_inventory_version``, for a write the change history describes (the service
    layer's): a second counter tells a serving process that every bump since its snapshot has
    its entities named in the history, so it may re-read only those. Both in one statement
    (the version's row first, the order ``lock_inventory_counter`` relies on), written as text:
    SQLAlchemy compiles a multi-row upsert anew on every call."""
    connection.execute(_BUMP_TWO, {"v": INVENTORY_VERSION, "k": INVENTORY_EDITS})


def bump_for_pacing(connection: Any) -> None:
    """Like ``bump_for_edit``, for the pacing job's refresh of ``campaign_delivery``: its own
    counter tells a serving process that such a bump changed delivered figures only, so it may
    re-read only the campaigns whose figures differ from those it last read."""
    connection.execute(_BUMP_TWO, {"v": INVENTORY_VERSION, "k": INVENTORY_PACED})


class InventoryCounters(NamedTuple):
    #: Every bump of the inventory version.
    version: int
    #: Those by ``bump_for_edit``.
    edits: int
    #: Those by ``bump_for_pacing``.
    paced: int


def inventory_counters(connection: Any) -> InventoryCounters:
    """The inventory version and the bumps of it by edits and by pacing, read in one
    statement."""
    rows = dict(
        connection.execute(
            text("SELECT key, value FROM meta WHERE key IN (:v, :e, :p)"),
            {"v": INVENTORY_VERSION, "e": INVENTORY_EDITS, "p": INVENTORY_PACED},
        ).all()
    )
    return InventoryCounters(
        int(rows.get(INVENTORY_VERSION, 0)),
        int(rows.get(INVENTORY_EDITS, 0)),
        int(rows.get(INVENTORY_PACED, 0)),
    )


def lock_inventory_counter(connection: Any) -> None:
    """Hold the inventory version's row until the transaction ends (PostgreSQL; SQLite has one
    writer at a time anyway). The change history takes it before adding a change, so change
    ids are handed out in commit order and a process that has seen change N has seen all
    before it. The bump takes the same row first, so the two never wait on each other in
    opposite orders."""
    if connection.dialect.name == "sqlite":
        return  # one writer at a time, from its first write to its commit: ids follow commits
    meta = table(Meta)
    connection.execute(
        select(meta.c.value).where(meta.c.key == INVENTORY_VERSION).with_for_update()
    )
