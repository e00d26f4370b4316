"""A webhook receiver on loopback gets a reminder exactly once, across a restart of the sender."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.maintenance.app import spec
from services.maintenance.usecases import notifier, scheduler
from shared.runtime import ServiceRuntime
from shared.transport.memory import MemoryTransport
from tests.maintenance.conftest import MaintenanceHarness

T0 = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)


async def test_reminder_arrives_once_across_a_restart(api: MaintenanceHarness,
                                                      webhook_receiver: tuple[str, list[Any]]) -> None:
    url, received = webhook_receiver
    channel = await api.ok("PUT", "/api/notifications/channels/", 201,
                           json={"name": "Hook", "kind": "webhook", "url": url})
    item = await api.item(timer_interval=1, initial_entry=T0.timestamp(), remind_channel_id=channel["id"])
    async with api.runtime.uow() as uow:
        assert await scheduler.scan(uow, T0 + timedelta(hours=2)) == 1
        await uow.commit()
    async with httpx.AsyncClient(timeout=5) as client:
        assert await notifier.send_pending(api.runtime, client) == 1
    # A fresh runtime over the same database stands for the restarted service.
    restarted = ServiceRuntime(spec(), api.runtime.settings, MemoryTransport())
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            assert await notifier.send_pending(restarted, client, datetime.now(UTC) + timedelta(days=1)) == 0
    finally:
        await restarted.engine.dispose()
    assert [(r["kind"], r["item_id"]) for r in received] == [("due", item["id"])]
