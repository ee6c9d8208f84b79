"""Operator routes: health and Prometheus metrics."""

from __future__ import annotations

import asyncio
import time

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.core.db import ping
from adserver.jobs.registry import JOB_NAMES
from adserver.jobs.scheduler import scheduler_health
from adserver.web.common import JSONBytes, runtime


async def healthz(request: Request) -> Response:
    """200 when the database answers; the body says what each part is doing."""
    svc = runtime(request)
    try:
        await svc.run_db(ping)
        database = "ok"
    except Exception as exc:  # any failure here is what the operator needs to see
        database = f"unavailable: {exc.__class__.__name__}"
    snapshot = svc.inventory.current
    body = {
        "status": "ok" if database == "ok" else "degraded",
        "database": database,
        "spool_depth": svc.writer.spool_depth,
        "inventory": {
            "version": snapshot.version,
            "sites": len(snapshot.sites),
            "creatives": len(snapshot.creatives),
        },
        "uptime_seconds": round(time.time() - svc.started_at, 1),
        "scheduler": await asyncio.to_thread(
            scheduler_health, svc.engine, svc.scheduler, time.time(), names=JOB_NAMES
        ),
    }
    return JSONBytes(
        orjson.dumps(body),
        status_code=200 if database == "ok" else 503,
        headers={"Cache-Control": "no-store"},
    )


async def metrics(request: Request) -> Response:
    return Response(
        generate_latest(runtime(request).metrics.registry), media_type=CONTENT_TYPE_LATEST
    )


routes = [
    Route("/healthz", healthz, methods=["GET"], name="healthz"),
    Route("/metrics", metrics, methods=["GET"], name="metrics"),
]
