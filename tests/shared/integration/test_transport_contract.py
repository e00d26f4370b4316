"""One contract, two transports: what shared/transport/base.py promises, on memory and RabbitMQ."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aio_pika
import pytest

from shared.events import Envelope, ToolChanged, envelopes_in
from shared.testing.plugin import unique_name, wait_until
from shared.transport.base import InboundMessage, OutboundMessage, Transport, ack_batch, pack
from shared.transport.memory import MemoryTransport

Make = Callable[..., Awaitable[Transport]]


@dataclass
class Backend:
    """How to build a transport and how to look into its dead-letter queue."""

    make: Make
    amqp_url: str | None = None
    _dead: dict[str, list[tuple[bytes, str | None]]] = field(default_factory=dict)

    async def dead_letters(self, transport: Transport, queue: str) -> list[tuple[bytes, str | None]]:
        """(body, message_id) of everything dead-lettered from `queue` so far."""
        if isinstance(transport, MemoryTransport):
            return [(m.body, m.message_id) for m in transport.dead_letters(queue)]
        seen = self._dead.setdefault(queue, [])
        assert self.amqp_url is not None
        async with await aio_pika.connect(self.amqp_url) as connection:
            channel = await connection.channel()
            dead = await channel.declare_queue(f"{queue}.dead", passive=True)
            while (message := await dead.get(no_ack=True, fail=False)) is not None:
                seen.append((message.body, message.message_id))
        return seen

    async def eventually_dead(self, transport: Transport, queue: str) -> list[tuple[bytes, str | None]]:
        async with asyncio.timeout(10):
            while True:
                if dead := await self.dead_letters(transport, queue):
                    return dead
                await asyncio.sleep(0.05)


@pytest.fixture(params=["memory", "rabbitmq"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        return Backend(request.getfixturevalue("memory_transport_factory"))
    return Backend(request.getfixturevalue("rabbitmq_transport_factory"), request.getfixturevalue("amqp_url"))


def outbound(key: str, n: int) -> OutboundMessage:
    return OutboundMessage(routing_key=key, body=f'{{"n": {n}}}'.encode(), message_id=f"id-{n}",
                           headers={"producer": "contract"})


def recorder(got: list[InboundMessage], settle: str = "ack") -> Callable[[InboundMessage], Awaitable[None]]:
    async def on_message(message: InboundMessage) -> None:
        got.append(message)
        if settle == "ack":
            await message.ack()
        elif settle == "dead":
            await message.reject(requeue=False)
        elif settle == "requeue":
            await message.reject(requeue=True)

    return on_message


async def test_rabbitmq_sends_a_published_round_in_a_few_socket_writes(rabbitmq_transport_factory: Make) -> None:
    # aiormq writes frame by frame; the connection's writer sends each event-loop pass at once.
    transport = await rabbitmq_transport_factory()
    writer = transport._connection.kwargs["transport_factory"].writer  # type: ignore[attr-defined]
    frames, sends = writer.frames, writer.sends
    await transport.publish([outbound("telemetry.k", n) for n in range(300)])
    assert writer.frames - frames >= 300
    assert writer.sends - sends <= 10


class TestPublishAndConsume:
    async def test_delivers_every_message_in_publish_order_with_body_and_id_intact(self, backend: Backend) -> None:
        transport = await backend.make()
        queue, got = unique_name("q"), []
        await transport.consume(queue, ["telemetry.*"], recorder(got))
        sent = [outbound(f"telemetry.k{n % 4}", n) for n in range(300)]
        await transport.publish(sent)
        await wait_until(lambda: len(got) == len(sent))
        assert [(m.routing_key, m.body, m.message_id, m.delivery_count) for m in got] == [
            (m.routing_key, m.body, m.message_id, 0) for m in sent
        ]

    async def test_packed_events_arrive_whole_and_in_order(self, backend: Backend) -> None:
        transport = await backend.make()
        queue, got = unique_name("q"), []
        await transport.consume(queue, ["telemetry.*"], recorder(got))
        envelopes = [Envelope.wrap(ToolChanged(machine_id=1, timestamp=n, tool=f"T{n}"), "collector") for n in range(7)]
        sent = pack([(e.type, str(e.id), e.to_bytes()) for e in envelopes], per_message=3, producer="contract")
        await transport.publish(sent)
        await wait_until(lambda: len(got) == 3)
        assert [m.message_id for m in got] == [f"{envelopes[0].id}+2", f"{envelopes[3].id}+2", str(envelopes[6].id)]
        assert [e for m in got for e in envelopes_in(m.body)] == envelopes

    async def test_delivers_only_the_bound_routing_keys(self, backend: Backend) -> None:
        transport = await backend.make()
        queue, got = unique_name("q"), []
        await transport.consume(queue, ["telemetry.*", "process.part_recorded"], recorder(got))
        keys = ["telemetry.part_completed", "telemetry.a.b", "process.part_recorded", "process.upserted",
                "maintenance.item_due", "telemetry.alarm_raised", "telemetry"]
        await transport.publish([outbound(key, n) for n, key in enumerate(keys)])
        # Delivery is ordered, so once the last bound message is in, nothing unbound slipped through.
        await transport.publish([outbound("process.part_recorded", 99)])
        await wait_until(lambda: bool(got) and got[-1].message_id == "id-99")
        assert [m.routing_key for m in got] == [
            "telemetry.part_completed", "process.part_recorded", "telemetry.alarm_raised", "process.part_recorded",
        ]

    async def test_keeps_messages_for_a_declared_queue_until_it_is_consumed(self, backend: Backend) -> None:
        transport = await backend.make()
        queue, got = unique_name("q"), []
        await transport.declare(queue, ["sync.requested"])  # type: ignore[attr-defined]
        await transport.publish([outbound("sync.requested", 1)])
        await transport.consume(queue, ["sync.requested"], recorder(got))
        await wait_until(lambda: len(got) == 1)
        assert got[0].message_id == "id-1"

    async def test_publishing_nothing_is_a_no_op(self, backend: Backend) -> None:
        transport = await backend.make()
        await transport.publish([])


class TestDeadLetters:
    async def test_reject_without_requeue_lands_in_the_dead_letter_queue(self, backend: Backend) -> None:
        transport = await backend.make()
        queue, got = unique_name("q"), []
        await transport.consume(queue, ["process.upserted"], recorder(got, "dead"))
        await transport.publish([outbound("process.upserted", 1)])
        await wait_until(lambda: len(got) == 1)
        dead = await backend.eventually_dead(transport, queue)
        assert dead == [(b'{"n": 1}', "id-1")]

    async def test_requeue_redelivers_with_rising_count_until_the_limit_then_dead_letters(
        self, backend: Backend
    ) -> None:
        transport = await backend.make(delivery_limit=2)
        queue, got = unique_name("q"), []
        await transport.consume(queue, ["process.upserted"], recorder(got, "requeue"), prefetch=1)
        await transport.publish([outbound("process.upserted", 1)])
        await wait_until(lambda: len(got) == 3)
        assert [m.delivery_count for m in got] == [0, 1, 2]
        assert all(m.message_id == "id-1" for m in got)
        dead = await backend.eventually_dead(transport, queue)
        assert dead == [(b'{"n": 1}', "id-1")]
        assert len(got) == 3  # dead-lettered, not delivered a fourth time


class TestLifecycle:
    async def test_is_ready_after_start_and_not_after_close(self, backend: Backend) -> None:
        transport = await backend.make()
        assert await transport.ready()
        await transport.start()  # idempotent
        assert await transport.ready()
        await transport.close()
        assert not await transport.ready()
        await transport.close()  # idempotent
        assert not await transport.ready()


async def test_a_rabbitmq_batch_ack_settles_exactly_the_batch(rabbitmq_transport_factory: Make) -> None:
    """One multiple-ack for the batch: what was acked is gone, what was not comes back."""
    first = await rabbitmq_transport_factory()
    queue, got = unique_name("q"), []

    async def hold(message: InboundMessage) -> None:
        got.append(message)

    await first.consume(queue, ["telemetry.*"], hold)
    await first.publish([outbound("telemetry.k", n) for n in range(100)])
    await wait_until(lambda: len(got) == 100)
    await ack_batch(got[:60])
    await first.close()  # the 40 unacked go back to the queue

    again: list[InboundMessage] = []
    second = await rabbitmq_transport_factory(exchange=first.exchange, dead_exchange=first.dead_exchange)
    await second.consume(queue, ["telemetry.*"], recorder(again))
    await wait_until(lambda: len(again) == 40)
    await asyncio.sleep(0.3)  # nothing else arrives
    assert [m.message_id for m in again] == [f"id-{n}" for n in range(60, 100)]


async def test_a_rabbitmq_consumer_comes_back_after_the_broker_cancels_it(rabbitmq_transport_factory: Make,
                                                                          amqp_url: str) -> None:
    """A deleted queue cancels its consumer; the connection recovers and declares, binds and
    consumes it again, so what is published afterwards still arrives."""
    transport = await rabbitmq_transport_factory()
    queue, got = unique_name("q"), []
    await transport.consume(queue, ["telemetry.*"], recorder(got))
    await transport.publish([outbound("telemetry.k", 0)])
    await wait_until(lambda: len(got) == 1)
    async with await aio_pika.connect(amqp_url) as connection:
        await (await connection.channel()).queue_delete(queue)

    async def delivered_after_recovery() -> bool:
        try:
            await transport.publish([outbound("telemetry.k", len(got))])
        except Exception:
            return False  # still reconnecting
        await asyncio.sleep(0.3)
        return len(got) > 1

    for _ in range(40):  # ~20 s
        if await delivered_after_recovery():
            break
        await asyncio.sleep(0.2)
    else:
        pytest.fail("the consumer did not come back")
    assert got[-1].message_id.startswith("id-") and got[-1].body.startswith(b'{"n": ')
