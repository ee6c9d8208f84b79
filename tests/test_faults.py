"""Faults in storing events: whatever stops the database taking them, the spool does; when
nothing can, readers hear 503 (a click still lands) and /healthz takes the node out. And a tally
killed mid-way counts nothing twice and loses nothing.

As root, permissions stop nothing, so the faults are made the way root cannot ignore them: a
directory where the writer's lock file must go, a spool folder under a plain file, a full file
system (a small tmpfs, mounted for the test) and a file-size limit. The unwritable folders
themselves are shown on a server process that runs as an unprivileged user, as the systemd unit
runs it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pwd
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from adserver.core.db import make_engine, migrate
from adserver.reporting.tally import run_tally
from adserver.tracking.events import store
from adserver.tracking.spool import Spool
from tests.conftest import (
    BROWSER_UA,
    OPS,
    LiveServer,
    bound_socket,
    make_settings,
    start_server,
)
from tests.processes import AdserverProcess, adserver_env
from tests.records import event
from tests.seed import LANDING, three_slot_site
from tests.waiting import wait_for


@contextlib.contextmanager
def serving(database: Path, spool_dir: Path) -> Iterator[LiveServer]:
    url = f"sqlite:///{database}"
    sock = bound_socket()
    live = start_server(make_settings(url, sock.getsockname()[1], spool_dir), sock)
    try:
        yield live
    finally:
        live.stop()
        sock.close()


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return seeded_database(tmp_path)


def seeded_database(home: Path) -> Path:
    """A migrated SQLite database with the three-slot site, in its own folder ``home/db``."""
    path = home / "db" / "adserver.db"
    path.parent.mkdir()
    migrate(f"sqlite:///{path}")
    engine = make_engine(f"sqlite:///{path}")
    three_slot_site(engine)
    engine.dispose()
    return path


def decisions(client: httpx.Client, n: int) -> list[dict[str, str]]:
    found = []
    for _ in range(n):
        answer = client.get("/v1/decide", params={"site": "news", "slots": "top"})
        found.append(answer.json()["decisions"]["top"])
    return found


def stored_events(database: Path) -> int:
    with contextlib.closing(sqlite3.connect(database)) as connection:
        return int(connection.execute("SELECT count(*) FROM event").fetchone()[0])


def health(client: httpx.Client, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    answer = client.get("/healthz", **kwargs)
    return answer.status_code, answer.json()


def block_lock_file(database: Path) -> Path:
    """A directory where the event writer's lock file goes: every group fails to store."""
    lock = Path(f"{database}-events.lock")
    lock.unlink(missing_ok=True)
    lock.mkdir()
    return lock


def test_a_writer_that_cannot_store_spools_and_health_says_degraded(
    database: Path, tmp_path: Path
) -> None:
    lock = block_lock_file(database)
    with serving(database, tmp_path / "spool") as live, live.client() as client:
        found = decisions(client, 6)
        for decision in found:
            assert client.post(decision["impression_url"]).status_code == 204
        status, body = health(client, headers=OPS)
        assert status == 200 and body["status"] == "degraded"
        assert body["database"] == "ok"  # it answers reads; storing is what fails
        assert body["writer"]["stored_in"] == "spool"
        assert body["writer"]["database_failures"] >= 1
        assert "IsADirectoryError" in body["writer"]["last_error"]
        assert body["spool_depth"] == 6 and body["spool_age_seconds"] >= 0
        assert stored_events(database) == 0
        # Anyone sees the status; only a token sees the details.
        assert health(client) == (200, {"status": "degraded"})
        lock.rmdir()
        wait_for(lambda: health(client, headers=OPS)[1]["spool_depth"] == 0, "the replay")
        assert health(client, headers=OPS)[1]["status"] == "ok"
        assert stored_events(database) == 6


def test_when_nothing_can_store_readers_hear_503_and_clicks_still_land(
    database: Path, tmp_path: Path
) -> None:
    block_lock_file(database)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the spool folder should be")
    with serving(database, blocker / "spool") as live, live.client() as client:
        found = decisions(client, 2)
        beacon = client.post(found[0]["impression_url"])
        assert beacon.status_code == 503 and "cannot be stored" in beacon.json()["error"]
        click = client.get(found[1]["click_url"])
        assert click.status_code == 302 and click.headers["location"] == LANDING
        status, body = health(client, headers=OPS)
        assert status == 503 and body["status"] == "unavailable"
        assert body["writer"]["stored_in"] == "nowhere" and body["writer"]["spool_failures"] >= 1
        assert health(client)[0] == 503
        # Decisions need no storage: the node still answers them while it drains.
        assert client.get("/v1/decide", params={"site": "news", "slots": "top"}).status_code == 200
    assert stored_events(database) == 0


NOBODY = "nobody"


def unprivileged() -> list[str]:
    """The command prefix that makes file permissions bind the server: as root, it drops to
    ``nobody`` (root writes into any folder whatever its mode); as anyone else, none."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is needed to run the server as an unprivileged user")
    return ["setpriv", f"--reuid={NOBODY}", "--regid=nogroup", "--clear-groups"]


def give_to_server(path: Path) -> None:
    """Make ``path`` and everything under it the server's, as the deployment's chown does."""
    if os.geteuid() != 0:
        return
    user = pwd.getpwnam(NOBODY)
    for item in [path, *path.rglob("*")]:
        os.chown(item, user.pw_uid, user.pw_gid)


@pytest.fixture
def server_home() -> Iterator[Path]:
    """A folder the unprivileged server can reach (pytest's temp folders are root's alone),
    holding the seeded database in ``db/``, which the server owns."""
    with tempfile.TemporaryDirectory(prefix="adserver-faults-") as name:
        home = Path(name)
        home.chmod(0o755)
        database = seeded_database(home)
        give_to_server(database.parent)
        try:
            yield home
        finally:
            for folder in home.iterdir():  # writable again, so the folder can be removed
                if folder.is_dir():
                    folder.chmod(0o755)


@contextlib.contextmanager
def serving_unprivileged(
    database: Path, spool_dir: Path, log: Path
) -> Iterator[tuple[AdserverProcess, httpx.Client]]:
    """``adserver serve`` as a process of its own, under the user permissions apply to."""
    server = AdserverProcess(["serve", "--port", "{port}"], {}, log, prefix=unprivileged())
    server.env = adserver_env(f"sqlite:///{database}", server.url, spool_dir)
    server.start()
    try:
        with httpx.Client(base_url=server.url, headers={"User-Agent": BROWSER_UA}) as client:
            yield server, client
    finally:
        server.stop()


def test_unwritable_database_and_spool_folders_under_a_running_server(
    server_home: Path, tmp_path: Path
) -> None:
    """The database's folder made unwritable under a running server: SQLite still writes
    through the files it holds open, but nothing new can be made there (the writer's lock file,
    a journal), so no group can be stored. With the spool's folder unwritable too, beacons
    answer 503, clicks still land, and /healthz takes the node out with both reasons; once
    the spool can be written, events wait there (degraded, 200); once the database's folder
    can, each is stored exactly once."""
    database = server_home / "db" / "adserver.db"
    spool_dir = server_home / "spool"
    spool_dir.mkdir()  # root's: the server's user may not write here yet
    if os.geteuid() != 0:
        spool_dir.chmod(0o555)
    with serving_unprivileged(database, spool_dir, tmp_path / "server.log") as (server, client):
        found = decisions(client, 7)
        database.parent.chmod(0o555)
        beacon = client.post(found[0]["impression_url"])
        assert beacon.status_code == 503 and "cannot be stored" in beacon.json()["error"]
        click = client.get(found[1]["click_url"])
        assert click.status_code == 302 and click.headers["location"] == LANDING
        status, body = health(client, headers=OPS)
        assert status == 503 and body["status"] == "unavailable"
        writer = body["writer"]
        assert writer["stored_in"] == "nowhere" and writer["spool_writable"] is False
        assert "PermissionError" in writer["last_database_error"]
        assert "events.lock" in writer["last_database_error"]
        assert "PermissionError" in writer["last_spool_error"]
        assert str(spool_dir) in writer["last_spool_error"]
        assert health(client) == (503, {"status": "unavailable"})

        # The spool's folder becomes the server's: events wait there, the node serves again.
        give_to_server(spool_dir)
        spool_dir.chmod(0o755)
        for decision in found[2:6]:
            assert client.post(decision["impression_url"]).status_code == 204
        click = client.get(found[6]["click_url"])
        assert click.status_code == 302 and click.headers["location"] == LANDING
        status, body = health(client, headers=OPS)
        assert status == 200 and body["status"] == "degraded"
        assert body["writer"]["stored_in"] == "spool" and body["writer"]["spool_writable"]
        assert body["spool_depth"] == 5
        assert health(client) == (200, {"status": "degraded"})
        assert stored_events(database) == 0

        database.parent.chmod(0o755)
        wait_for(lambda: health(client, headers=OPS)[1]["spool_depth"] == 0, "the replay")
        status, body = health(client, headers=OPS)
        assert status == 200 and body["status"] == "ok"
        assert body["writer"]["stored_in"] == "database"
        # A beacon sent again after the replay is the same event: kept, but not counted again.
        assert client.post(found[2]["impression_url"]).status_code == 204
    with contextlib.closing(sqlite3.connect(database)) as connection:
        rows = connection.execute("SELECT decision_id, kind, reason FROM event").fetchall()
    once = [(decision, kind) for decision, kind, reason in rows if reason != "duplicate"]
    assert len(once) == len(set(once)) == 5, rows  # every spooled event, none twice
    assert sorted(kind for _, kind in once) == ["click", "imp", "imp", "imp", "imp"]
    again = [(decision, kind) for decision, kind, reason in rows if reason == "duplicate"]
    assert len(again) == 1 and again[0] in once
    assert "Traceback" not in server.log()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs, which the tests fill with a ballast file."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def leave_free(disk: Path, room: int) -> None:
    """Fill ``disk`` with a ballast file until about ``room`` bytes are left."""
    with open(disk / "ballast", "wb") as ballast:
        while True:
            stats = os.statvfs(disk)
            free = stats.f_bavail * stats.f_frsize
            if free <= room:
                return
            try:
                ballast.write(b"\0" * min(4096, free - room))
                ballast.flush()
            except OSError:
                return


def test_a_full_disk_never_tears_the_spool_and_every_acknowledged_event_counts(
    database: Path, small_disk: Path
) -> None:
    lock = block_lock_file(database)
    spool_dir = small_disk / "spool"
    with serving(database, spool_dir) as live, live.client() as client:
        found = decisions(client, 80)
        leave_free(small_disk, 12 * 1024)  # room for some 40 events
        acknowledged, refused = 0, 0
        for decision in found:
            answer = client.post(decision["impression_url"])
            if answer.status_code == 204:
                acknowledged += 1
            else:
                assert answer.status_code == 503
                refused += 1
        assert acknowledged > 10 and refused > 0, (acknowledged, refused)
        status, body = health(client, headers=OPS)
        assert status == 503 and body["writer"]["spool_writable"] is False
        # Every line of the spool is whole: exactly the acknowledged events, nothing torn.
        lines = b"".join(p.read_bytes() for p in spool_dir.glob("*.spool")).splitlines()
        assert len(lines) == acknowledged
        assert all(json.loads(line)["kind"] == "imp" for line in lines)
        lock.rmdir()
        (small_disk / "ballast").unlink()
        wait_for(lambda: health(client, headers=OPS)[1]["spool_depth"] == 0, "the replay")
        assert health(client, headers=OPS)[0] == 200
        assert client.post(found[-1]["impression_url"]).status_code == 204
    assert stored_events(database) == acknowledged + 1


def test_a_full_disk_under_the_database_spools_and_leaves_it_whole(
    tmp_path: Path, small_disk: Path
) -> None:
    database = small_disk / "adserver.db"
    migrate(f"sqlite:///{database}")
    engine = make_engine(f"sqlite:///{database}")
    three_slot_site(engine)
    engine.dispose()
    with serving(database, tmp_path / "spool") as live, live.client() as client:
        found = decisions(client, 40)
        # An emptied write-ahead log must grow to take the next write, on a disk with no room.
        with contextlib.closing(sqlite3.connect(database)) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        leave_free(small_disk, 0)
        for decision in found:
            assert client.post(decision["impression_url"]).status_code == 204
        status, body = health(client, headers=OPS)
        assert status == 200 and body["status"] == "degraded"
        assert body["spool_depth"] > 0
        (small_disk / "ballast").unlink()
        wait_for(lambda: health(client, headers=OPS)[1]["spool_depth"] == 0, "the replay")
    assert stored_events(database) == len(found)
    with contextlib.closing(sqlite3.connect(database)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        valid = connection.execute("SELECT count(*) FROM event WHERE valid").fetchone()[0]
    assert valid == len(found)


def test_a_spool_append_cut_short_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unit of the full-disk case: a write that fails part way is cut back off, so the
    next append starts on a whole line."""
    spool = Spool(tmp_path)
    spool.open()
    spool.append([event("a", "imp")])
    path = next(tmp_path.glob("*.spool"))
    before = path.read_bytes()
    real_write = os.write
    writes: list[int] = []

    def disk_fills(fd: int, data: Any) -> int:
        writes.append(fd)
        if len(writes) == 1:
            return real_write(fd, bytes(data[:100]))  # part of it, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", disk_fills)
    with pytest.raises(OSError, match="No space"):
        spool.append([event(f"d{n}", "imp") for n in range(10)])
    monkeypatch.setattr(os, "write", real_write)
    assert path.read_bytes() == before and spool.depth() == 1
    spool.append([event("b", "imp")])
    assert [json.loads(line)["decision_id"] for line in path.read_bytes().splitlines()] == [
        "a",
        "b",
    ]
    spool.close()


#: Fills a spool under a file-size limit in a process of its own (the limit binds every file
#: its process writes), then replays it and appends once more; prints what happened as JSON.
FILE_SIZE_LIMITED = """
import json, resource, sys
from pathlib import Path
from adserver.tracking.spool import Spool
from tests.records import event

limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
spool = Spool(Path(sys.argv[1]))
spool.open()
taken, refused = [], []
for n in range(100):
    group = [event(f"d{n}-{m}", "imp") for m in range(3)]
    try:
        spool.append(group)
        taken += [r.decision_id for r in group]
    except OSError as exc:
        refused.append(exc.errno)
depth = spool.depth()
replayed = []
spool.replay(lambda records: replayed.extend(r.decision_id for r in records))
spool.append([event("after", "imp")])
print(json.dumps(dict(taken=taken, refused=refused, depth=depth, replayed=replayed)))
"""


def test_a_spool_at_a_file_size_limit_refuses_whole_groups_and_recovers(tmp_path: Path) -> None:
    """A disk-full case made by the kernel: past RLIMIT_FSIZE (a ulimit, as some hosts set)
    a write fails with EFBIG. Each group is taken whole or not at all, every acknowledged one
    reads back and replays, and once replayed the spool takes events again."""
    limit = 8192
    done = subprocess.run(
        [sys.executable, "-c", FILE_SIZE_LIMITED, str(tmp_path), str(limit)],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert len(outcome["taken"]) > 10 and outcome["refused"], outcome
    assert set(outcome["refused"]) == {errno.EFBIG}
    # The group that crossed the limit was partly written, then cut back off: nothing of it
    # counts or replays, and nothing after it was torn.
    assert outcome["depth"] == len(outcome["taken"])
    assert outcome["replayed"] == outcome["taken"]
    [path] = tmp_path.glob("*.spool")
    assert [json.loads(line)["decision_id"] for line in path.read_bytes().splitlines()] == ["after"]


def test_a_tally_killed_midway_loses_and_doubles_nothing(engine: Engine) -> None:
    """SIGKILL a tally between its batches: what it committed stays counted once, what it had
    not is counted by the next one."""
    total = 30_000
    records = [event(f"k{n}", "imp") for n in range(total)]
    for start in range(0, total, 5_000):
        with engine.begin() as connection:
            store(connection, records[start : start + 5_000])
    url = engine.url.render_as_string(hide_password=False)
    tally = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from adserver.core.db import make_engine; "
            "from adserver.reporting.tally import run_tally; "
            "run_tally(make_engine(sys.argv[1]), batch_size=250)",
            url,
        ]
    )

    def batches() -> int:
        with engine.connect() as connection:
            value = connection.execute(
                text("SELECT value FROM meta WHERE key = 'tally_batch'")
            ).scalar()
        return int(value or 0)

    try:
        wait_for(lambda: batches() >= 5, "the tally's fifth batch", seconds=60)
        tally.send_signal(signal.SIGKILL)
    finally:
        tally.wait(timeout=30)
    assert tally.returncode == -signal.SIGKILL
    with engine.connect() as connection:
        pending = connection.execute(
            text("SELECT count(*) FROM event WHERE tally_batch IS NULL")
        ).scalar_one()
        counted = connection.execute(text("SELECT sum(impressions) FROM hourly_stat")).scalar()
    assert 0 < pending < total, "killed mid-way"
    assert int(counted or 0) == total - pending
    assert run_tally(engine) == pending
    with engine.connect() as connection:
        counted = connection.execute(text("SELECT sum(impressions) FROM hourly_stat")).scalar()
    assert counted == total
