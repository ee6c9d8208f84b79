"""Issue 4's targets checked against a run's figures, the printed table and the JSON file."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.edits10k import PATCH_P99_TARGET_MS

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Target:
    name: str
    figure: str
    goal: str
    passed: bool | None  # None: not measured in this run


def _get(figures: dict[str, Any], *path: str) -> Any:
    value: Any = figures
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _check(
    targets: list[Target],
    name: str,
    value: float | None,
    goal: str,
    ok: Callable[[float], bool],
    fmt: str = "{:.2f}",
) -> None:
    if value is None:
        targets.append(Target(name, "not measured", goal, None))
    else:
        targets.append(Target(name, fmt.format(value), goal, ok(value)))


def targets(figures: dict[str, Any], servers: list[str]) -> list[Target]:
    """Issue 4's targets; the HTTP ones once per server."""
    out: list[Target] = []
    for server in servers:
        http = figures.get("servers", {}).get(server, {})
        _check(
            out,
            f"[{server}] decide 3 slots req/s vs baseline",
            _get(http, "decide", "ratio_rps"),
            ">= 0.6x",
            lambda v: v >= 0.6,
            "{:.2f}x",
        )
        _check(
            out,
            f"[{server}] decide p99 vs baseline p99",
            _get(http, "decide", "ratio_p99"),
            "< 2x",
            lambda v: v < 2.0,
            "{:.2f}x",
        )
        for db in ("sqlite", "postgresql"):
            _check(
                out,
                f"[{server}] imp, durable group commit, {db}, vs baseline",
                _get(http, f"imp_{db}", "ratio_rps"),
                ">= 0.5x",
                lambda v: v >= 0.5,
                "{:.2f}x",
            )
        _check(
            out,
            f"[{server}] decide --workers 2 vs 1 (req/s)",
            _get(http, "workers", "ratio_rps"),
            ">= 1.5x",
            lambda v: v >= 1.5,
            "{:.2f}x",
        )
        _check(
            out,
            f"[{server}] RSS, 10,000 campaigns loaded, under load",
            _get(http, "rss_10k", "peak_rss_mb"),
            "< 250 MB",
            lambda v: v < 250,
            "{:.0f} MB",
        )
        _check(
            out,
            f"[{server}] decide req/s while campaigns are edited (own check)",
            _get(http, "edits", "ratio_rps"),
            ">= 0.9x of no edits",
            lambda v: v >= 0.9,
            "{:.2f}x",
        )
        _check(
            out,
            f"[{server}] 10k campaigns: PATCH p99, decide at 70% of its maximum",
            _get(http, "edits10k", "paced", "patch_p99_ms"),
            f"< {PATCH_P99_TARGET_MS} ms",
            lambda v: v < PATCH_P99_TARGET_MS,
            "{:.1f} ms",
        )
        _check(
            out,
            f"[{server}] 10k campaigns: slowest edit to serve",
            _get(http, "edits10k", "served_max_s"),
            "<= 2 s",
            lambda v: v <= 2,
            "{:.2f} s",
        )
        _check(
            out,
            f"[{server}] 10k campaigns: decide req/s with an edit a second",
            _get(http, "edits10k", "ratio_rps"),
            ">= 0.9x of no edits",
            lambda v: v >= 0.9,
            "{:.2f}x",
        )
        robust = _get(http, "robustness")
        out.append(
            Target(
                f"[{server}] lifespan, events, workers, SIGTERM (own check)",
                "not measured"
                if robust is None
                else ", ".join(f"w{r['workers']} {'ok' if r['ok'] else 'FAILED'}" for r in robust),
                "all ok",
                None if robust is None else all(r["ok"] for r in robust),
            )
        )
    _check(
        out,
        "pure decide, 3 slots, median",
        _get(figures, "pure_decide", "median_us"),
        "< 50 us",
        lambda v: v < 50,
        "{:.1f} us",
    )
    tally_seconds = _get(figures, "tally", "seconds_per_million")
    _check(
        out,
        "tally, 1,000,000 events, SQLite",
        tally_seconds,
        "< 20 s",
        lambda v: v < 20,
        "{:.1f} s",
    )
    _check(
        out,
        "tag.js gzipped",
        _get(figures, "tag_size", "gzipped_bytes"),
        "<= 4.5 KB (4608 B)",
        lambda v: v <= 4608,
        "{:.0f} B",
    )
    return out


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    wrk = shutil.which("wrk")
    wrk_version = ""
    if wrk:
        result = subprocess.run([wrk, "--version"], capture_output=True, text=True)
        wrk_version = (result.stdout or result.stderr).split("\n")[0].strip()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_generator": wrk_version or "python httpx (wrk missing)",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def table(figures: dict[str, Any], servers: list[str]) -> str:
    """The figures as a plain-text table (medians of the repeats)."""
    rows = [("case", "req/s", "p50 ms", "p99 ms", "peak RSS MB", "vs baseline")]
    for server in servers:
        http = figures.get("servers", {}).get(server, {})
        for key, label in (
            ("decide", "decide, 3 slots"),
            ("tag", "/tag.js"),
            ("imp_sqlite", "imp, SQLite"),
            ("imp_postgresql", "imp, PostgreSQL"),
            ("edits", "decide, campaigns edited /100 ms"),
        ):
            case = http.get(key)
            if not case:
                continue
            if key == "decide":
                base = case["baseline"]
                rows.append(
                    (
                        f"[{server}] baseline (bare Starlette JSON)",
                        f"{base['rps']:,.0f}",
                        f"{base['p50_ms']:.2f}",
                        f"{base['p99_ms']:.2f}",
                        f"{base['peak_rss_mb']:.0f}",
                        "1.00x",
                    )
                )
            versus = "vs no edits " if key == "edits" else ""
            rows.append(
                (
                    f"[{server}] {label}",
                    f"{case['rps']:,.0f}",
                    f"{case['p50_ms']:.2f}",
                    f"{case['p99_ms']:.2f}",
                    f"{case['peak_rss_mb']:.0f}" if case.get("peak_rss_mb") else "",
                    f"{versus}{case['ratio_rps']:.2f}x (p99 {case['ratio_p99']:.2f}x)",
                )
            )
        workers = http.get("workers")
        if workers:
            for label, case in (("1", workers["baseline"]), ("2", workers)):
                rows.append(
                    (
                        f"[{server}] decide, --workers {label}, unpinned",
                        f"{case['rps']:,.0f}",
                        f"{case['p50_ms']:.2f}",
                        f"{case['p99_ms']:.2f}",
                        f"{case['peak_rss_mb']:.0f}",
                        f"{workers['ratio_rps']:.2f}x of 1 worker" if label == "2" else "",
                    )
                )
        rss = http.get("rss_10k")
        if rss:
            rows.append(
                (
                    f"[{server}] decide, 10,000 campaigns",
                    f"{rss['rps']:,.0f}",
                    f"{rss['p50_ms']:.2f}",
                    f"{rss['p99_ms']:.2f}",
                    f"{rss['peak_rss_mb']:.0f}",
                    "",
                )
            )
    for key, label in (("decide", "decide, 3 slots"), ("imp_sqlite", "imp, SQLite")):
        case = figures.get("granian_vs_uvicorn", {}).get(key)
        if case:
            rows.append(
                (
                    f"[granian vs uvicorn] {label}",
                    f"{case['rps']:,.0f}",
                    f"{case['p50_ms']:.2f}",
                    f"{case['p99_ms']:.2f}",
                    f"{case['peak_rss_mb']:.0f}",
                    f"{case['ratio_rps']:.2f}x of uvicorn's {case['baseline']['rps']:,.0f}",
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write(figures: dict[str, Any], *, prefix: str = "") -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{prefix}{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(figures, indent=2, sort_keys=True, default=str) + "\n")
    return path
