"""The transport interface: how services put events on the bus and take them off.

Two implementations: `rabbitmq.RabbitMQTransport` (production, integration tests) and
`memory.MemoryTransport` (embedded single-process mode, fast unit tests). Both give the
same semantics: publish returns only once every message is confirmed; consumers get one
durable queue each, bound to the routing keys they handle; `ack` after commit; `reject`
without requeue dead-letters to `<queue>.dead`; `reject(requeue=True)` redelivers, bounded
by the delivery limit, after which the message is dead-lettered too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from shared.events import Envelope, join_bodies

# A message of several events stays well under RabbitMQ's default frame and message sizes.
MAX_PACKED_BYTES = 1 << 20


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


def pack(events: Iterable[tuple[str, str, bytes]], *, per_message: int, producer: str) -> list[OutboundMessage]:
    """Events as (type, event id, envelope body), in order, as broker messages in the same order.

    Consecutive events of one type share a message (routing key == type), up to `per_message`
    of them and MAX_PACKED_BYTES; `per_message=1` sends each alone. The broker's work and a
    consumer's delivery handling are per message, so this is what a hop costs at a steady load
    (decision 0011)."""
    messages: list[OutboundMessage] = []
    run: list[tuple[str, bytes]] = []  # (event id, body) of one type, not yet a message
    run_type, run_bytes = "", 0

    def close_run() -> None:
        headers: dict[str, str | int] = {"producer": producer}
        message_id = run[0][0]
        if len(run) > 1:
            headers["events"] = len(run)
            message_id = f"{message_id}+{len(run) - 1}"
        messages.append(OutboundMessage(routing_key=run_type, body=join_bodies([b for _, b in run]),
                                        message_id=message_id, headers=headers))
        run.clear()

    for type_, event_id, body in events:
        if run and (type_ != run_type or len(run) >= per_message or run_bytes + len(body) > MAX_PACKED_BYTES):
            close_run()
        if not run:
            run_type, run_bytes = type_, 0
        run.append((event_id, body))
        run_bytes += len(body) + 1
    if run:
        close_run()
    return messages


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
