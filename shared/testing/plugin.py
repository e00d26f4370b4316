"""pytest plugin (tests/conftest.py: `pytest_plugins = ["shared.testing.plugin"]`).

`postgres_url` / `amqp_url` find real infrastructure (see infra.py) and skip the test when
there is none, or fail it when TAKTLINE_REQUIRE_INTEGRATION=1 (CI). The transport
fixtures give each test its own exchanges and remove what the test declared afterwards,
so the shared broker stays clean.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
import pytest_asyncio

from shared.testing.infra import find_amqp_url, find_database_url, stop_containers
from shared.transport.base import OnMessage
from shared.transport.memory import MemoryTransport

if TYPE_CHECKING:
    from shared.transport.rabbitmq import RabbitMQTransport

RabbitMQFactory = Callable[..., Awaitable["RabbitMQTransport"]]


def unique_name(prefix: str = "taktline.test") -> str:
    """A broker object name no other test (or test run) uses."""
    return f"{prefix}.{uuid.uuid4().hex[:8]}"


async def wait_until(condition: Callable[[], bool], within: float = 10.0, interval: float = 0.01) -> None:
    """Poll `condition` until it holds; TimeoutError after `within` seconds (never a fixed sleep)."""
    async with asyncio.timeout(within):
        while True:
            if condition():
                return
            await asyncio.sleep(interval)


def skip_unless_ci(reason: str) -> None:
    """Skip on a user's machine that lacks a tool or service; under CI (`CI=true`) everything
    must run, so the same reason fails the test instead."""
    if os.environ.get("CI", "").lower() in ("1", "true"):
        pytest.fail(f"CI: {reason}", pytrace=False)
    pytest.skip(reason)


def is_local(url: str) -> bool:
    """Whether the URL's service runs on this machine (so a test may stop and start it)."""
    return urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


async def run_command(*args: str, within: float = 120) -> str:
    """Run a command (rabbitmqctl, pg_ctlcluster, …); its output, or AssertionError with it."""
    process = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.STDOUT)
    async with asyncio.timeout(within):
        out, _ = await process.communicate()
    text = out.decode(errors="replace")
    assert process.returncode == 0, f"{' '.join(args)} failed (exit {process.returncode}): {text}"
    return text


def _require(url: str | None, reason: str) -> str:
    if url is not None:
        return url
    if os.environ.get("TAKTLINE_REQUIRE_INTEGRATION") == "1":
        pytest.fail(f"integration infrastructure required but missing: {reason}")
    pytest.skip(reason)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    stop_containers()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return _require(*find_database_url())


@pytest.fixture(scope="session")
def database_url(postgres_url: str) -> str:
    """Alias of postgres_url (the name ARCHITECTURE/STYLE use)."""
    return postgres_url


@pytest.fixture(scope="session")
def amqp_url() -> str:
    return _require(*find_amqp_url())


@pytest_asyncio.fixture
async def memory_transport() -> AsyncIterator[MemoryTransport]:
    transport = MemoryTransport()
    await transport.start()
    yield transport
    await transport.close()


@pytest_asyncio.fixture
async def memory_transport_factory() -> AsyncIterator[Callable[..., Awaitable[MemoryTransport]]]:
    """`await make(delivery_limit=...)`: a started MemoryTransport, closed after the test."""
    made: list[MemoryTransport] = []

    async def make(**kwargs: Any) -> MemoryTransport:
        transport = MemoryTransport(**kwargs)
        made.append(transport)
        await transport.start()
        return transport

    yield make
    for transport in made:
        await transport.close()


@pytest_asyncio.fixture
async def rabbitmq_transport_factory(amqp_url: str) -> AsyncIterator[RabbitMQFactory]:
    """`await make(**kwargs)`: a started RabbitMQTransport on fresh exchanges (kwargs override)."""
    from shared.transport.rabbitmq import RabbitMQTransport

    class TrackedRabbitMQTransport(RabbitMQTransport):
        """Remembers the queues it declared, for the cleanup."""

        declared_queues: set[str]

        async def declare(self, queue: str, routing_keys: Sequence[str]) -> None:
            self.declared_queues.update((queue, f"{queue}.dead"))
            await super().declare(queue, routing_keys)

        async def consume(self, queue: str, routing_keys: Sequence[str], on_message: OnMessage, *,
                          prefetch: int = 500) -> None:
            self.declared_queues.update((queue, f"{queue}.dead"))
            await super().consume(queue, routing_keys, on_message, prefetch=prefetch)

    made: list[TrackedRabbitMQTransport] = []

    async def make(**kwargs: Any) -> RabbitMQTransport:
        name = unique_name()
        options: dict[str, Any] = {"exchange": name, "dead_exchange": f"{name}.dead", "reconnect_interval": 0.5}
        transport = TrackedRabbitMQTransport(amqp_url, **(options | kwargs))
        transport.declared_queues = set()
        made.append(transport)
        await transport.start()
        return transport

    yield make
    for transport in made:
        await _remove_topology(transport, sorted(transport.declared_queues))


@pytest_asyncio.fixture
async def rabbitmq_transport(rabbitmq_transport_factory: RabbitMQFactory) -> RabbitMQTransport:
    return await rabbitmq_transport_factory()


async def _remove_topology(transport: RabbitMQTransport, queues: Sequence[str]) -> None:
    """Delete the test's queues and exchanges through the transport's own connection.

    Uses the transport's internals on purpose: aio_pika may be imported only in
    shared/transport/rabbitmq.py, and production code has no business deleting topology.
    """
    with contextlib.suppress(Exception):  # a broker that is away must not hang the teardown
        async with asyncio.timeout(20):
            await transport._stop_consumers()
            await transport.start()  # no-op if running; reconnects if the test closed it
            for queue in queues:
                await _quietly(transport, lambda ch, q=queue: ch.queue_delete(q))
            for exchange in (transport.exchange, transport.dead_exchange):
                await _quietly(transport, lambda ch, x=exchange: ch.exchange_delete(x))
    with contextlib.suppress(Exception):
        await transport.close()


async def _quietly(transport: RabbitMQTransport, action: Callable[[Any], Awaitable[object]]) -> None:
    # A channel per operation: a failed one closes its channel, the next one still works.
    channel = await transport._open_channel()
    try:
        with contextlib.suppress(Exception):
            await action(channel)
    finally:
        with contextlib.suppress(Exception):
            await channel.close()
