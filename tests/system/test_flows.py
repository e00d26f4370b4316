"""Cross-service flows over the real RabbitMQ, each service on its own PostgreSQL schema.

The services run composed in one process (as `taktline run --database-url … --amqp-url …`
does); every event between them crosses the broker. Telemetry is published as the
collector would publish it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from services import embedded, registry
from services.maintenance.usecases import scheduler
from shared.db import utcnow
from shared.events import AlarmRaised, Envelope, PartCompleted, Payload
from shared.settings import Settings
from shared.transport.base import OutboundMessage
from tests.process.conftest import SECRET, wait_for
from tests.topology import remove_test_objects


@dataclass
class System:
    client: httpx.AsyncClient
    app: Any

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": "Bearer " + self.app.state.authenticator.mint(f"{role}-user", [role])}

    async def ok(self, method: str, url: str, status: int = 200, role: str = "planner", **kw: Any) -> Any:
        response = await self.client.request(method, url, headers=self.auth(role), **kw)
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    async def telemetry(self, *payloads: Payload) -> None:
        await self.app.state.transport.publish(
            [OutboundMessage.from_envelope(Envelope.wrap(p, "collector")) for p in payloads])

    async def machine_with_process(self, name: str, **process: Any) -> tuple[int, int]:
        machine = await self.ok("PUT", "/api/machines/", 201, json={"name": name})
        made = await self.ok("PUT", "/api/processes/", 201, json={"machine_id": machine["id"], "name": "Op 10",
                                                                  **process})
        await self.ok("POST", f"/api/processes/{made['id']}/changeover/{made['id']}", params={"planned": 1})
        return machine["id"], made["id"]

    async def item_once_known(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create the item as soon as maintenance has heard of its machine (machine.upserted)."""
        async def create() -> dict[str, Any] | None:
            response = await self.client.put("/api/maintenance/items/", json=body, headers=self.auth("planner"))
            if response.status_code == 400 and "machine" in response.text:
                return None
            assert response.status_code == 201, response.text
            return response.json()

        return await wait_for(create, timeout=20, interval=0.1)


@pytest.fixture
async def system(postgres_url: str, amqp_url: str, tmp_path: Path) -> AsyncIterator[System]:
    tag = uuid.uuid4().hex[:8]
    settings = Settings(database_url=postgres_url, database_schema_prefix=f"y{tag}_", amqp_url=amqp_url,
                        exchange=f"taktline.test.{tag}", dead_exchange=f"taktline.test.{tag}.dead",
                        queue_prefix=f"y{tag}.", auth_secret=SECRET, data_dir=tmp_path,
                        _env_file=None)  # type: ignore[call-arg]
    app = embedded.create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
                yield System(client, app)
    finally:
        services = registry.available()
        await remove_test_objects(
            amqp_url, postgres_url, queues=[f"y{tag}.{s}{dead}" for s in services for dead in ("", ".dead")],
            exchanges=(settings.exchange, settings.dead_exchange), schemas=[f"y{tag}_{s}" for s in services])


async def test_parts_move_run_time_items_across_services(system: System) -> None:
    machine, _ = await system.machine_with_process("Flow VMC", time_per_cycle=30.0, parts_per_cycle=2)
    item = await system.item_once_known({"item_type": "task", "name": "Way lube", "machine_id": machine,
                                         "schedule_mode": 1, "timer_interval": 1.0, "warning_interval": 0.5})
    now = time.time()
    await system.telemetry(PartCompleted(machine_id=machine, timestamp=now - 60, increment=1),
                           PartCompleted(machine_id=machine, timestamp=now, increment=1))

    async def timer() -> float | None:
        found = await system.ok("GET", f"/api/maintenance/items/{item['id']}")
        return found["cycle_timer"] if found["cycle_timer"] >= 60 else None

    assert await wait_for(timer, timeout=20, interval=0.1) == 60.0  # two cycles of 30 minutes
    parts = await system.ok("GET", "/api/parts/", params={"machine_id": machine})
    assert sum(p["count"] for p in parts.values()) == 4


async def test_an_alarm_makes_its_item_due_with_the_alarm_id(system: System) -> None:
    machine, _ = await system.machine_with_process("Alarm VMC")
    item = await system.item_once_known({"item_type": "task", "name": "Check coolant", "machine_id": machine,
                                         "schedule_mode": 0, "timer_interval": 500.0,
                                         "trigger_alarms": ["LOW COOLANT LEVEL"]})
    await system.telemetry(AlarmRaised(machine_id=machine, timestamp=time.time(), alarm_id=4242,
                                       native_code="2042", message="LOW COOLANT LEVEL"))

    async def triggered() -> int | None:
        return (await system.ok("GET", f"/api/maintenance/items/{item['id']}"))["trigger_alarm_id"]

    assert await wait_for(triggered, timeout=20, interval=0.1) == 4242


async def test_a_due_critical_item_blocks_the_machine_until_its_entry(system: System) -> None:
    machine, _ = await system.machine_with_process("Critical VMC")
    item = await system.item_once_known({"item_type": "task", "name": "Replace guard", "machine_id": machine,
                                         "is_critical": True, "schedule_mode": 0, "timer_interval": 1.0,
                                         "initial_entry": time.time() - 7200})
    runtime = system.app.state.runtimes["maintenance"]
    async with runtime.uow() as uow:
        assert await scheduler.scan(uow, utcnow()) >= 1
        await uow.commit()

    async def blocked(expected: bool) -> bool:
        return (await system.ok("GET", f"/api/machines/{machine}"))["blocked"] is expected

    await wait_for(lambda: blocked(True), timeout=20, interval=0.1)
    await system.ok("PUT", "/api/maintenance/entries/", 201, role="shop",
                    json={"item_id": item["id"], "success": True})
    await wait_for(lambda: blocked(False), timeout=20, interval=0.1)
