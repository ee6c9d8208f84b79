"""``python -m bench`` (``make bench``): every case, the figures table and PASS/FAIL per target.

Servers run as real processes on 127.0.0.1 pinned to core 0, wrk on core 1. Each HTTP case is
compared with a bare Starlette baseline under the same server, run after run. The figures go to
bench/results/<timestamp>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import text

from adserver.core.db import make_engine, migrate
from adserver.launcher import DEFAULT_SERVER, SERVERS
from bench import cases, edits10k, inproc, load, report, robust, servers
from bench.fixture import Fixture, generate

CASES = (
    "pure", "tally", "decide", "tag", "imp", "edits", "edits10k", "workers", "rss", "robust",
    "versus",
)  # fmt: skip
POSTGRES = "postgres@127.0.0.1:5432"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 x 3 s runs, smaller tally")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per load run")
    parser.add_argument("--repeats", type=int, default=5, help="runs per measurement")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma list")
    parser.add_argument("--cases", default=",".join(CASES), help=f"any of {','.join(CASES)}")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.repeats = 3.0, 1
    chosen = [c for c in args.cases.split(",") if c]
    server_names = [s for s in args.servers.split(",") if s]
    unknown = set(chosen) - set(CASES) | set(server_names) - set(SERVERS)
    if unknown:
        parser.error(f"unknown case or server: {', '.join(sorted(unknown))}")
    if not load.have_wrk():
        print("wrk not found (apt-get install -y wrk); using the slower Python client")
    workdir = Path(tempfile.mkdtemp(prefix="adserver-bench-"))
    run = cases.Run(
        workdir=workdir,
        duration=args.duration,
        repeats=args.repeats,
        connections=args.connections,
        secret=secrets.token_urlsafe(32),
        log=lambda line: print(line, flush=True),
    )
    figures: dict[str, Any] = {
        "machine": report.machine(),
        "settings": {
            "duration_s": run.duration,
            "repeats": run.repeats,
            "connections": run.connections,
            "pinned": servers.can_pin(),
            "default_server": DEFAULT_SERVER,
        },
        "servers": {},
    }
    started = time.monotonic()
    try:
        with databases(run, chosen) as dbs:
            in_process(run, chosen, dbs, figures, quick=args.quick)
            for name in server_names:
                figures["servers"][name] = over_http(run, chosen, dbs, name)
            if "versus" in chosen and set(SERVERS) <= set(server_names):
                figures["granian_vs_uvicorn"] = granian_vs_uvicorn(run, dbs)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    figures["elapsed_s"] = round(time.monotonic() - started)
    print()
    print(report.table(figures, server_names))
    print()
    results = report.targets(figures, server_names)
    figures["targets"] = [vars(t) for t in results]
    width = max(len(t.name) for t in results)
    for target in results:
        verdict = {True: "PASS", False: "FAIL", None: "----"}[target.passed]
        print(f"{verdict}  {target.name.ljust(width)}  {target.figure:>14}  (target {target.goal})")
    path = report.write(figures)
    print(f"\nfigures written to {path} ({figures['elapsed_s']} s)")
    return 0


class Databases:
    def __init__(self) -> None:
        self.urls: dict[str, str] = {}
        self.fixtures: dict[str, Fixture] = {}


@contextlib.contextmanager
def databases(run: cases.Run, chosen: list[str]) -> Iterator[Databases]:
    """Migrated databases with the bench inventory: SQLite (1,000 and 10,000 campaigns) and
    PostgreSQL (a fresh database on the machine's server, dropped afterwards)."""
    dbs = Databases()
    pg_name = f"adserver_bench_{secrets.token_hex(4)}"
    made_pg = False
    try:
        specs = [("sqlite", f"sqlite:///{run.workdir / 'bench.db'}", 1000)]
        if {"rss", "edits10k"} & set(chosen):
            specs.append(("sqlite_10k", f"sqlite:///{run.workdir / 'bench-10k.db'}", 10_000))
        if "imp" in chosen:
            try:
                with psycopg.connect(f"postgresql://{POSTGRES}/postgres", autocommit=True) as admin:
                    admin.execute(f'CREATE DATABASE "{pg_name}"')
                made_pg = True
                specs.append(("postgresql", f"postgresql+psycopg://{POSTGRES}/{pg_name}", 1000))
            except psycopg.OperationalError as exc:
                run.log(f"PostgreSQL not available, skipping its case: {exc}")
        for key, url, campaigns in specs:
            started = time.monotonic()
            migrate(url)
            engine = make_engine(url)
            dbs.fixtures[key] = generate(engine, campaigns=campaigns, sites=50)
            engine.dispose()
            dbs.urls[key] = url
            run.log(f"fixture {key}: {campaigns:,} campaigns in {time.monotonic() - started:.1f} s")
        yield dbs
    finally:
        if made_pg:
            with psycopg.connect(f"postgresql://{POSTGRES}/postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def in_process(
    run: cases.Run, chosen: list[str], dbs: Databases, figures: dict[str, Any], *, quick: bool
) -> None:
    figures["tag_size"] = inproc.tag_size()
    engine = make_engine(dbs.urls["sqlite"])
    if "pure" in chosen:
        run.log("pure decide, in process")
        figures["pure_decide"] = inproc.pure_decide(
            engine, dbs.fixtures["sqlite"], calls=20_000 if quick else 100_000
        )
        figures["snapshot_build_1k"] = inproc.snapshot_build(engine)
        if "sqlite_10k" in dbs.urls:
            big = make_engine(dbs.urls["sqlite_10k"])
            figures["snapshot_build_10k"] = inproc.snapshot_build(big)
            big.dispose()
    engine.dispose()
    if "tally" in chosen:
        events = 200_000 if quick else 1_000_000
        run.log(f"tally over {events:,} events")
        url = f"sqlite:///{run.workdir / 'tally.db'}"
        migrate(url)
        engine = make_engine(url)
        fixture = generate(engine, campaigns=1000, sites=50)
        figures["tally"] = inproc.tally(engine, fixture, events=events)
        engine.dispose()


def adserver_env(run: cases.Run, database_url: str) -> dict[str, str]:
    return {
        "ADSERVER_DATABASE_URL": database_url,
        "ADSERVER_SECRET_KEY": run.secret,
        "ADSERVER_BASE_URL": "http://127.0.0.1:8000",
        "ADSERVER_SCHEDULER": "off",
        "ADSERVER_SPOOL_DIR": str(run.workdir / "spool"),
        # The bench reads /healthz's details (the inventory it loaded) without a token.
        "ADSERVER_METRICS_TOKEN": "public",
    }


def over_http(run: cases.Run, chosen: list[str], dbs: Databases, server: str) -> dict[str, Any]:
    """Every HTTP case under one server."""
    out: dict[str, Any] = {}
    fixture = dbs.fixtures["sqlite"]
    decide_paths = cases.decide_paths(run, fixture)
    main_env = adserver_env(run, dbs.urls["sqlite"])
    wd = run.workdir
    if {"decide", "tag", "imp", "edits"} & set(chosen):
        run.log(f"[{server}] adserver and baseline, one worker each, on core 0")
        with (
            servers.running(
                f"baseline-{server}",
                servers.baseline_command(server, 1),
                env={},
                workdir=wd,
                ready_path="/",
            ) as baseline,
            servers.running(
                f"adserver-{server}", servers.adserver_command(server, 1), env=main_env, workdir=wd
            ) as adserver,
        ):
            if "decide" in chosen:
                out["decide"] = cases.compare(
                    run, "decide", adserver, baseline, lambda label: decide_paths
                )
            if "tag" in chosen:
                tag = load.write_paths(wd / "tag.paths", ["/tag.js"])
                out["tag"] = cases.compare(run, "tag.js", adserver, baseline, lambda label: tag)
            if "imp" in chosen:
                rate = max(
                    [r["rps"] for r in out.get("decide", {}).get("baseline", {}).get("runs", [])]
                    or [20_000]
                )
                out["imp_sqlite"] = imp_case(run, server, "sqlite", adserver, baseline, dbs, rate)
                if "postgresql" in dbs.urls:
                    with servers.running(
                        f"adserver-pg-{server}",
                        servers.adserver_command(server, 1),
                        env=adserver_env(run, dbs.urls["postgresql"]),
                        workdir=wd,
                    ) as on_pg:
                        out["imp_postgresql"] = imp_case(
                            run, server, "postgresql", on_pg, baseline, dbs, rate
                        )
            if "edits" in chosen:
                out["edits"] = cases.with_and_without_edits(
                    run, adserver, decide_paths, dbs.urls["sqlite"], fixture
                )
                out["edits"]["snapshot_follows"] = snapshot_follows(adserver, dbs.urls["sqlite"])
    if "workers" in chosen:
        run.log(f"[{server}] decide with --workers 1 and 2, nothing pinned")
        with (
            servers.running(
                f"adserver-w1-{server}",
                servers.adserver_command(server, 1),
                env=main_env,
                workdir=wd,
                cpus=None,
            ) as one,
            servers.running(
                f"adserver-w2-{server}",
                servers.adserver_command(server, 2),
                env=main_env,
                workdir=wd,
                cpus=None,
            ) as two,
        ):
            out["workers"] = cases.compare(
                run, "workers", two, one, lambda label: decide_paths, cpus=None
            )
    if "rss" in chosen and "sqlite_10k" in dbs.urls:
        run.log(f"[{server}] 10,000 campaigns loaded, decide load")
        big = dbs.fixtures["sqlite_10k"]
        with servers.running(
            f"adserver-10k-{server}",
            servers.adserver_command(server, 1),
            env=adserver_env(run, dbs.urls["sqlite_10k"]),
            workdir=wd,
        ) as adserver:
            health = httpx.get(adserver.url + "/healthz").json()
            out["rss_10k"] = cases.solo(
                run, "decide (10k campaigns)", adserver, cases.decide_paths(run, big), repeats=1
            )
            out["rss_10k"]["creatives_loaded"] = health["inventory"]["creatives"]
            out["rss_10k"]["campaigns"] = big.campaigns
    if "edits10k" in chosen and "sqlite_10k" in dbs.urls:
        run.log(f"[{server}] 10,000 campaigns, one API edit a second under decide load")
        big = dbs.fixtures["sqlite_10k"]
        with servers.running(
            f"adserver-edits10k-{server}",
            servers.adserver_command(server, 1),
            env=adserver_env(run, dbs.urls["sqlite_10k"]),
            workdir=wd,
        ) as adserver:
            out["edits10k"] = edits10k.edits_under_load(
                run, adserver, cases.decide_paths(run, big), dbs.urls["sqlite_10k"], big
            )
    if "robust" in chosen:
        out["robustness"] = []
        for workers in (1, 2):
            result = robust.check(server, workers, workdir=wd, env=adserver_env(run, ""), run=run)
            run.log(f"[{server}] robustness, {workers} worker(s): {result}")
            out["robustness"].append(result)
    return out


def granian_vs_uvicorn(run: cases.Run, dbs: Databases) -> dict[str, Any]:
    """adserver under granian against adserver under uvicorn, run after run (same core)."""
    run.log("adserver under granian vs under uvicorn, alternated")
    out: dict[str, Any] = {}
    env = adserver_env(run, dbs.urls["sqlite"])
    with (
        servers.running(
            "versus-uvicorn", servers.adserver_command("uvicorn", 1), env=env, workdir=run.workdir
        ) as on_uvicorn,
        servers.running(
            "versus-granian", servers.adserver_command("granian", 1), env=env, workdir=run.workdir
        ) as on_granian,
    ):
        decide_paths = cases.decide_paths(run, dbs.fixtures["sqlite"])
        out["decide"] = cases.compare(
            run, "decide granian/uvicorn", on_granian, on_uvicorn, lambda label: decide_paths
        )
        fixture = dbs.fixtures["sqlite"]
        out["imp_sqlite"] = cases.compare(
            run,
            "imp granian/uvicorn",
            on_granian,
            on_uvicorn,
            lambda label: cases.imp_paths(
                run, fixture, int(40_000 * run.duration), f"versus-{label}"
            ),
        )
    return out


def imp_case(
    run: cases.Run,
    server: str,
    db: str,
    adserver: servers.ServerProcess,
    baseline: servers.ServerProcess,
    dbs: Databases,
    rate: float,
) -> dict[str, Any]:
    """Beacons with fresh tokens for distinct decisions, against the baseline."""
    fixture = dbs.fixtures[db]
    per_run = int(min(1_000_000, rate * 1.3 * run.duration)) + 1000
    base_paths = cases.imp_paths(run, fixture, 2000, f"imp-base-{server}-{db}")

    def paths(label: str) -> Path:
        if label.startswith(("base", "warm-base")):
            return base_paths
        count = per_run if not label.startswith("warm") else int(rate * 1.3 * run.warmup) + 1000
        return cases.imp_paths(run, fixture, count, f"imp-{server}-{db}-{label}")

    engine = make_engine(dbs.urls[db])
    counter = cases.EventCount(engine)
    figures = cases.compare(
        run,
        f"imp {db}",
        adserver,
        baseline,
        paths,
        before_run=counter.before_run,
        after_run=counter.after_run,
    )
    figures["events"] = counter.report()
    engine.dispose()
    return figures


def snapshot_follows(adserver: servers.ServerProcess, database_url: str) -> bool:
    """After the edits stop, the server's snapshot reaches the database's version."""
    engine = make_engine(database_url)
    with engine.connect() as connection:
        version = connection.execute(
            text("SELECT value FROM meta WHERE key = 'inventory_version'")
        ).scalar_one()
    engine.dispose()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if httpx.get(adserver.url + "/healthz").json()["inventory"]["version"] == version:
            return True
        time.sleep(0.2)
    return False


if __name__ == "__main__":
    sys.exit(main())
