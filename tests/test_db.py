"""The schema: migrations build exactly what the models describe, and stale schemas are refused."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, select
from sqlmodel import SQLModel

from adserver.app import SchemaOutOfDate, create_app
from adserver.config import Settings
from adserver.core.db import make_engine, read_json, schema_state
from adserver.core.models import Site, table
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


def test_json_columns_read_what_the_standard_library_may_write() -> None:
    assert read_json('{"sizes": ["728x90", "fluid"], "weight": 3}') == {
        "sizes": ["728x90", "fluid"],
        "weight": 3,
    }
    # orjson refuses these; the standard library's writer produces them from such values.
    assert math.isnan(read_json("[NaN]")[0])
    assert read_json(f"[{2**63 - 1}, 0.1]") == [2**63 - 1, 0.1]
    assert read_json('["\\ud800"]') == ["\ud800"]


def test_a_row_holding_what_orjson_refuses_reads_back_as_written(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    sites = table(Site)
    odd = ["news.example", "\ud800.example"]
    with engine.begin() as connection:
        connection.execute(
            insert(sites).values(key="odd", name="Odd", domains=odd, timezone="UTC", currency="INR")
        )
    with engine.connect() as connection:
        assert connection.execute(select(sites.c.domains)).scalar_one() == odd
    engine.dispose()
