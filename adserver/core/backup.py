"""Backups of a live database: consistent copies taken while the server keeps serving.

SQLite: the online backup API copies the database page by page inside read transactions, so
the copy is one consistent state even while event writers commit (WAL mode lets them go on).
PostgreSQL: ``pg_dump`` takes one snapshot in a repeatable-read transaction; it runs as its
own program so its format is the one ``pg_restore`` reads.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from adserver.core.db import sqlite_path


class BackupError(RuntimeError):
    """The backup could not be made; the message says why and what to do."""


def backup(database_url: str, target: Path) -> str:
    """Write a consistent copy of the database at ``database_url`` to ``target``; returns a
    one-line description of what was written."""
    if target.exists():
        raise BackupError(f"{target} exists already; choose a new file name")
    source = sqlite_path(database_url)
    if source is not None:
        return _backup_sqlite(source, target)
    if make_url(database_url).get_backend_name() == "postgresql":
        return _backup_postgres(database_url, target)
    raise BackupError(f"cannot back up {database_url!r}: only SQLite files and PostgreSQL")


def _backup_sqlite(source: Path, target: Path) -> str:
    if not source.exists():
        raise BackupError(f"no database file at {source}")
    with sqlite3.connect(source) as live, sqlite3.connect(target) as copy:
        # A few pages at a time, so the writers wait for a step at most, never the whole copy.
        live.backup(copy, pages=1024)
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file to move around
    return f"SQLite copy of {source} written to {target}"


def _backup_postgres(database_url: str, target: Path) -> str:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise BackupError("pg_dump is not installed (Debian: apt-get install postgresql-client)")
    url = make_url(database_url).set(drivername="postgresql")
    done = subprocess.run(
        [
            pg_dump,
            "--format=custom",
            "--no-owner",
            f"--file={target}",
            f"--dbname={url.render_as_string(hide_password=False)}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        target.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {done.stderr.strip()}")
    return f"PostgreSQL dump (pg_restore format) written to {target}"
