"""The flows across services, with the three services as separate OS processes behind nginx
(tests/system/conftest.py) on PostgreSQL and RabbitMQ.

Everything goes through the gateway: telemetry is pushed over HTTP to the collector as an
edge adapter would, and reaches the process service and maintenance over RabbitMQ.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
from sqlalchemy import text

from shared.db import make_engine
from shared.events import envelopes_in
from shared.settings import SERVICES
from tests.process.conftest import wait_for
from tests.system.conftest import Gateway, StackFactory, token

FAST_SCHEDULER = {"TAKTLINE_MAINTENANCE_SCHEDULER_INTERVAL": "0.3", "TAKTLINE_MAINTENANCE_NOTIFIER_INTERVAL": "0.2"}


@pytest.fixture
async def fast(stack_factory: StackFactory) -> AsyncIterator[Gateway]:
    gateway = Gateway(await stack_factory(**FAST_SCHEDULER))
    try:
        yield gateway
    finally:
        await gateway.close()


async def push(gateway: Gateway, machine: int, *items: dict[str, Any]) -> dict[str, Any]:
    pushed = await gateway.ok("POST", f"/api/collector/machines/{machine}/events", json=list(items),
                              headers={"Authorization": f"Bearer {token('machine')}"})
    assert pushed["rejected"] == [], pushed
    return pushed  # type: ignore[no-any-return]


async def item(gateway: Gateway, item_id: int) -> dict[str, Any]:
    return await gateway.ok("GET", f"/api/maintenance/items/{item_id}")  # type: ignore[no-any-return]


async def test_every_slice_answers_through_nginx(gateway: Gateway) -> None:
    for service in SERVICES:
        spec = await gateway.ok("GET", f"/api/{service}/openapi.json")
        assert spec["paths"], service
    assert (await gateway.client.get("/api/nowhere")).status_code == 404  # nginx, not a service
    assert (await gateway.client.get("/api/processes/", headers={"Authorization": ""})).status_code == 401


async def test_parts_take_a_run_time_item_through_warning_and_due(
        fast: Gateway, webhook_receiver: tuple[str, list[Any]], amqp_url: str) -> None:
    url, received = webhook_receiver
    broker = await aio_pika.connect(amqp_url)
    try:
        channel = await broker.channel()
        probe = await channel.declare_queue(exclusive=True)
        await probe.bind(fast.stack.env["TAKTLINE_EXCHANGE"], "maintenance.#")

        machine, _ = await fast.machine_with_process("Gateway VMC", time_per_cycle=30.0, parts_per_cycle=2)
        hook = await fast.ok("PUT", "/api/notifications/channels/", 201,
                             json={"name": "Hook", "kind": "webhook", "url": url})
        lube = await fast.item_once_known({"item_type": "task", "name": "Way lube", "machine_id": machine,
                                           "schedule_mode": 1, "timer_interval": 1.0, "warning_interval": 0.5,
                                           "remind_channel_id": hook["id"]})
        assert lube["cycle_timer"] == 0

        async def events() -> list[str]:
            found = []
            while (message := await probe.get(fail=False, no_ack=True)) is not None:
                found.extend(e.type for e in envelopes_in(message.body) if e.data.get("item_id") == lube["id"])
            return found

        async def alerts() -> list[str]:
            rows = await fast.ok("GET", "/api/alerts/", params={"item_id": lube["id"]})
            return sorted(a["kind"] for a in rows.values())

        now = time.time()
        await push(fast, machine, {"timestamp": now - 120, "key": "PartCountAct", "value": 0},
                   {"timestamp": now - 60, "key": "PartCountAct", "value": 1})

        async def warned() -> bool:
            return any(r["kind"] == "warning" for r in received)

        await wait_for(warned, timeout=20, interval=0.1)  # one 30-minute cycle: half of the hour
        assert (await item(fast, lube["id"]))["cycle_timer"] == 30.0
        assert await alerts() == ["warning"]

        await push(fast, machine, {"timestamp": now, "key": "PartCountAct", "value": 2})

        async def due() -> bool:
            return any(r["kind"] == "due" for r in received)

        await wait_for(due, timeout=20, interval=0.1)
        assert (await item(fast, lube["id"]))["cycle_timer"] == 60.0
        assert await alerts() == ["due", "warning"]
        assert [(r["kind"], r["item_id"]) for r in received] == [("warning", lube["id"]), ("due", lube["id"])]
        seen: list[str] = []

        async def both_events() -> bool:
            seen.extend(await events())
            return {"maintenance.item_warning", "maintenance.item_due"} <= set(seen)

        await wait_for(both_events, timeout=10, interval=0.1)
        parts = await fast.ok("GET", "/api/parts/", params={"machine_id": machine})
        assert sum(p["count"] for p in parts.values()) == 4
    finally:
        await broker.close()


async def test_a_fault_triggers_its_critical_item_which_blocks_the_machine_until_an_entry(fast: Gateway) -> None:
    machine, _ = await fast.machine_with_process("Alarm VMC")
    coolant = await fast.item_once_known({"item_type": "task", "name": "Check coolant", "machine_id": machine,
                                          "is_critical": True, "schedule_mode": 0, "timer_interval": 500.0,
                                          "trigger_alarms": ["LOW COOLANT LEVEL"]})

    async def blocked_in_process() -> bool:
        return (await fast.ok("GET", f"/api/machines/{machine}"))["blocked"]  # type: ignore[no-any-return]

    async def blocked_in_collector() -> bool:
        return (await fast.ok("GET", f"/api/collector/machines/{machine}/interlock"))["blocked"]  # type: ignore

    assert not await blocked_in_process() and not await blocked_in_collector()
    await push(fast, machine, {"timestamp": time.time(), "key": "system",
                               "condition": {"level": "FAULT", "native_code": "2042",
                                             "message": "LOW COOLANT LEVEL"}})

    async def triggered() -> int | None:
        return (await item(fast, coolant["id"]))["trigger_alarm_id"]  # type: ignore[no-any-return]

    alarm_id = await wait_for(triggered, timeout=20, interval=0.1)
    alarms = await fast.ok("GET", "/api/collector/alarms/", params={"machine_id": machine})
    assert [a["message"] for a in alarms.values() if int(a["id"]) == alarm_id] == ["LOW COOLANT LEVEL"]

    await wait_for(blocked_in_process, timeout=20, interval=0.1)
    await wait_for(blocked_in_collector, timeout=20, interval=0.1)
    await fast.ok("PUT", "/api/maintenance/entries/", 201, json={"item_id": coolant["id"], "success": True},
                  headers={"Authorization": f"Bearer {token('shop')}"})

    async def lifted() -> bool:
        return not await blocked_in_process() and not await blocked_in_collector()

    await wait_for(lifted, timeout=20, interval=0.1)
    assert (await item(fast, coolant["id"]))["trigger_alarm_id"] is None


async def test_process_bound_items_follow_a_changeover_and_a_new_maintenance_catches_up(
        stack_factory: StackFactory, postgres_url: str) -> None:
    stack = await stack_factory()
    gateway = Gateway(stack)
    try:
        machine, first = await gateway.machine_with_process("Changeover VMC")
        second = (await gateway.ok("PUT", "/api/processes/", 201,
                                   json={"machine_id": machine, "name": "Op 20"}))["id"]
        now = time.time()
        window = {"start": now - 4 * 3600, "end": now + 3600}

        def overdue(process_id: int) -> dict[str, Any]:
            return {"item_type": "task", "name": f"Clamp check {process_id}", "machine_id": machine,
                    "process_id": process_id, "schedule_mode": 0, "timer_interval": 1.0,
                    "initial_entry": now - 2 * 3600}

        async def scheduled() -> set[int]:
            rows = await gateway.ok("GET", "/api/maintenance/items/schedule", params=window)
            return {int(i) for i, dates in rows.items() if dates}

        ids = {p: (await gateway.item_once_known(overdue(p)))["id"] for p in (first, second)}
        assert await scheduled() == {ids[first]}

        await gateway.ok("POST", f"/api/processes/{first}/changeover/{second}", params={"planned": 1})

        async def followed() -> bool:
            return await scheduled() == {ids[second]}

        await wait_for(followed, timeout=20, interval=0.1)

        # A maintenance service on an empty database asks for a sync and learns the machine,
        # its processes and which one is active.
        assert await stack.kill("maintenance") == -9
        engine = make_engine(postgres_url)
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{stack.env["TAKTLINE_DATABASE_SCHEMA_PREFIX"]}maintenance" CASCADE'))
        await engine.dispose()
        await stack.migrate()
        await stack.serve("maintenance", stack.ports["maintenance"])
        fresh = await gateway.item_once_known(overdue(second))
        assert await scheduled() == {fresh["id"]}
    finally:
        await gateway.close()
