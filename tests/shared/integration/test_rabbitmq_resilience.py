"""The RabbitMQ transport across a broker restart (`rabbitmqctl stop_app` / `start_app`).

The contract asserted here:
- while the broker is down, `ready()` is False and `publish` raises PublishError at once
  (it does not wait for the reconnect; the caller — the outbox relay — retries);
- the robust connection comes back by itself, restores the consumer, and `publish`
  succeeds again;
- nothing confirmed is lost: every message published before the outage and every message
  published after it reaches the consumer; messages delivered but not yet acked when the
  broker went down are delivered again (settling the stale copy does not raise).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections import Counter
from urllib.parse import urlsplit

import pytest

from shared.testing.plugin import RabbitMQFactory, is_local, run_command, skip_unless_ci, unique_name, wait_until
from shared.transport.base import InboundMessage, OutboundMessage, PublishError, Transport

pytestmark = pytest.mark.integration


async def rabbitmqctl(*args: str) -> None:
    await run_command("rabbitmqctl", *args, within=60)


async def port_answers(host: str, port: int) -> bool:
    try:
        async with asyncio.timeout(0.5):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def until_port(host: str, port: int, *, open_: bool, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while await port_answers(host, port) != open_:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{host}:{port} still {'closed' if open_ else 'open'} after {within}s")
        await asyncio.sleep(0.1)


@pytest.fixture
def local_broker(amqp_url: str) -> tuple[str, int]:
    parts = urlsplit(amqp_url)
    host = parts.hostname or "127.0.0.1"
    if not is_local(amqp_url) or shutil.which("rabbitmqctl") is None:
        skip_unless_ci("needs a local broker controllable with rabbitmqctl")
    return host, parts.port or 5672


async def until_not_ready(transport: Transport, within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if not await transport.ready():
                return
            await asyncio.sleep(0.05)


def batch(prefix: str, count: int) -> list[OutboundMessage]:
    return [OutboundMessage(routing_key="telemetry.part_completed", body=f'{{"n": "{prefix}{n}"}}'.encode(),
                            message_id=f"{prefix}{n}") for n in range(count)]


async def publish_retrying(transport: Transport, messages: list[OutboundMessage], within: float = 20.0) -> int:
    """Publish like the outbox relay does: retry the whole batch on PublishError. Returns failures."""
    failures = 0
    async with asyncio.timeout(within):
        while True:
            try:
                await transport.publish(messages)
                return failures
            except PublishError:
                failures += 1
                await asyncio.sleep(0.2)


async def test_consumer_and_publisher_survive_a_broker_restart(
    rabbitmq_transport_factory: RabbitMQFactory, local_broker: tuple[str, int]
) -> None:
    host, port = local_broker
    transport = await rabbitmq_transport_factory(reconnect_interval=0.5)
    queue = unique_name("q")
    received: list[InboundMessage] = []
    held: list[InboundMessage] = []  # delivered, deliberately not acked before the outage
    hold_ids = {f"held{n}" for n in range(5)}
    restarted = asyncio.Event()

    async def on_message(message: InboundMessage) -> None:
        received.append(message)
        if message.message_id in hold_ids and not restarted.is_set():
            held.append(message)
            return
        await message.ack()

    await transport.consume(queue, ["telemetry.#"], on_message, prefetch=50)
    before, unacked, after = batch("before", 50), batch("held", 5), batch("after", 50)
    await transport.publish(before + unacked)
    await wait_until(lambda: len(received) == 55)

    try:
        await rabbitmqctl("stop_app")
        await until_port(host, port, open_=False)
        await until_not_ready(transport)
        started = time.monotonic()
        with pytest.raises(PublishError):
            await transport.publish(batch("outage", 3))
        assert time.monotonic() - started < 1.0, "publish must fail fast while disconnected"
    finally:
        await rabbitmqctl("start_app")
        await until_port(host, port, open_=True)
    restarted.set()

    for stale in held:  # their channel died with the connection: settling must not raise
        await stale.ack()
    await publish_retrying(transport, after)  # may fail while the channels are restored
    assert await transport.ready()

    expected = {m.message_id for m in before + unacked + after}
    await wait_until(lambda: expected <= {m.message_id for m in received}, within=20)
    counts = Counter(m.message_id for m in received)
    assert all(counts[m.message_id] == 1 for m in before), "acked messages must not come back"
    assert all(counts[m.message_id] >= 2 for m in unacked), "unacked messages must be redelivered"
    # RabbitMQ 3.10 counts that redelivery in x-delivery-count (a restart spends delivery
    # budget); 4.x reportedly counts only explicit requeues, so nothing asserts on it here.
