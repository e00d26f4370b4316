"""The three services as separate OS processes behind nginx, as `make run-services` runs them.

The stack comes from deploy/local/run_services.py (the same launcher and rendered nginx
config) on free ports, with its own schemas, exchanges and queues. Everything goes through
the gateway: telemetry pushed over HTTP to the collector reaches the process service and
maintenance over RabbitMQ.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import aio_pika
import httpx
import jwt
import pytest
from sqlalchemy import text

from shared.db import make_engine
from shared.settings import SERVICES
from tests.process.conftest import SECRET, wait_for

LAUNCHER = Path(__file__).resolve().parents[2] / "deploy" / "local" / "run_services.py"


def load_launcher() -> ModuleType:
    spec = importlib.util.spec_from_file_location("taktline_run_services", LAUNCHER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


launcher = load_launcher()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def token(role: str) -> str:
    return jwt.encode({"sub": f"{role}-user", "roles": [role], "exp": 4_000_000_000}, SECRET, algorithm="HS256")


@pytest.fixture
def nginx() -> str:
    found = launcher.find_nginx()
    if found is None:
        reason = "nginx is not installed (apt-get install nginx-light); the gateway test needs it"
        if os.environ.get("CI", "").lower() in ("1", "true"):
            pytest.fail(f"CI: {reason}", pytrace=False)
        pytest.skip(reason)
    return found


@pytest.fixture
async def gateway(nginx: str, postgres_url: str, amqp_url: str, tmp_path: Path) -> AsyncIterator[str]:
    tag = uuid.uuid4().hex[:8]
    env = launcher.service_env(
        os.environ, TAKTLINE_DATABASE_URL=postgres_url, TAKTLINE_DATABASE_SCHEMA_PREFIX=f"g{tag}_",
        TAKTLINE_AMQP_URL=amqp_url, TAKTLINE_EXCHANGE=f"taktline.test.{tag}",
        TAKTLINE_DEAD_EXCHANGE=f"taktline.test.{tag}.dead", TAKTLINE_QUEUE_PREFIX=f"g{tag}.",
        TAKTLINE_AUTH_SECRET=SECRET, TAKTLINE_DATA_DIR=str(tmp_path / "data"))
    stack = launcher.Stack(env, tmp_path / "nginx", ports={name: free_port() for name in SERVICES},
                           gateway_port=free_port(), log_dir=tmp_path / "logs", nginx=nginx)
    try:
        await stack.start(within=30)
        yield stack.gateway
    finally:
        codes = await stack.stop()
        try:
            # uvicorn re-raises SIGTERM after a graceful shutdown (-15); nginx exits 0.
            for name in SERVICES:
                assert codes.get(name) in (0, -15), f"{name}: exit {codes.get(name)}\n{stack.log_tail(name)}"
                assert "Application shutdown complete" in stack.log_tail(name, 100_000), stack.log_tail(name)
        finally:
            connection = await aio_pika.connect(amqp_url)
            channel = await connection.channel()
            for service in SERVICES:
                for queue in (f"g{tag}.{service}", f"g{tag}.{service}.dead"):
                    await channel.queue_delete(queue)
            for exchange in (env["TAKTLINE_EXCHANGE"], env["TAKTLINE_DEAD_EXCHANGE"]):
                await channel.exchange_delete(exchange)
            await connection.close()
            engine = make_engine(postgres_url)
            async with engine.begin() as conn:
                for service in SERVICES:
                    await conn.execute(text(f'DROP SCHEMA IF EXISTS "g{tag}_{service}" CASCADE'))
            await engine.dispose()


async def test_pushed_parts_flow_through_the_gateway_to_maintenance(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway, headers={"Authorization": f"Bearer {token('planner')}"},
                                 timeout=10) as client:
        async def ok(method: str, url: str, status: int = 200, **kw: Any) -> Any:
            response = await client.request(method, url, **kw)
            assert response.status_code == status, f"{method} {url}: {response.status_code} {response.text}"
            return response.json() if response.content else None

        for service in SERVICES:
            spec = await ok("GET", f"/api/{service}/openapi.json")
            assert spec["paths"], service
        assert (await client.get("/api/nowhere")).status_code == 404  # nginx, not a service

        machine = (await ok("PUT", "/api/machines/", 201, json={"name": "Gateway VMC"}))["id"]
        process = await ok("PUT", "/api/processes/", 201, json={"machine_id": machine, "name": "Op 10",
                                                                "time_per_cycle": 30.0, "parts_per_cycle": 2})
        await ok("POST", f"/api/processes/{process['id']}/changeover/{process['id']}", params={"planned": 1})

        async def item_once_known() -> dict[str, Any] | None:
            response = await client.put("/api/maintenance/items/", json={
                "item_type": "task", "name": "Way lube", "machine_id": machine,
                "schedule_mode": 1, "timer_interval": 1.0, "warning_interval": 0.5})
            if response.status_code == 400 and "machine" in response.text:
                return None  # maintenance has not heard machine.upserted yet
            assert response.status_code == 201, response.text
            return response.json()

        item = await wait_for(item_once_known, timeout=20, interval=0.1)
        assert item["cycle_timer"] == 0

        now = time.time()
        pushed = await ok("POST", f"/api/collector/machines/{machine}/events",
                          headers={"Authorization": f"Bearer {token('machine')}"},
                          json=[{"timestamp": now - 120, "key": "PartCountAct", "value": 0},
                                {"timestamp": now - 60, "key": "PartCountAct", "value": 1},
                                {"timestamp": now, "key": "PartCountAct", "value": 2}])
        assert pushed["rejected"] == [] and pushed["events"] >= 2, pushed

        async def timer() -> float | None:
            found = await ok("GET", f"/api/maintenance/items/{item['id']}")
            return found["cycle_timer"] if found["cycle_timer"] >= 60 else None

        assert await wait_for(timer, timeout=20, interval=0.1) == 60.0  # two cycles of 30 minutes
        parts = await ok("GET", "/api/parts/", params={"machine_id": machine})
        assert sum(p["count"] for p in parts.values()) == 4
