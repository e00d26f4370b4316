from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from shared.testing.plugin import wait_until
from shared.transport.base import InboundMessage, OutboundMessage, PublishError
from shared.transport.memory import MemoryTransport, topic_matches


def message(key: str, n: int = 0) -> OutboundMessage:
    return OutboundMessage(routing_key=key, body=f"{key}:{n}".encode(), message_id=f"{key}-{n}")


def collector(sink: list[InboundMessage], settle: Callable[[InboundMessage], Awaitable[None]] | None = None):
    async def on_message(m: InboundMessage) -> None:
        sink.append(m)
        if settle is not None:
            await settle(m)

    return on_message


async def ack(m: InboundMessage) -> None:
    await m.ack()


class TestTopicMatches:
    @pytest.mark.parametrize(
        ("pattern", "key", "expected"),
        [
            ("telemetry.part_completed", "telemetry.part_completed", True),
            ("telemetry.part_completed", "telemetry.alarm_raised", False),
            ("telemetry.*", "telemetry.part_completed", True),
            ("telemetry.*", "telemetry.a.b", False),
            ("telemetry.*", "telemetry", False),
            ("*.part_completed", "telemetry.part_completed", True),
            ("*", "telemetry", True),
            ("*", "telemetry.part_completed", False),
            ("#", "telemetry.part_completed", True),
            ("#", "a.b.c.d", True),
            ("#", "", True),
            ("telemetry.#", "telemetry", True),
            ("telemetry.#", "telemetry.part_completed", True),
            ("telemetry.#", "telemetry.a.b", True),
            ("telemetry.#", "process.part_recorded", False),
            ("telemetry.#", "telemetryx.a", False),
            ("#.part_completed", "telemetry.part_completed", True),
            ("#.part_completed", "part_completed", True),
            ("a.#.z", "a.z", True),
            ("a.#.z", "a.b.c.z", True),
            ("a.#.z", "a.b.c", False),
            ("a.*.#", "a", False),
            ("a.*.#", "a.b", True),
            ("a.*.#", "a.b.c.d", True),
        ],
    )
    def test_matches_like_an_amqp_topic_exchange(self, pattern: str, key: str, expected: bool) -> None:
        assert topic_matches(pattern, key) is expected


class TestPublish:
    async def test_raises_publish_error_before_start_and_after_close(self) -> None:
        transport = MemoryTransport()
        with pytest.raises(PublishError):
            await transport.publish([message("a.b")])
        await transport.start()
        assert await transport.ready()
        await transport.close()
        assert not await transport.ready()
        with pytest.raises(PublishError):
            await transport.publish([message("a.b")])

    async def test_drops_messages_published_before_the_queue_exists(self, memory_transport: MemoryTransport) -> None:
        await memory_transport.publish([message("a.b", 1)])
        got: list[InboundMessage] = []
        await memory_transport.consume("q", ["a.b"], collector(got, ack))
        await memory_transport.publish([message("a.b", 2)])
        await wait_until(lambda: len(got) == 1)
        await asyncio.sleep(0.01)
        assert [m.body for m in got] == [b"a.b:2"]

    async def test_keeps_messages_for_a_declared_queue_until_it_is_consumed(
        self, memory_transport: MemoryTransport
    ) -> None:
        await memory_transport.declare("q", ["a.*"])
        await memory_transport.publish([message("a.b", 1), message("x.y", 2)])
        assert memory_transport.pending("q") == 1
        got: list[InboundMessage] = []
        await memory_transport.consume("q", ["a.*"], collector(got, ack))
        await wait_until(lambda: len(got) == 1)
        assert got[0].message_id == "a.b-1"

    async def test_delivers_once_per_queue_even_when_several_bindings_match(
        self, memory_transport: MemoryTransport
    ) -> None:
        got: list[InboundMessage] = []
        await memory_transport.consume("q", ["a.*", "#", "a.b"], collector(got, ack))
        await memory_transport.publish([message("a.b")])
        await wait_until(lambda: len(got) == 1)
        await asyncio.sleep(0.01)
        assert len(got) == 1


class TestConsume:
    async def test_preserves_publish_order(self, memory_transport: MemoryTransport) -> None:
        got: list[InboundMessage] = []

        async def slow_ack(m: InboundMessage) -> None:
            await asyncio.sleep(0)  # yields between messages: order must still hold
            await m.ack()

        await memory_transport.consume("q", ["m.#"], collector(got, slow_ack))
        await memory_transport.publish([message(f"m.{n % 3}", n) for n in range(100)])
        await wait_until(lambda: len(got) == 100)
        assert [m.message_id for m in got] == [f"m.{n % 3}-{n}" for n in range(100)]

    async def test_stops_at_prefetch_unacked_messages(self, memory_transport: MemoryTransport) -> None:
        got: list[InboundMessage] = []
        await memory_transport.consume("q", ["a.b"], collector(got), prefetch=3)
        await memory_transport.publish([message("a.b", n) for n in range(5)])
        await wait_until(lambda: len(got) == 3)
        await asyncio.sleep(0.01)
        assert len(got) == 3
        await got[0].ack()
        await wait_until(lambda: len(got) == 4)

    async def test_ack_twice_raises(self, memory_transport: MemoryTransport) -> None:
        got: list[InboundMessage] = []
        await memory_transport.consume("q", ["a.b"], collector(got, ack))
        await memory_transport.publish([message("a.b")])
        await wait_until(lambda: len(got) == 1)
        with pytest.raises(RuntimeError):
            await got[0].ack()

    async def test_reject_without_requeue_dead_letters(self, memory_transport: MemoryTransport) -> None:
        got: list[InboundMessage] = []

        async def reject(m: InboundMessage) -> None:
            await m.reject(requeue=False)

        await memory_transport.consume("q", ["a.b"], collector(got, reject))
        await memory_transport.publish([message("a.b", 7)])
        await wait_until(lambda: len(memory_transport.dead_letters("q")) == 1)
        assert memory_transport.dead_letters("q")[0].message_id == "a.b-7"
        assert len(got) == 1

    async def test_requeue_redelivers_first_with_rising_count_then_dead_letters_past_the_limit(self) -> None:
        transport = MemoryTransport(delivery_limit=2)
        await transport.start()
        got: list[InboundMessage] = []

        async def requeue_poison(m: InboundMessage) -> None:
            await m.reject(requeue=True) if m.body == b"a.b:0" else await m.ack()

        try:
            await transport.consume("q", ["a.b"], collector(got, requeue_poison), prefetch=1)
            await transport.publish([message("a.b", 0), message("a.b", 1)])
            await wait_until(lambda: len(got) == 4)
            # Like a RabbitMQ 3.x quorum queue: the requeued message comes back before the next one.
            assert [(m.body, m.delivery_count) for m in got] == [
                (b"a.b:0", 0), (b"a.b:0", 1), (b"a.b:0", 2), (b"a.b:1", 0),
            ]
            await wait_until(lambda: len(transport.dead_letters("q")) == 1)
        finally:
            await transport.close()

    async def test_requeues_when_on_message_raises(self, memory_transport: MemoryTransport) -> None:
        seen: list[int] = []

        async def flaky(m: InboundMessage) -> None:
            seen.append(m.delivery_count)
            if m.delivery_count == 0:
                raise ValueError("transient")
            await m.ack()

        await memory_transport.consume("q", ["a.b"], flaky)
        await memory_transport.publish([message("a.b")])
        await wait_until(lambda: seen == [0, 1])

    async def test_second_consumer_on_a_queue_is_refused(self, memory_transport: MemoryTransport) -> None:
        await memory_transport.consume("q", ["a.b"], collector([]))
        with pytest.raises(RuntimeError):
            await memory_transport.consume("q", ["a.b"], collector([]))
