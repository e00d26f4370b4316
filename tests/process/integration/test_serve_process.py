"""`taktline migrate process` + `taktline serve process` as a container runs them: its own
OS process on PostgreSQL and RabbitMQ, answering HTTP and consuming telemetry."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import httpx
import jwt
import pytest
from sqlalchemy import text

from services.transports import rabbitmq
from shared.db import make_engine
from shared.events import Envelope, PartCompleted
from shared.settings import Settings
from shared.testing.stack import free_port
from shared.transport.base import OutboundMessage
from tests.process.conftest import SECRET, wait_for

TAKTLINE = str(Path(sys.executable).with_name("taktline"))


@pytest.fixture
async def served(postgres_url: str, amqp_url: str, tmp_path: Path) -> AsyncIterator[tuple[str, dict[str, str]]]:
    tag = uuid.uuid4().hex[:8]
    port = free_port()
    env = {**os.environ, "TAKTLINE_DATABASE_URL": postgres_url, "TAKTLINE_DATABASE_SCHEMA_PREFIX": f"s{tag}_",
           "TAKTLINE_AMQP_URL": amqp_url, "TAKTLINE_EXCHANGE": f"taktline.test.{tag}",
           "TAKTLINE_DEAD_EXCHANGE": f"taktline.test.{tag}.dead", "TAKTLINE_QUEUE_PREFIX": f"s{tag}.",
           "TAKTLINE_AUTH_SECRET": SECRET, "TAKTLINE_PORT": str(port), "TAKTLINE_DATA_DIR": str(tmp_path)}
    migrate = await asyncio.create_subprocess_exec(TAKTLINE, "migrate", "process", env=env,
                                                   stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(60):
        _, errors = await migrate.communicate()
    assert migrate.returncode == 0, errors
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        server = await asyncio.create_subprocess_exec(TAKTLINE, "serve", "process", env=env, stdout=log,
                                                      stderr=asyncio.subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}", env
    finally:
        server.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            code = await server.wait()
        # uvicorn shuts down gracefully, then re-raises SIGTERM (exit -15) as a container expects.
        assert code in (0, -signal.SIGTERM), log_path.read_text()[-3000:]
        assert "Application shutdown complete" in log_path.read_text()
        connection = await aio_pika.connect(amqp_url)
        channel = await connection.channel()
        for queue in (f"s{tag}.process", f"s{tag}.process.dead"):
            await channel.queue_delete(queue)
        for exchange in (env["TAKTLINE_EXCHANGE"], env["TAKTLINE_DEAD_EXCHANGE"]):
            await channel.exchange_delete(exchange)
        await connection.close()
        engine = make_engine(postgres_url)
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "s{tag}_process" CASCADE'))
        await engine.dispose()


async def test_served_process_service_answers_and_consumes(served: tuple[str, dict[str, str]]) -> None:
    base, env = served
    token = jwt.encode({"sub": "planner", "roles": ["planner"], "exp": 4_000_000_000}, SECRET, algorithm="HS256")
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client:
        async def ready() -> bool:
            try:
                return (await client.get("/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_for(ready, timeout=30, interval=0.2)
        machine = (await client.put("/api/machines/", json={"name": "Served"})).json()
        await client.put("/api/processes/", json={"machine_id": machine["id"], "name": "Op"})
        assert (await client.get("/api/processes/", headers={"Authorization": "Bearer nope"})).status_code == 401

        settings = Settings(amqp_url=env["TAKTLINE_AMQP_URL"], exchange=env["TAKTLINE_EXCHANGE"],
                            dead_exchange=env["TAKTLINE_DEAD_EXCHANGE"], _env_file=None)  # type: ignore[call-arg]
        collector = rabbitmq(settings)
        await collector.start()
        try:
            await collector.publish([OutboundMessage.from_envelope(Envelope.wrap(
                PartCompleted(machine_id=machine["id"], timestamp=1_790_000_000.0, increment=1), "collector"))])
        finally:
            await collector.close()

        async def parts() -> dict[str, object]:
            return (await client.get("/api/parts/", params={"machine_id": machine["id"]})).json()

        found = await wait_for(parts, timeout=20, interval=0.1)
        assert [p["finished"] for p in found.values()] == [1_790_000_000.0]  # type: ignore[index]
        metrics = (await client.get("/metrics")).text
        assert 'taktline_events_consumed_total{outcome="applied",service="process",type="telemetry.part_completed"}' \
            in metrics
