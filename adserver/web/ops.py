"""Operator routes: health and Prometheus metrics.

``/healthz`` answers every load balancer with its status: 200 ``ok``; 200 ``degraded`` while
events go to the spool (the database is away or cannot be written: every node would drop out at
once if that were a 503, and the spool keeps what they acknowledge); 503 ``unavailable`` only
when this node can store events nowhere, so a load balancer stops sending it readers. Its
details (database, writer failures, spool depth and age, inventory, scheduler lag) and
``/metrics`` are for the operator: they need ``Authorization: Bearer`` with an admin API token
or ``ADSERVER_METRICS_TOKEN``, unless that setting is ``public``.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.accounts.principal import bearer_token
from adserver.core.db import ping
from adserver.jobs.registry import JOB_NAMES
from adserver.jobs.scheduler import scheduler_health
from adserver.runtime import Runtime
from adserver.services.tokens import principal_for_token
from adserver.web.common import JSONBytes, error, runtime

PUBLIC = "public"
NO_STORE = {"Cache-Control": "no-store"}
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="adserver operations"'}


async def operator(request: Request) -> bool:
    """Whether the request may see operator details: the metrics token, or an admin token."""
    svc = runtime(request)
    expected = svc.settings.metrics_token
    if expected == PUBLIC:
        return True
    token = bearer_token(request.headers)
    if token is None:
        return False
    if expected and hmac.compare_digest(token.encode(), expected.encode()):
        return True
    try:
        principal = await svc.run_db(lambda c: principal_for_token(c, token))
    except Exception:  # the database is away: only the metrics token can open the details
        return False
    return principal is not None and principal.is_admin


async def database_state(svc: Runtime) -> str:
    try:
        await svc.run_db(ping)
        return "ok"
    except Exception as exc:  # any failure here is what the operator needs to see
        return f"unavailable: {exc.__class__.__name__}"


def overall_status(database: str, stored_in: str, can_spool: bool) -> str:
    """``ok``, ``degraded`` (events spool) or ``unavailable`` (they cannot be stored at all)."""
    if stored_in == "nowhere" and not can_spool:
        return "unavailable"
    if database != "ok" or stored_in != "database":
        return "degraded" if can_spool else "unavailable"
    return "ok"


async def healthz(request: Request) -> Response:
    svc = runtime(request)
    writer = svc.writer
    database = await database_state(svc)
    status = overall_status(database, writer.health.stored_in, writer.can_spool())
    body: dict[str, Any] = {"status": status}
    if await operator(request):
        snapshot = svc.inventory.current
        now = time.time()
        spool_age = writer.spool_age()
        body.update(
            database=database,
            writer={
                "stored_in": writer.health.stored_in,
                "database_failures": writer.health.database_failures,
                "spool_failures": writer.health.spool_failures,
                "last_error": writer.health.last_error,
                "last_error_seconds_ago": (
                    None
                    if writer.health.last_error_at is None
                    else round(now - writer.health.last_error_at, 1)
                ),
                "last_database_error": writer.health.last_database_error,
                "last_spool_error": writer.health.last_spool_error,
                "spool_writable": writer.can_spool(),
            },
            spool_depth=writer.spool_depth,
            spool_age_seconds=None if spool_age is None else round(spool_age, 1),
            inventory={
                "version": snapshot.version,
                "sites": len(snapshot.sites),
                "creatives": len(snapshot.creatives),
                # How the snapshot was kept current: full rebuilds against patches, and the
                # timed campaigns' and the pacing job's refreshes.
                "edits": svc.inventory.edits,
                "rebuilds": svc.inventory.rebuilds,
                "patches": svc.inventory.patches,
                "timed": svc.inventory.timed,
                "paced": svc.inventory.paced,
            },
            uptime_seconds=round(now - svc.started_at, 1),
            scheduler=await asyncio.to_thread(
                scheduler_health, svc.engine, svc.scheduler, now, names=JOB_NAMES
            ),
        )
    return JSONBytes(
        orjson.dumps(body), status_code=503 if status == "unavailable" else 200, headers=NO_STORE
    )


async def metrics(request: Request) -> Response:
    if not await operator(request):
        return error(
            401,
            "/metrics needs 'Authorization: Bearer TOKEN' with ADSERVER_METRICS_TOKEN or an "
            "admin token",
            headers=CHALLENGE,
        )
    return Response(
        generate_latest(runtime(request).metrics.registry),
        media_type=CONTENT_TYPE_LATEST,
        headers=NO_STORE,
    )


routes = [
    Route("/healthz", healthz, methods=["GET"], name="healthz"),
    Route("/metrics", metrics, methods=["GET"], name="metrics"),
]
