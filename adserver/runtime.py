"""The long-lived parts one server process runs, built and torn down by the app's lifespan."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine
from starlette.templating import Jinja2Templates

from adserver.config import Settings
from adserver.core.clock import UTC_ZONE, HourCache
from adserver.core.metrics import Metrics
from adserver.core.resources import PACKAGE_DIR
from adserver.delivery.audience import Audience
from adserver.delivery.inventory import Inventory
from adserver.jobs.scheduler import JobScheduler
from adserver.tracking.abuse import ReaderKeys
from adserver.tracking.counters import DeliveryCounters
from adserver.tracking.tokens import TokenSigner
from adserver.tracking.writer import EventWriter

T = TypeVar("T")


@dataclass(frozen=True)
class TagScript:
    """tag.js read once, gzipped once, with an ETag that changes with its content."""

    source: bytes
    gzipped: bytes
    etag: str
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls) -> TagScript:
        source = (PACKAGE_DIR / "static" / "tag.js").read_bytes()
        etag = '"' + hashlib.sha256(source).hexdigest()[:16] + '"'
        headers = {
            "ETag": etag,
            "Cache-Control": "public, max-age=3600",
            "Access-Control-Allow-Origin": "*",
        }
        return cls(source, gzip.compress(source, 9, mtime=0), etag, headers)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    templates: Jinja2Templates
    metrics: Metrics
    inventory: Inventory
    writer: EventWriter
    counters: DeliveryCounters
    signer: TokenSigner
    readers: ReaderKeys
    tag: TagScript
    rng: random.Random = field(default_factory=lambda: random.Random(os.urandom(16)))
    hours: HourCache = field(default_factory=HourCache)
    started_at: float = field(default_factory=time.time)
    #: Set by the lifespan when this process runs the scheduled jobs (ADSERVER_SCHEDULER=on).
    scheduler: JobScheduler | None = None
    #: Requests by device and country, and sampled pages, that forecasts scale by.
    audience: Audience = field(init=False)

    def __post_init__(self) -> None:
        self.audience = Audience(self.engine, self._zone_of)

    def _zone_of(self, site_id: int) -> ZoneInfo:
        site = self.inventory.current.sites_by_id.get(site_id)
        return site.timezone if site is not None else UTC_ZONE

    @classmethod
    def build(cls, settings: Settings, engine: Engine, templates: Jinja2Templates) -> Runtime:
        metrics = Metrics()
        writer = EventWriter(
            engine,
            spool_dir=settings.spool_dir,
            max_events=settings.group_max_events,
            max_wait=settings.group_max_wait,
            observer=metrics.observe_group,
        )
        metrics.track_spool(lambda: writer.spool_depth)
        return cls(
            settings=settings,
            engine=engine,
            templates=templates,
            metrics=metrics,
            inventory=Inventory(engine, base_url=settings.base_url),
            writer=writer,
            counters=DeliveryCounters(engine, observer=metrics.observe_decisions),
            signer=TokenSigner(settings.secret_key),
            readers=ReaderKeys(settings.secret_key),
            tag=TagScript.load(),
        )

    def fold(self) -> None:
        """Fold what decides counted into the figures the periodic flushes write."""
        self.counters.fold()
        self.audience.fold()

    def hour_for_site(self, site_id: int, at: float) -> int:
        """The site-local hour bucket of ``at``; UTC for a site we do not know (forged)."""
        site = self.inventory.current.sites_by_id.get(site_id)
        zone = site.timezone if site is not None else UTC_ZONE
        return self.hours.hour(at, zone, site_id)

    async def run_db(self, work: Callable[[Connection], T]) -> T:
        """Run a short read in a worker thread so the event loop never waits on the database."""

        def run() -> T:
            with self.engine.connect() as connection:
                return work(connection)

        return await asyncio.to_thread(run)

    async def run_tx(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one committed transaction in a worker thread."""

        def run() -> T:
            with self.engine.begin() as connection:
                return work(connection)

        return await asyncio.to_thread(run)
