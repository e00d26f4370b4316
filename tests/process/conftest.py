"""Harness for the process service: its app on SQLite or PostgreSQL, tokens, published events."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text

from services.process.app import spec
from shared.events import Envelope, Payload, envelopes_in
from shared.runtime import ServiceRuntime, build_app
from shared.settings import Settings
from shared.transport.base import OutboundMessage
from shared.transport.memory import MemoryTransport

SECRET = "test-secret-" + "x" * 32
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.integration)]


class RecordingTransport(MemoryTransport):
    """The in-memory transport, remembering everything published (for assertions)."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[OutboundMessage] = []

    async def publish(self, messages: Sequence[OutboundMessage]) -> None:
        self.published.extend(messages)
        await super().publish(messages)


@dataclass
class Harness:
    client: httpx.AsyncClient
    runtime: ServiceRuntime
    transport: RecordingTransport
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, role: str = "admin") -> dict[str, str]:
        if role not in self.tokens:
            authenticator = self.client._transport.app.state.authenticator  # type: ignore[attr-defined]
            self.tokens[role] = authenticator.mint(f"{role}-user", [role])
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    async def call(self, method: str, url: str, role: str = "admin", **kwargs: Any) -> httpx.Response:
        return await self.client.request(method, url, headers=self.auth(role), **kwargs)

    async def ok(self, method: str, url: str, status: int = 200, role: str = "admin", **kwargs: Any) -> Any:
        response = await self.call(method, url, role, **kwargs)
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    async def flush_outbox(self) -> None:
        """Until the outbox is empty: the background relay may hold a claim (and the lock) right now."""
        import asyncio

        async with asyncio.timeout(10):
            while True:
                await self.runtime.relay.publish_pending()
                if not await self.runtime.relay.pending():
                    return
                await asyncio.sleep(0.01)

    async def events(self, type: str | None = None) -> list[Envelope]:
        await self.flush_outbox()
        found = [e for m in self.transport.published for e in envelopes_in(m.body)]
        return [e for e in found if type is None or e.type == type]

    # Shorthands for the objects most tests need.
    async def machine(self, name: str = "Haas VF-2", **fields: Any) -> dict[str, Any]:
        return await self.ok("PUT", "/api/machines/", 201, json={"name": name, **fields})

    async def process(self, machine_id: int, name: str = "Bracket op10", **fields: Any) -> dict[str, Any]:
        return await self.ok("PUT", "/api/processes/", 201, json={"machine_id": machine_id, "name": name, **fields})

    async def program(self, machine_id: int, filename: str, process_id: int | None = None) -> dict[str, Any]:
        return await self.ok("PUT", "/api/programs/", 201,
                             json={"machine_id": machine_id, "filename": filename, "process_id": process_id})

    async def assembly(self, machine_id: int, location: str | None, process_id: int | None = None,
                       tools: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return await self.ok("PUT", "/api/toolAssemblies/", 201, json={
            "machine_id": machine_id, "location": location, "process_id": process_id, "tools": tools or []})


@dataclass
class Delivery:
    """An InboundMessage handed to the consumer directly, so the batch is exactly these."""

    body: bytes
    routing_key: str
    message_id: str | None
    delivery_count: int = 0
    settled: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, payload: Payload, producer: str = "collector") -> Delivery:
        envelope = Envelope.wrap(payload, producer)
        return cls(envelope.to_bytes(), payload.type, str(envelope.id))

    async def ack(self) -> None:
        self.settled.append("ack")

    async def reject(self, requeue: bool = False) -> None:
        self.settled.append("requeue" if requeue else "dead")


@contextmanager
def statements_of(api: Harness) -> Iterator[list[str]]:
    """The SQL the service's engine runs inside the block, whitespace folded."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        seen.append(" ".join(statement.split()))

    engine = api.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)



async def _drop_schema(url: str, schema: str) -> None:
    from shared.db import make_engine

    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await engine.dispose()


@pytest.fixture(params=BACKENDS)
async def api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    """The process service over HTTP on one backend; each test gets an empty database."""
    prefix = ""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        prefix = f"t{uuid.uuid4().hex[:10]}_"
    else:
        url = f"sqlite:///{tmp_path / 'process.db'}"
    settings = Settings(database_url=url, database_schema_prefix=prefix, auth_secret=SECRET, data_dir=tmp_path,
                        relay_interval=3600, _env_file=None)  # type: ignore[call-arg]
    transport = RecordingTransport()
    runtime = ServiceRuntime(spec(), settings, transport)
    app = build_app([runtime], settings, transport)
    try:
        async with app.router.lifespan_context(app):
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://taktline.test")
            async with client:
                yield Harness(client=client, runtime=runtime, transport=transport)
    finally:
        if prefix:
            await _drop_schema(url, f"{prefix}process")


async def wait_for(check: Any, timeout: float = 15.0, interval: float = 0.02) -> Any:  # noqa: ASYNC109
    """Poll an async `check` until it returns something truthy (asynchronous outcomes)."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(interval)
