"""The three services as separate OS processes behind nginx, as `make run-services` runs them.

`stack_factory` starts deploy/local/run_services.py's Stack (the same launcher and rendered
nginx config) on free ports, with its own schemas, exchanges and queues, and removes them
afterwards. `Gateway` is an HTTP client for it that asserts status codes.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from shared.settings import SERVICES
from shared.testing.plugin import skip_unless_ci
from shared.testing.stack import free_port, load_launcher
from tests.process.conftest import SECRET, wait_for
from tests.topology import remove_test_objects

launcher = load_launcher()


def token(role: str) -> str:
    return jwt.encode({"sub": f"{role}-user", "roles": [role], "exp": 4_000_000_000}, SECRET, algorithm="HS256")


class Gateway:
    def __init__(self, stack: Any) -> None:
        self.stack = stack
        self.url: str = stack.gateway
        self.client = httpx.AsyncClient(base_url=self.url, headers={"Authorization": f"Bearer {token('planner')}"},
                                        timeout=10)

    async def ok(self, method: str, url: str, status: int = 200, **kw: Any) -> Any:
        response = await self.client.request(method, url, **kw)
        assert response.status_code == status, f"{method} {url}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    async def machine_with_process(self, name: str, **process: Any) -> tuple[int, int]:
        machine = (await self.ok("PUT", "/api/machines/", 201, json={"name": name}))["id"]
        made = await self.ok("PUT", "/api/processes/", 201, json={"machine_id": machine, "name": "Op 10", **process})
        await self.ok("POST", f"/api/processes/{made['id']}/changeover/{made['id']}", params={"planned": 1})
        return machine, made["id"]

    async def item_once_known(self, body: dict[str, Any], within: float = 20) -> dict[str, Any]:
        """Create a maintenance item as soon as maintenance has heard of its machine."""
        async def create() -> dict[str, Any] | None:
            response = await self.client.put("/api/maintenance/items/", json=body)
            if response.status_code == 400 and response.json().get("field") in ("machine_id", "process_id"):
                return None  # machine.upserted / process.upserted has not arrived yet
            assert response.status_code == 201, response.text
            return response.json()  # type: ignore[no-any-return]

        return await wait_for(create, timeout=within, interval=0.1)  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self.client.aclose()


StackFactory = Callable[..., Awaitable[Any]]


@pytest.fixture
def nginx() -> str:
    found = launcher.find_nginx()
    if found is None:
        skip_unless_ci("nginx is not installed (apt-get install nginx-light); the gateway tests need it")
    return found  # type: ignore[no-any-return]


@pytest.fixture
async def stack_factory(nginx: str, postgres_url: str, amqp_url: str, tmp_path: Path) -> AsyncIterator[StackFactory]:
    """`await make(**env)`: a started Stack (TAKTLINE_* overrides in env); one per test."""
    tag = uuid.uuid4().hex[:8]
    made: list[Any] = []
    exchange, dead_exchange = f"taktline.test.{tag}", f"taktline.test.{tag}.dead"

    async def make(**overrides: str) -> Any:
        assert not made, "one stack per test"
        env = launcher.service_env(
            os.environ, TAKTLINE_DATABASE_URL=postgres_url, TAKTLINE_DATABASE_SCHEMA_PREFIX=f"g{tag}_",
            TAKTLINE_AMQP_URL=amqp_url, TAKTLINE_EXCHANGE=exchange, TAKTLINE_DEAD_EXCHANGE=dead_exchange,
            TAKTLINE_QUEUE_PREFIX=f"g{tag}.", TAKTLINE_AUTH_SECRET=SECRET,
            TAKTLINE_DATA_DIR=str(tmp_path / "data"), **overrides)
        stack = launcher.Stack(env, tmp_path / "nginx", ports={name: free_port() for name in SERVICES},
                               gateway_port=free_port(), log_dir=tmp_path / "logs", nginx=nginx)
        made.append(stack)
        await stack.start(within=30)
        return stack

    try:
        yield make
    finally:
        try:
            for stack in made:
                codes = await stack.stop()
                # uvicorn re-raises SIGTERM after a graceful shutdown (-15); nginx exits 0.
                for name, code in codes.items():
                    if name == "nginx":
                        continue
                    assert code in (0, -15), f"{name}: exit {code}\n{stack.log_tail(name)}"
                    assert "Application shutdown complete" in stack.log_tail(name, 100_000), stack.log_tail(name)
        finally:
            await remove_test_objects(
                amqp_url, postgres_url, queues=[f"g{tag}.{s}{dead}" for s in SERVICES for dead in ("", ".dead")],
                exchanges=(exchange, dead_exchange), schemas=[f"g{tag}_{s}" for s in SERVICES])


@pytest.fixture
async def gateway(stack_factory: StackFactory) -> AsyncIterator[Gateway]:
    client = Gateway(await stack_factory())
    try:
        yield client
    finally:
        await client.close()
