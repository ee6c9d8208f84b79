"""What the serving process keeps is frozen out of the collector's sight, and freezing never
makes memory grow: snapshots hold no reference cycles (the one a rebuild replaces is freed at
once, frozen or not), and cyclic garbage frozen by mistake is collected before the frozen
objects grow by a quarter."""

from __future__ import annotations

import gc
import tracemalloc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from adserver.app import refresh_inventory
from adserver.core.db import bump_inventory_version, make_engine, migrate
from adserver.core.heap import RECLAIM_GROWTH, LongLived
from adserver.delivery.decide import (
    CampaignSpec,
    CreativeSpec,
    SiteSpec,
    SlotSpec,
    Snapshot,
    Targeting,
)
from adserver.delivery.inventory import Inventory, build_snapshot
from adserver.services import campaigns
from adserver.services.campaigns import CampaignUpdate
from adserver.services.common import SYSTEM
from bench.fixture import generate
from tests.factories import NOW

SNAPSHOT_TYPES = (Snapshot, SiteSpec, SlotSpec, CampaignSpec, CreativeSpec, Targeting)


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    generate(engine, campaigns=150, sites=5, seed=3)
    yield engine
    engine.dispose()


@pytest.fixture
def long_lived() -> Iterator[LongLived]:
    """A ``LongLived`` whose freezing is undone, and its garbage collected, after the test."""
    held = LongLived()
    try:
        yield held
    finally:
        held.release()
        gc.collect()


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def inventory(engine: Engine, clock: list[float]) -> Inventory:
    # The clock moves only when the test moves it: no rest holds a refresh back.
    return Inventory(
        engine,
        base_url="http://ads.example",
        max_age=30.0,
        clock=lambda: clock[0],
        cpu_clock=lambda: 0.0,
    )


def cyclic_garbage_of_types(types: tuple[type, ...]) -> list[Any]:
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return [o for o in gc.garbage if isinstance(o, types)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def edit(engine: Engine, campaign_id: int) -> None:
    """A campaign edit through the service layer: the refresher patches the snapshot."""
    with engine.begin() as connection:
        campaigns.update_campaign(
            connection,
            campaign_id=campaign_id,
            data=CampaignUpdate(weight=9, targeting={"devices": ["mobile"]}),
            expected_version=None,
            actor=SYSTEM,
            now=NOW,
        )


class Node:
    peers: list[Node]


def tracked(thing: object) -> bool:
    """Whether ``thing`` is in one of the collector's generations (not frozen)."""
    return any(o is thing for o in gc.get_objects())


def test_a_replaced_snapshot_is_freed_without_the_collector(
    engine: Engine, collector_off: None
) -> None:
    """Rebuilt, then patched after a service-layer edit: nothing of the snapshots replaced is
    left for the collector to find."""
    clock = [0.0]
    held = inventory(engine, clock)
    held.rebuild()
    held.rebuild()
    campaign_id = next(
        c.id for site in held.current.sites.values() for s in site.slots.values()
        for tier in s.tiers for c in tier
    )  # fmt: skip
    edit(engine, campaign_id)
    held.refresh()
    assert held.patches == 1
    held.rebuild()
    assert cyclic_garbage_of_types(SNAPSHOT_TYPES) == []


def test_the_refresher_freezes_a_new_full_snapshot_and_not_a_patch(
    engine: Engine, long_lived: LongLived, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("adserver.app.long_lived", long_lived)
    clock = [0.0]
    held = inventory(engine, clock)
    held.rebuild()
    long_lived.settle_all()
    work = refresh_inventory(held)
    edit(engine, 1)
    work()
    assert (held.rebuilds, held.patches, long_lived.freezes) == (1, 1, 0)
    patched = held.current
    assert tracked(patched), "a patch's few new objects stay with the collector"
    with engine.begin() as connection:
        bump_inventory_version(connection)  # a change from elsewhere: a full rebuild
    work()
    assert (held.rebuilds, long_lived.freezes) == (2, 1)
    rebuilt = held.current
    site = next(iter(rebuilt.sites.values()))
    assert not tracked(rebuilt) and not tracked(site)


def test_rebuilds_do_not_grow_memory(engine: Engine, long_lived: LongLived) -> None:
    """Forty full rebuilds, each frozen once published: the frozen objects stay flat, no frozen
    cyclic garbage ever calls for a full collection, and the memory Python holds grows by less
    than a tenth of one snapshot's (a snapshot leaked by each rebuild would be 30 of them)."""
    clock = [0.0]
    held = inventory(engine, clock)
    held.rebuild()
    long_lived.settle_all()
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        with engine.connect() as connection:
            one = build_snapshot(connection, base_url="http://ads.example", now=NOW.timestamp())
        snapshot_bytes = tracemalloc.get_traced_memory()[0] - before
        del one
        frozen: list[int] = []
        memory: list[int] = []
        for _ in range(40):
            held.rebuild()
            long_lived.settle()
            frozen.append(gc.get_freeze_count())
            gc.collect()  # empties the free lists; frozen garbage stays where it is
            memory.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    assert long_lived.reclaims == 1, "only settle_all's"
    assert long_lived.freezes == 40
    settled, last = frozen[10:], frozen[-1]
    assert max(settled) - min(settled) < 0.01 * last, frozen
    assert memory[-1] - memory[10] < snapshot_bytes / 10, (snapshot_bytes, memory)


def test_frozen_cyclic_garbage_is_collected_before_a_quarter_more(long_lived: LongLived) -> None:
    """Cycles alive when a snapshot is frozen, garbage just after (as a request in flight
    leaves): each is collected once the frozen objects have grown by a quarter, so the frozen
    count never passes 1.25 times its size after a full collection, plus one round's cycles."""
    long_lived.settle_all()
    after_full = gc.get_freeze_count()
    per_round = after_full // 20
    first: weakref.ref[Node] | None = None
    most = 0
    for _ in range(60):
        cycle = [Node() for _ in range(per_round)]
        for node in cycle:
            node.peers = cycle
        first = first or weakref.ref(cycle[0])
        before = long_lived.reclaims
        long_lived.settle()
        if long_lived.reclaims != before:
            after_full = gc.get_freeze_count()
        most = max(most, gc.get_freeze_count() - after_full)
        del cycle, node
    assert long_lived.reclaims > 5
    assert first() is None, "the first round's cycle was collected"
    assert most <= after_full * RECLAIM_GROWTH + 2 * per_round
