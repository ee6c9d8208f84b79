"""create_app(settings) -> Starlette; the lifespan starts and stops everything else."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import Receive, Scope, Send

from adserver.config import Settings
from adserver.core.db import make_engine, schema_state
from adserver.core.periodic import Periodic
from adserver.core.resources import PACKAGE_DIR, resource_dir
from adserver.jobs.registry import default_jobs
from adserver.jobs.scheduler import JobScheduler
from adserver.runtime import Runtime
from adserver.web import api, ops, serve
from adserver.web.guard import RequestGuard
from adserver.web.pages import (
    account,
    admin,
    auth,
    dashboard,
    dashboard_reports,
    demo,
    errors,
    overview,
    share,
)
from adserver.web.security import PageGuard
from adserver.web.serve.fastlane import endpoint_for

log = logging.getLogger(__name__)
#: Container allocations between young-generation collections while serving (Python's default
#: is 700). A decide allocates a few dozen short-lived containers that reference counting frees
#: at once, so at the default the collector ran every few dozen requests to find nothing; at
#: this it runs a few times a second, and its older generations follow less often too.
GC_YOUNG_THRESHOLD = 20_000
#: Seconds between folds of what decides counted into the figures the flushes write: at a
#: flush every 5 s, tens of thousands of keys waited, walked by every young collection and
#: summed in one long hold of the GIL.
FOLD_INTERVAL = 0.5


class SchemaOutOfDate(RuntimeError):
    pass


class AdServer(Starlette):
    """The application, holding what its routes need as typed attributes: a plain attribute is
    read on every request's path, where ``app.state`` costs a failed lookup first."""

    def __init__(self, settings: Settings, templates: Jinja2Templates, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.templates = templates
        self.guard = RequestGuard(settings)
        #: Set by the lifespan, for the life of the process.
        self.runtime: Runtime | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Every request passes the guard (hosts, sizes); then decides and beacons take the fast
        lane to their endpoints, the rest the router."""
        if scope["type"] == "http":
            refusal = self.guard.check(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        hot = endpoint_for(scope)
        if hot is None:
            await super().__call__(scope, receive, send)
            return
        endpoint, scope["path_params"] = hot
        scope["app"] = self
        response = await endpoint(Request(scope, receive))
        await response(scope, receive, send)


def create_app(settings: Settings) -> AdServer:
    """The adserver application; nothing touches the database until the lifespan starts."""
    settings.require_secret()
    templates = Jinja2Templates(
        directory=str(resource_dir("templates")), context_processors=[auth.template_context]
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: AdServer) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        current, head = await asyncio.to_thread(schema_state, engine)
        if current != head:
            engine.dispose()
            raise SchemaOutOfDate(
                f"the database schema is at {current or 'nothing'}, this adserver needs {head}: "
                "run `adserver migrate` first"
            )
        runtime = Runtime.build(settings, engine, templates)
        app.runtime = runtime
        await asyncio.to_thread(runtime.inventory.rebuild)
        # What start-up made (modules, metadata, the first snapshot) lives as long as the
        # process: out of the collector's sight, a full collection scans a fraction of the heap
        # (88 ms -> a few ms with 1,000 campaigns), a pause every request in flight would feel.
        gc.collect()
        gc.freeze()
        thresholds = gc.get_threshold()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *thresholds[1:])
        runtime.writer.start()
        refreshers = [
            Periodic("inventory", settings.inventory_poll_interval, runtime.inventory.patch),
            Periodic(
                "rebuilds", settings.inventory_poll_interval, runtime.inventory.rebuild_when_due
            ),
            Periodic("counters", settings.counter_flush_interval, runtime.counters.flush),
            Periodic("audience", settings.counter_flush_interval, runtime.audience.tick),
            Periodic("folds", FOLD_INTERVAL, runtime.fold),
        ]
        for refresher in refreshers:
            refresher.start()
        if settings.scheduler:
            runtime.scheduler = JobScheduler(
                engine, default_jobs(engine, settings), metrics=runtime.metrics
            )
            runtime.scheduler.start()
        try:
            yield
        finally:
            if runtime.scheduler is not None:
                await asyncio.to_thread(runtime.scheduler.shutdown)
            for refresher in refreshers:
                await asyncio.to_thread(refresher.stop)
            await asyncio.to_thread(runtime.counters.flush)
            await asyncio.to_thread(runtime.audience.flush)
            await asyncio.to_thread(runtime.writer.stop)
            engine.dispose()
            gc.unfreeze()  # what start-up made may be garbage now (several apps in one process)
            gc.set_threshold(*thresholds)

    return AdServer(
        settings,
        templates,
        routes=[
            *serve.routes,
            *ops.routes,
            *api.routes,
            *auth.routes,
            *account.routes,
            *share.routes,
            *admin.routes,
            *dashboard.routes,
            *dashboard_reports.routes,
            *overview.routes,
            *(demo.routes if settings.demo else []),
            Mount("/static", StaticFiles(directory=str(PACKAGE_DIR / "static")), name="static"),
        ],
        middleware=[
            Middleware(
                PageGuard,
                secret=settings.secret_key,
                secure_cookies=settings.base_url.startswith("https://"),
            )
        ],
        lifespan=lifespan,
        exception_handlers={**errors.exception_handlers, auth.LoginRequired: auth.login_required},
    )
