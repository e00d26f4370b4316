"""Faults while 10,000 parts are in flight: nothing lost, nothing applied twice.

Four simulated machines push their part counters through the gateway to the collector (as an
edge adapter does, resending a batch until it is accepted), while the test stops and starts
RabbitMQ, kills the maintenance service with SIGKILL and starts it again, restarts PostgreSQL
and drops a poison message on the broker. Afterwards the process service must hold exactly
10,000 parts and every run-time timer the exact sum of its cycles.

The test drives the machine's own PostgreSQL cluster and RabbitMQ node (pg_ctlcluster,
rabbitmqctl, as root); elsewhere it skips, under CI it fails. It leaves both running.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from pathlib import Path

import aio_pika
import httpx
import pytest
from sqlalchemy import text

from shared.db import make_engine
from shared.settings import SERVICES
from shared.testing.plugin import is_local, run_command, skip_unless_ci
from tests.process.conftest import wait_for
from tests.system.conftest import Gateway, StackFactory, token

MACHINES = 4
PARTS_PER_MACHINE = 2_500
BATCH = 50  # counter readings per HTTP push
PACE = 0.3  # seconds between one machine's pushes: the faults land while parts are in flight
MINUTES_PER_CYCLE = (0.5, 0.75, 1.25, 2.0)  # exact in binary, so the sums are exact too
POISON = b'{"id": "not an envelope", "payload": '


@pytest.fixture
def infra_control(postgres_url: str, amqp_url: str) -> dict[str, list[str]]:
    """The commands that stop and start this machine's PostgreSQL and RabbitMQ."""
    clusters = sorted(os.listdir("/etc/postgresql")) if Path("/etc/postgresql").is_dir() else []
    missing = [tool for tool in ("pg_ctlcluster", "rabbitmqctl") if shutil.which(tool) is None]
    if missing or not clusters or os.geteuid() != 0 or not (is_local(postgres_url) and is_local(amqp_url)):
        skip_unless_ci("the fault test restarts the local PostgreSQL cluster and RabbitMQ node: it needs root, "
                 f"pg_ctlcluster and rabbitmqctl and local URLs (missing: {missing or 'root/local services'})")
    pg = ["pg_ctlcluster", "--skip-systemctl-redirect", clusters[-1], "main"]
    return {"pg_restart": [*pg, "restart", "-m", "fast"], "pg_start": [*pg, "start"],
            "mq_stop": ["rabbitmqctl", "stop_app"], "mq_start": ["rabbitmqctl", "start_app"],
            "mq_wait": ["rabbitmqctl", "await_startup", "--timeout", "60"]}


class Machine:
    """One simulated machine's edge adapter: counter readings, pushed in order, each batch resent
    until the gateway accepts it (a resent batch derives nothing new: the collector dedupes)."""

    def __init__(self, machine_id: int, start: float) -> None:
        self.id = machine_id
        readings = [{"timestamp": start + 20.0 * n, "key": "PartCountAct", "value": n}
                    for n in range(PARTS_PER_MACHINE + 1)]
        self.batches = [readings[i:i + BATCH] for i in range(0, len(readings), BATCH)]
        self.sent = 0
        self.retries = 0

    async def push(self, client: httpx.AsyncClient) -> None:
        for batch in self.batches:
            while True:
                try:
                    response = await client.post(f"/api/collector/machines/{self.id}/events", json=batch)
                except httpx.TransportError:
                    response = None
                if response is not None and response.status_code == 200:
                    assert response.json()["rejected"] == [], response.text
                    break
                assert response is None or response.status_code >= 500, response.text
                self.retries += 1
                await asyncio.sleep(0.25)
            self.sent += 1
            await asyncio.sleep(PACE)


async def test_faults_lose_nothing_and_apply_nothing_twice(
        stack_factory: StackFactory, infra_control: dict[str, list[str]], amqp_url: str, postgres_url: str) -> None:
    stack = await stack_factory(TAKTLINE_LOG_FORMAT="text")
    gateway = Gateway(stack)
    prefix = stack.env["TAKTLINE_DATABASE_SCHEMA_PREFIX"]
    queues = stack.env["TAKTLINE_QUEUE_PREFIX"]
    broker: aio_pika.abc.AbstractConnection | None = None
    try:
        items: dict[int, tuple[int, float]] = {}  # item id -> (machine id, expected minutes)
        machines: list[Machine] = []
        start = time.time() - 3 * 86_400
        for n, minutes in enumerate(MINUTES_PER_CYCLE):
            machine_id, process_id = await gateway.machine_with_process(f"VMC {n}", time_per_cycle=minutes,
                                                                        parts_per_cycle=1)
            machines.append(Machine(machine_id, start))
            for bound in (None, process_id):
                item = await gateway.item_once_known({
                    "item_type": "task", "name": f"Way lube {n}", "machine_id": machine_id,
                    "process_id": bound, "schedule_mode": 1, "timer_interval": 1000.0, "warning_interval": 900.0})
                items[item["id"]] = (machine_id, minutes * PARTS_PER_MACHINE)

        total = sum(len(m.batches) for m in machines)

        def progress() -> float:
            return sum(m.sent for m in machines) / total

        async def reached(share: float) -> None:
            async def there() -> bool:
                return progress() >= share

            await wait_for(there, timeout=240, interval=0.05)

        faults: list[str] = []

        async def inject() -> None:
            await reached(0.15)
            await run_command(*infra_control["mq_stop"])
            faults.append(f"rabbitmq stopped at {progress():.0%}")
            await asyncio.sleep(3)
            await run_command(*infra_control["mq_start"])
            await run_command(*infra_control["mq_wait"])
            await reached(0.35)
            nonlocal broker
            broker = await aio_pika.connect(amqp_url)
            channel = await broker.channel()
            exchange = await channel.get_exchange(stack.env["TAKTLINE_EXCHANGE"])
            await exchange.publish(aio_pika.Message(POISON, message_id="poison"), "telemetry.part_completed")
            faults.append(f"poison published at {progress():.0%}")
            await reached(0.45)
            assert await stack.kill("maintenance") == -9
            faults.append(f"maintenance killed at {progress():.0%}")
            await asyncio.sleep(1)
            await stack.serve("maintenance", stack.ports["maintenance"])
            await reached(0.7)
            await run_command(*infra_control["pg_restart"])
            faults.append(f"postgresql restarted at {progress():.0%}")

        pusher = httpx.AsyncClient(base_url=gateway.url, headers={"Authorization": f"Bearer {token('machine')}"},
                                   timeout=10)
        async with asyncio.timeout(240):
            await asyncio.gather(inject(), *(m.push(pusher) for m in machines))
        await pusher.aclose()
        assert len(faults) == 4, faults

        async def parts_of(machine_id: int) -> int:
            parts = await gateway.ok("GET", "/api/parts/", params={"machine_id": machine_id, "limit": 10_000})
            return sum(p["count"] for p in parts.values())

        async def all_parts() -> bool:
            return all([await parts_of(m.id) >= PARTS_PER_MACHINE for m in machines])

        async def all_timers() -> bool:
            found = [await gateway.ok("GET", f"/api/maintenance/items/{i}") for i in items]
            return all(f["cycle_timer"] >= items[f["id"]][1] for f in found)

        try:
            await wait_for(all_parts, timeout=180, interval=0.5)
            await wait_for(all_timers, timeout=60, interval=0.5)
        except AssertionError:
            counts = {m.id: await parts_of(m.id) for m in machines}
            timers = {i: (await gateway.ok("GET", f"/api/maintenance/items/{i}"))["cycle_timer"] for i in items}
            engine = make_engine(postgres_url)
            async with engine.connect() as conn:
                pending = {service: (await conn.execute(text(
                    f'SELECT count(*) FROM "{prefix}{service}".outbox WHERE published_at IS NULL'))).scalar()
                    for service in SERVICES}
            await engine.dispose()
            logs = "\n".join(f"--- {name}\n{stack.log_tail(name, 4000)}" for name in SERVICES)
            raise AssertionError(f"parts {counts}, timers {timers}, outbox rows pending {pending}; "
                                 f"faults {faults}\n{logs}") from None

        # Let every outbox drain, then read the final figures: anything applied twice shows now.
        engine = make_engine(postgres_url)
        try:
            async def drained() -> bool:
                async with engine.connect() as conn:
                    pending = [(await conn.execute(text(
                        f'SELECT count(*) FROM "{prefix}{service}".outbox WHERE published_at IS NULL'))).scalar()
                        for service in SERVICES]
                return not any(pending)

            await wait_for(drained, timeout=60, interval=0.5)
            await asyncio.sleep(2)
            async with engine.connect() as conn:
                recorded = (await conn.execute(text(
                    f"""SELECT count(*) FROM "{prefix}maintenance".inbox WHERE type = 'process.part_recorded'"""
                ))).scalar()
        finally:
            await engine.dispose()

        assert {m.id: await parts_of(m.id) for m in machines} == {m.id: PARTS_PER_MACHINE for m in machines}
        found = {i: (await gateway.ok("GET", f"/api/maintenance/items/{i}"))["cycle_timer"] for i in items}
        assert found == {i: minutes for i, (_, minutes) in items.items()}
        assert recorded == MACHINES * PARTS_PER_MACHINE

        assert broker is not None
        # The poison went to the process service's dead-letter queue; nothing else did.
        channel = await broker.channel()
        dead = await channel.declare_queue(f"{queues}process.dead", passive=True)
        message = await dead.get(fail=False, no_ack=True)
        assert message is not None and message.body == POISON
        assert await dead.get(fail=False, no_ack=True) is None
        maintenance_dead = await channel.declare_queue(f"{queues}maintenance.dead", passive=True)
        assert maintenance_dead.declaration_result.message_count == 0
    finally:
        await gateway.close()
        if broker is not None:
            await broker.close()
        # Leave the machine as we found it, whatever failed above.
        with contextlib.suppress(Exception):
            await run_command(*infra_control["mq_start"])
        with contextlib.suppress(Exception):
            await run_command(*infra_control["pg_start"])
