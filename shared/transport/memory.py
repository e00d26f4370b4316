"""In-process transport: the embedded single-process mode and fast unit tests.

Mirrors what RabbitMQ does with our topology (see rabbitmq.py): topic routing with `*` and
`#`, a message published before any queue is bound goes nowhere, each queue is delivered
in order from one task with at most `prefetch` unacknowledged, a requeued message goes
back to the head of its queue (RabbitMQ 3.x quorum queues do the same) with its delivery
count raised, and once the count passes `delivery_limit` it is dead-lettered instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from shared.transport.base import OnMessage, OutboundMessage, PublishError

log = logging.getLogger("taktline.transport.memory")


def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: words split on '.', `*` is one word, `#` zero or more."""
    return _match(tuple(_words(pattern)), tuple(_words(routing_key)))


def _words(key: str) -> list[str]:
    return key.split(".") if key else []


@lru_cache(maxsize=4096)
def _match(pattern: tuple[str, ...], key: tuple[str, ...]) -> bool:
    if not pattern:
        return not key
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, key[i:]) for i in range(len(key) + 1))
    return bool(key) and head in ("*", key[0]) and _match(rest, key[1:])


@dataclass(slots=True)
class _Queue:
    name: str
    bindings: set[str] = field(default_factory=set)
    items: deque[tuple[OutboundMessage, int]] = field(default_factory=deque)
    dead: list[OutboundMessage] = field(default_factory=list)
    available: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def put(self, message: OutboundMessage, delivery_count: int, *, front: bool = False) -> None:
        if front:
            self.items.appendleft((message, delivery_count))
        else:
            self.items.append((message, delivery_count))
        self.available.set()

    async def get(self) -> tuple[OutboundMessage, int]:
        while not self.items:
            self.available.clear()
            await self.available.wait()
        return self.items.popleft()


class MemoryInbound:
    """One delivery from a memory queue; settles exactly once."""

    __slots__ = ("_message", "_on_settle", "_queue", "_transport", "body", "delivery_count", "message_id",
                 "routing_key")

    def __init__(self, transport: MemoryTransport, queue: _Queue, message: OutboundMessage, delivery_count: int,
                 on_settle: asyncio.Semaphore) -> None:
        self._transport = transport
        self._queue = queue
        self._message = message
        self._on_settle: asyncio.Semaphore | None = on_settle
        self.body = message.body
        self.routing_key = message.routing_key
        self.message_id: str | None = message.message_id
        self.delivery_count = delivery_count

    async def ack(self) -> None:
        self._settle()

    async def reject(self, requeue: bool = False) -> None:
        self._settle()
        if requeue and self.delivery_count + 1 <= self._transport.delivery_limit:
            self._queue.put(self._message, self.delivery_count + 1, front=True)
        else:
            self._queue.dead.append(self._message)

    @property
    def settled(self) -> bool:
        return self._on_settle is None

    def _settle(self) -> None:
        if self._on_settle is None:
            raise RuntimeError(f"message {self.message_id} already acked or rejected")
        self._on_settle.release()
        self._on_settle = None


class MemoryTransport:
    def __init__(self, *, delivery_limit: int = 20) -> None:
        self.delivery_limit = delivery_limit
        self._queues: dict[str, _Queue] = {}
        self._running = False

    async def start(self) -> None:
        self._running = True

    async def close(self) -> None:
        self._running = False
        tasks = [q.task for q in self._queues.values() if q.task is not None]
        for queue in self._queues.values():
            queue.task = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def ready(self) -> bool:
        return self._running

    async def publish(self, messages: Sequence[OutboundMessage]) -> None:
        if not self._running:
            raise PublishError("memory transport is not started")
        for message in messages:
            for queue in self._queues.values():
                if any(topic_matches(key, message.routing_key) for key in queue.bindings):
                    queue.put(message, 0)

    async def declare(self, queue: str, routing_keys: Sequence[str]) -> None:
        """Create `queue` (if new) and bind it, so it collects messages before anyone consumes."""
        self._queues.setdefault(queue, _Queue(queue)).bindings.update(routing_keys)

    async def consume(
        self,
        queue: str,
        routing_keys: Sequence[str],
        on_message: OnMessage,
        *,
        prefetch: int = 500,
    ) -> None:
        if not self._running:
            raise RuntimeError("memory transport is not started")
        await self.declare(queue, routing_keys)
        target = self._queues[queue]
        if target.task is not None:
            raise RuntimeError(f"queue {queue} already has a consumer")
        target.task = asyncio.create_task(self._deliver(target, on_message, prefetch), name=f"memory-deliver:{queue}")

    def dead_letters(self, queue: str) -> list[OutboundMessage]:
        """What was dead-lettered from `queue` (RabbitMQ's `<queue>.dead`), oldest first."""
        found = self._queues.get(queue)
        return list(found.dead) if found else []

    def pending(self, queue: str) -> int:
        """Messages waiting in `queue`, not yet delivered."""
        found = self._queues.get(queue)
        return len(found.items) if found else 0

    async def _deliver(self, queue: _Queue, on_message: OnMessage, prefetch: int) -> None:
        unacked = asyncio.Semaphore(prefetch)
        while True:
            await unacked.acquire()
            message, count = await queue.get()
            inbound = MemoryInbound(self, queue, message, count, unacked)
            try:
                await on_message(inbound)
            except Exception:
                log.exception("on_message for queue %s failed; requeueing", queue.name)
                if not inbound.settled:
                    await inbound.reject(requeue=True)
