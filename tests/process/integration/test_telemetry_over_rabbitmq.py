"""The process service on PostgreSQL consuming telemetry from the real RabbitMQ.

Telemetry published to the broker becomes parts in PostgreSQL and `process.part_recorded`
on the broker; the same message delivered twice records one part; a malformed message
lands in the dead-letter queue while the consumer keeps going.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import httpx
import pytest
from sqlalchemy import func, select

from services.process.app import spec
from services.process.models import Part
from services.transports import rabbitmq
from shared.db import from_unix
from shared.events import Envelope, PartCompleted, ProgramLoaded, envelopes_in
from shared.runtime import ServiceRuntime, build_app
from shared.settings import Settings
from shared.transport.base import OutboundMessage, Transport
from tests.process.conftest import SECRET, wait_for
from tests.topology import remove_test_objects

T0 = 1_790_000_000.0


@dataclass
class Stack:
    client: httpx.AsyncClient
    runtime: ServiceRuntime
    settings: Settings
    collector: Transport  # a second connection, publishing as the collector would
    probe: aio_pika.abc.AbstractQueue  # bound to process.part_recorded
    broker: aio_pika.abc.AbstractRobustConnection

    @property
    def headers(self) -> dict[str, str]:
        token = self.client._transport.app.state.authenticator.mint("planner", ["planner"])  # type: ignore[attr-defined]
        return {"Authorization": f"Bearer {token}"}

    async def put(self, url: str, body: dict[str, object]) -> dict[str, object]:
        response = await self.client.put(url, json=body, headers=self.headers)
        assert response.status_code == 201, response.text
        return response.json()

    async def send(self, *envelopes: Envelope) -> None:
        await self.collector.publish([OutboundMessage.from_envelope(e) for e in envelopes])

    async def part_count(self, machine_id: int) -> int:
        async with self.runtime.sessions() as session:
            return int(await session.scalar(
                select(func.coalesce(func.sum(Part.count), 0)).where(Part.machine_id == machine_id)) or 0)


@pytest.fixture
async def stack(postgres_url: str, amqp_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    tag = uuid.uuid4().hex[:8]
    settings = Settings(
        database_url=postgres_url, database_schema_prefix=f"t{tag}_", amqp_url=amqp_url,
        exchange=f"taktline.test.{tag}", dead_exchange=f"taktline.test.{tag}.dead", queue_prefix=f"t{tag}.",
        auth_secret=SECRET, data_dir=tmp_path, _env_file=None,  # type: ignore[call-arg]
    )
    transport = rabbitmq(settings)
    runtime = ServiceRuntime(spec(), settings, transport)
    app = build_app([runtime], settings, transport)
    collector = rabbitmq(settings)
    broker = await aio_pika.connect_robust(amqp_url)
    channel = await broker.channel()
    try:
        async with app.router.lifespan_context(app):
            await collector.start()
            probe = await channel.declare_queue(f"t{tag}.probe", auto_delete=True)
            await probe.bind(settings.exchange, "process.part_recorded")
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
                yield Stack(client, runtime, settings, collector, probe, broker)
            await collector.close()
    finally:
        await broker.close()
        # The probe is only read with basic.get, so auto_delete never removes it.
        await remove_test_objects(amqp_url, postgres_url,
                                  queues=(f"t{tag}.process", f"t{tag}.process.dead", f"t{tag}.probe"),
                                  exchanges=(settings.exchange, settings.dead_exchange), schemas=[f"t{tag}_process"])


async def drain(queue: aio_pika.abc.AbstractQueue) -> list[Envelope]:
    found = []
    while (message := await queue.get(fail=False, no_ack=True)) is not None:
        found.extend(envelopes_in(message.body))
    return found


async def test_telemetry_becomes_parts_in_postgres_and_part_recorded_on_the_broker(stack: Stack) -> None:
    machine = await stack.put("/api/machines/", {"name": "Okuma"})
    process = await stack.put("/api/processes/", {"machine_id": machine["id"], "name": "Op 10",
                                                  "parts_per_cycle": 2, "time_per_cycle": 1.5})
    await stack.put("/api/programs/", {"machine_id": machine["id"], "filename": "O10.nc",
                                       "process_id": process["id"]})
    await stack.send(Envelope.wrap(ProgramLoaded(machine_id=machine["id"], timestamp=T0, program="O10.nc"), "c"),
                     *(Envelope.wrap(PartCompleted(machine_id=machine["id"], timestamp=T0 + 60 * i, increment=1), "c")
                       for i in range(1, 6)))

    async def five_cycles() -> bool:
        return await stack.part_count(machine["id"]) == 10

    await wait_for(five_cycles)
    received: list[Envelope] = []

    async def recorded() -> bool:
        received.extend(await drain(stack.probe))
        return len(received) >= 5

    await wait_for(recorded)
    assert [e.type for e in received] == ["process.part_recorded"] * 5
    assert {e.data["process_id"] for e in received} == {process["id"]}
    assert [e.data["count"] for e in received] == [2] * 5
    assert [e.data["cycle_time"] for e in received] == [None, 60.0, 60.0, 60.0, 60.0]
    assert all(e.data["time_per_cycle"] == 1.5 for e in received)


async def test_the_same_message_delivered_twice_records_one_part(stack: Stack) -> None:
    machine = await stack.put("/api/machines/", {"name": "Mazak"})
    await stack.put("/api/processes/", {"machine_id": machine["id"], "name": "Op 20"})
    once = Envelope.wrap(PartCompleted(machine_id=machine["id"], timestamp=T0, increment=1), "collector")
    marker = Envelope.wrap(PartCompleted(machine_id=machine["id"], timestamp=T0 + 10, increment=1), "collector")
    await stack.send(once)
    await stack.send(once, marker)  # a redelivery, then something after it

    async def marker_applied() -> bool:
        async with stack.runtime.sessions() as session:
            return bool(await session.scalar(select(func.count()).select_from(Part).where(
                Part.machine_id == machine["id"], Part.finished == from_unix(T0 + 10))))

    await wait_for(marker_applied)  # everything before the marker has been consumed too (one queue, in order)
    assert await stack.part_count(machine["id"]) == 2


async def test_a_malformed_message_is_dead_lettered_and_the_consumer_keeps_going(stack: Stack) -> None:
    machine = await stack.put("/api/machines/", {"name": "DMG"})
    await stack.put("/api/processes/", {"machine_id": machine["id"], "name": "Op 30"})
    await stack.collector.publish([
        OutboundMessage("telemetry.part_completed", b"\x00 definitely not json", "poison-1"),
        OutboundMessage("telemetry.part_completed", json.dumps(
            {"type": "telemetry.part_completed", "producer": "c", "data": {"increment": 1}}).encode(), "poison-2"),
    ])
    await stack.send(Envelope.wrap(PartCompleted(machine_id=machine["id"], timestamp=T0, increment=1), "collector"))
    await wait_for(lambda: _parts_at_least(stack, machine["id"], 1))

    channel = await stack.broker.channel()
    dead_queue = await channel.declare_queue(f"{stack.settings.queue_prefix}process.dead", durable=True, passive=True)
    dead: list[str] = []

    async def both_dead() -> bool:
        while (message := await dead_queue.get(fail=False, no_ack=True)) is not None:
            dead.append(str(message.message_id))
        return len(dead) >= 2

    await wait_for(both_dead)
    assert sorted(dead) == ["poison-1", "poison-2"]
    assert await stack.part_count(machine["id"]) == 1


async def _parts_at_least(stack: Stack, machine_id: int, n: int) -> bool:
    return await stack.part_count(machine_id) >= n
