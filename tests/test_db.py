"""The schema: migrations build exactly what the models describe, and stale schemas are refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from adserver.app import SchemaOutOfDate, create_app
from adserver.config import Settings
from adserver.core.db import make_engine, schema_state
from tests.conftest import SECRET


def test_migrations_match_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    engine.dispose()
    assert differences == []


def test_a_migrated_database_is_at_the_newest_revision(database_url: str) -> None:
    engine = make_engine(database_url)
    current, head = schema_state(engine)
    engine.dispose()
    assert current == head


def test_sqlite_runs_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as connection:
        mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
        sync = connection.exec_driver_sql("PRAGMA synchronous").scalar()
    engine.dispose()
    assert (mode, sync) == ("wal", 2)


def test_the_server_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}", secret_key=SECRET)
    app = create_app(settings)

    async def start() -> None:
        async with app.router.lifespan_context(app):
            pass

    with pytest.raises(SchemaOutOfDate, match="run `adserver migrate` first"):
        asyncio.run(start())
