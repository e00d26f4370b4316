"""The transport interface: how services put events on the bus and take them off.

Two implementations: `rabbitmq.RabbitMQTransport` (production, integration tests) and
`memory.MemoryTransport` (embedded single-process mode, fast unit tests). Both give the
same semantics: publish returns only once every message is confirmed; consumers get one
durable queue each, bound to the routing keys they handle; `ack` after commit; `reject`
without requeue dead-letters to `<queue>.dead`; `reject(requeue=True)` redelivers, bounded
by the delivery limit, after which the message is dead-lettered too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from shared.events import Envelope


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    routing_key: str
    body: bytes
    message_id: str
    headers: dict[str, str | int] = field(default_factory=dict)

    @classmethod
    def from_envelope(cls, envelope: Envelope) -> OutboundMessage:
        return cls(
            routing_key=envelope.type,
            body=envelope.to_bytes(),
            message_id=str(envelope.id),
            headers={"version": envelope.version, "producer": envelope.producer},
        )


@runtime_checkable
class InboundMessage(Protocol):
    body: bytes
    routing_key: str
    message_id: str | None
    delivery_count: int

    async def ack(self) -> None: ...

    async def reject(self, requeue: bool = False) -> None: ...


OnMessage = Callable[[InboundMessage], Awaitable[None]]


async def ack_batch(messages: Sequence[InboundMessage]) -> None:
    """Acknowledge a batch, in delivery order. A transport whose messages define a static
    `ack_batch` settles it its own way (RabbitMQ: one multiple-ack per channel)."""
    if not messages:
        return
    batched = getattr(type(messages[0]), "ack_batch", None)
    if batched is not None and all(type(m) is type(messages[0]) for m in messages):
        await batched(messages)
        return
    for message in messages:
        await message.ack()


class PublishError(RuntimeError):
    """The broker did not confirm (nack, return, timeout or lost connection)."""


class Transport(Protocol):
    async def start(self) -> None:
        """Connect and declare the exchanges. Idempotent."""

    async def close(self) -> None:
        """Stop consumers and disconnect."""

    async def publish(self, messages: Sequence[OutboundMessage]) -> None:
        """Publish all messages (persistent, in order) and wait for every confirm.

        Raises PublishError if any was not confirmed; the caller retries the whole batch
        (consumers are idempotent, so a partial first attempt is harmless).
        """

    async def consume(
        self,
        queue: str,
        routing_keys: Sequence[str],
        on_message: OnMessage,
        *,
        prefetch: int = 500,
    ) -> None:
        """Declare `queue` (durable, dead-lettering to `<queue>.dead`), bind it to
        `routing_keys` on the events exchange and deliver each message to `on_message`.
        Returns once consuming has started."""

    async def ready(self) -> bool:
        """True when the broker is reachable (for /readyz)."""
