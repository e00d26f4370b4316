"""The maintenance service on PostgreSQL consuming the process service's and the collector's
events from the real RabbitMQ: part reports move run-time timers, an alarm makes an item due
with its `trigger_alarm_id`, and an empty read model asks for a sync over the broker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest

from services.maintenance.app import spec
from services.transports import rabbitmq
from shared.events import AlarmRaised, Envelope, MachineUpserted, PartRecorded, Payload, ProcessUpserted, envelopes_in
from shared.runtime import ServiceRuntime, build_app
from shared.settings import Settings
from shared.transport.base import OutboundMessage, Transport
from tests.process.conftest import SECRET, wait_for
from tests.topology import remove_test_objects

T0 = 1_790_000_000.0


@dataclass
class Stack:
    client: httpx.AsyncClient
    publisher: Transport
    probe: aio_pika.abc.AbstractQueue  # bound to sync.requested

    @property
    def headers(self) -> dict[str, str]:
        token = self.client._transport.app.state.authenticator.mint("planner", ["planner"])  # type: ignore[attr-defined]
        return {"Authorization": f"Bearer {token}"}

    async def send(self, *payloads: Payload) -> None:
        await self.publisher.publish([OutboundMessage.from_envelope(Envelope.wrap(p, "process")) for p in payloads])

    async def item(self, item_id: int) -> dict[str, Any]:
        response = await self.client.get(f"/api/maintenance/items/{item_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


@pytest.fixture
async def stack(postgres_url: str, amqp_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    tag = uuid.uuid4().hex[:8]
    settings = Settings(
        database_url=postgres_url, database_schema_prefix=f"t{tag}_", amqp_url=amqp_url,
        exchange=f"taktline.test.{tag}", dead_exchange=f"taktline.test.{tag}.dead", queue_prefix=f"t{tag}.",
        auth_secret=SECRET, data_dir=tmp_path, _env_file=None,  # type: ignore[call-arg]
    )
    transport = rabbitmq(settings)
    publisher = rabbitmq(settings)
    broker = await aio_pika.connect_robust(amqp_url)
    channel = await broker.channel()
    try:
        # The probe exists before the service starts, so its start-up sync request is seen.
        exchange = await channel.declare_exchange(settings.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        probe = await channel.declare_queue(f"t{tag}.probe", auto_delete=True)
        await probe.bind(exchange, "sync.requested")
        app = build_app([ServiceRuntime(spec(), settings, transport)], settings, transport)
        async with app.router.lifespan_context(app):
            await publisher.start()
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
                yield Stack(client, publisher, probe)
            await publisher.close()
    finally:
        await broker.close()
        # The probe is only read with basic.get, so auto_delete never removes it.
        await remove_test_objects(amqp_url, postgres_url,
                                  queues=(f"t{tag}.maintenance", f"t{tag}.maintenance.dead", f"t{tag}.probe"),
                                  exchanges=(settings.exchange, settings.dead_exchange),
                                  schemas=[f"t{tag}_maintenance"])


async def test_start_requests_a_sync_over_the_broker(stack: Stack) -> None:
    async def requested() -> Any:
        message = await stack.probe.get(fail=False, no_ack=True)
        return message and envelopes_in(message.body)[0]

    envelope = await wait_for(requested)
    assert envelope.type == "sync.requested" and envelope.data["requester"] == "maintenance"


async def test_part_events_move_run_time_timers_and_an_alarm_makes_the_item_due(stack: Stack) -> None:
    await stack.send(MachineUpserted(machine_id=7, name="Okuma", archived=False, active_process_id=70),
                     ProcessUpserted(process_id=70, machine_id=7, name="Op 10", archived=False, time_per_cycle=1.5))

    async def create() -> Any:  # the machine is known once the read model caught up
        response = await stack.client.put("/api/maintenance/items/", headers=stack.headers, json={
            "item_type": "task", "name": "Way lube", "machine_id": 7, "schedule_mode": 1, "timer_interval": 8,
            "trigger_alarms": ["LUBE LEVEL LOW"]})
        return response.json() if response.status_code == 201 else None

    item = await wait_for(create)
    await stack.send(*(PartRecorded(part_id=i, machine_id=7, process_id=70, program_id=None, finished=T0 + 60 * i,
                                    count=2, cycles=2) for i in range(1, 4)))

    async def timer_moved() -> bool:
        return (await stack.item(item["id"]))["cycle_timer"] == 9.0  # 3 reports x 2 cycles x 1.5 min

    await wait_for(timer_moved)
    await stack.send(AlarmRaised(machine_id=7, timestamp=T0 + 600, alarm_id=4242, message="LUBE LEVEL LOW"))

    async def triggered() -> bool:
        return (await stack.item(item["id"]))["trigger_alarm_id"] == 4242

    await wait_for(triggered)
    response = await stack.client.get(f"/api/maintenance/items/schedule?start={T0:.0f}&end={T0 + 3600:.0f}",
                                      headers=stack.headers)
    assert response.json()[str(item["id"])] == [T0 + 600]
