"""RabbitMQ transport: the only module that imports aio_pika.

Topology: one durable topic exchange for events; per consumer one durable quorum queue
(single active consumer, so per-machine order survives replicas; a delivery limit, so a
message that keeps failing ends up dead) dead-lettering through a direct exchange into
`<queue>.dead`.

Reconnects are aio-pika's: `connect_robust` retries every `reconnect_interval` seconds and
restores channels, exchanges, queues, bindings and consumers it declared. Publishing does
not wait for a reconnect: while the connection is down `publish` raises PublishError at
once, so a caller holding a database transaction (the outbox relay) never blocks on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustExchange,
    AbstractRobustQueue,
)
from aiormq.abc import DeliveredMessage
from pamqp.commands import Basic

from shared.transport.base import OnMessage, OutboundMessage, PublishError

log = logging.getLogger("taktline.transport.rabbitmq")

# aiormq's connection writes through a queue of 10 frames, and a publish waits for its frames
# to drain: on a busy event loop a relay round of 500 messages then takes seconds (measured:
# 8-11 s vs 0.14 s with a deep queue and no per-message drain wait). Process-wide on purpose.
aiormq.Connection.FRAME_BUFFER_SIZE = 1024


class _CoalescingWriter:
    """The connection's StreamWriter, sending what one event-loop pass writes in one send.

    aiormq writes each frame as it takes it from its queue, so a relay round of 100 messages
    or a batch's acks cost a send each. On loopback each send runs the broker's receive path
    and wakes it, ~30-45 µs of CPU here (docs/performance.md); one send per pass costs that
    once. Order is kept (one buffer, flushed before drain, EOF and close)."""

    __slots__ = ("_flush_scheduled", "_pending", "_writer", "frames", "sends")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._pending: list[bytes] = []
        self._flush_scheduled = False
        self.frames = self.sends = 0  # what aiormq wrote, what went to the socket

    def write(self, data: bytes) -> None:
        self.frames += 1
        self._pending.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        if self._pending:
            data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
            self._pending.clear()
            self.sends += 1
            self._writer.write(data)

    async def drain(self) -> None:
        self.flush()
        await self._writer.drain()

    def write_eof(self) -> None:
        self.flush()
        self._writer.write_eof()

    def close(self) -> None:
        self.flush()
        self._writer.close()

    def __getattr__(self, name: str) -> object:  # transport, is_closing, wait_closed, …
        return getattr(self._writer, name)


class _Coalescing:
    """A transport factory's mixin: the stream writer it hands aiormq coalesces."""

    writer: _CoalescingWriter | None = None  # the latest connection's

    async def create(self, url: Any, **kwargs: Any) -> tuple[asyncio.StreamReader, Any]:
        reader, writer = await super().create(url, **kwargs)  # type: ignore[misc]
        self.writer = _CoalescingWriter(writer)
        return reader, self.writer


class _CoalescingTCP(_Coalescing, aiormq.connection.TCPTransportFactory):
    pass


class _CoalescingTLS(_Coalescing, aiormq.connection.TLSTransportFactory):
    pass


# What a lost or refused broker looks like to a caller (aiormq's and the socket's errors).
_BROKER_ERRORS = (aiormq.exceptions.AMQPError, ConnectionError, OSError, RuntimeError, TimeoutError)
_CLOSE_TIMEOUT = 5.0


class _DirectQueue(aio_pika.RobustQueue):
    """A robust queue whose consumer callback gets aiormq's deliveries as they come.

    aio-pika's own `consume` wraps each delivery in an `IncomingMessage` and runs the callback
    in a task of its own, ~25 µs of CPU a delivery here on top of aiormq's ~50 (about a tenth
    of the maintenance service's CPU under load). The consumer is still recorded where aio-pika
    restores it from: after a reconnect through this method, after a broker's cancel through
    aio-pika's own (so the callback takes both kinds of message)."""

    async def consume(self, callback: Callable[[DeliveredMessage], Awaitable[None]],  # type: ignore[override]
                      no_ack: bool = False, exclusive: bool = False, arguments: Any = None,
                      consumer_tag: str | None = None, robust: bool = True) -> str:
        channel = await self.channel.get_underlay_channel()
        result = await channel.basic_consume(queue=self.name, consumer_callback=callback, exclusive=exclusive,
                                             no_ack=no_ack, arguments=arguments, consumer_tag=consumer_tag)
        tag = result.consumer_tag
        if tag is None:
            raise RuntimeError("the broker returned no consumer tag")
        if robust:
            self._consumers[tag] = dict(callback=callback, no_ack=no_ack, exclusive=exclusive, arguments=arguments)
        return tag


class _Channel(aio_pika.RobustChannel):
    QUEUE_CLASS = _DirectQueue


class _BackoffConnection(aio_pika.RobustConnection):
    """A robust connection whose reconnect delay grows with the outage: it waits as long as
    the broker has been gone so far (so attempts come at about 1x, 2x, 4x… the base interval),
    capped at `MAX_RECONNECT_INTERVAL`, and starts again from the base once connected."""

    CHANNEL_CLASS = _Channel
    MAX_RECONNECT_INTERVAL = 30.0
    _lost_at: float | None = None
    _base_interval: float = 2.0

    def __init__(self, url: Any, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        # Passed through to aiormq's Connection on every (re)connect.
        self.kwargs["transport_factory"] = _CoalescingTLS() if self.url.scheme == "amqps" else _CoalescingTCP()

    @property  # type: ignore[override]
    def reconnect_interval(self) -> float:
        if self._lost_at is None:
            return self._base_interval
        outage = asyncio.get_running_loop().time() - self._lost_at
        return min(max(outage, self._base_interval), self.MAX_RECONNECT_INTERVAL)

    @reconnect_interval.setter
    def reconnect_interval(self, value: float) -> None:
        self._base_interval = float(value)

    async def _on_connection_close(self, closing: asyncio.Future[None]) -> None:
        if self._lost_at is None:
            self._lost_at = asyncio.get_running_loop().time()
        await super()._on_connection_close(closing)

    async def _on_connected(self) -> None:
        await super()._on_connected()
        self._lost_at = None


class RabbitInbound:
    """One delivery, as the InboundMessage protocol sees it (aiormq's message as it came)."""

    __slots__ = ("_channel", "_settled", "_tag", "body", "delivery_count", "message_id", "routing_key")

    def __init__(self, channel: aiormq.abc.AbstractChannel, delivery_tag: int, body: bytes, routing_key: str,
                 message_id: str | None, headers: dict[str, Any] | None) -> None:
        self._channel = channel
        self._tag = delivery_tag
        self._settled = False
        self.body = body
        self.routing_key = routing_key
        self.message_id = message_id
        # Quorum queues set x-delivery-count on redeliveries only (absent on the first).
        count = (headers or {}).get("x-delivery-count", 0)
        self.delivery_count: int = int(count) if isinstance(count, int | str) else 0

    @classmethod
    def of(cls, message: DeliveredMessage | aio_pika.abc.AbstractIncomingMessage) -> RabbitInbound | None:
        """From aiormq's delivery, or from aio-pika's wrapper of one (a consumer that aio-pika
        restored after a broker's cancel gets those); None if its channel is gone already."""
        if isinstance(message, DeliveredMessage):
            properties = message.header.properties
            return cls(message.channel, message.delivery.delivery_tag,  # type: ignore[union-attr]
                       message.body, message.routing_key or "", properties.message_id, properties.headers)
        try:
            channel = message.channel
        except aiormq.exceptions.ChannelInvalidStateError:
            return None
        return cls(channel, message.delivery_tag or 0, message.body, message.routing_key or "",
                   message.message_id, message.headers)

    @property
    def stale(self) -> bool:
        """The channel it came on is gone: the broker will redeliver it anyway."""
        return self._channel.is_closed

    async def ack(self) -> None:
        self._claim()
        with _tolerate_lost_channel(self.message_id):
            await self._channel.basic_ack(self._tag)

    @staticmethod
    async def ack_batch(messages: Sequence[RabbitInbound]) -> None:
        """One `basic.ack multiple=true` per channel, for the batch's last delivery on it.

        A consumer's batch is a prefix of what its channel delivered (earlier deliveries are
        settled already), so the multiple-ack covers exactly the batch; one frame instead of
        one per message."""
        last: dict[int, RabbitInbound] = {}
        for message in messages:
            message._claim()
            last[id(message._channel)] = message
        for message in last.values():
            with _tolerate_lost_channel(message.message_id):
                await message._channel.basic_ack(message._tag, multiple=True)

    async def reject(self, requeue: bool = False) -> None:
        self._claim()
        with _tolerate_lost_channel(self.message_id):
            await self._channel.basic_reject(self._tag, requeue=requeue)

    def _claim(self) -> None:
        if self._settled:
            raise RuntimeError(f"message {self.message_id} already acked or rejected")
        self._settled = True


@contextlib.contextmanager
def _tolerate_lost_channel(message_id: str | None) -> Iterator[None]:
    # A delivery dies with its channel and the broker redelivers it (the inbox dedupes), so
    # failing to settle it is not the caller's problem.
    try:
        yield
    except (aiormq.exceptions.ChannelInvalidStateError, aiormq.exceptions.AMQPConnectionError,
            aiormq.exceptions.ChannelClosed, ConnectionError) as exc:
        log.warning("could not settle message %s (%s): the broker will redeliver it",
                    message_id, exc.__class__.__name__)


class _Consumer:
    """A queue's channel, its consumer and the task that delivers in order."""

    def __init__(self, channel: AbstractRobustChannel, queue: AbstractRobustQueue, on_message: OnMessage) -> None:
        self.channel = channel
        self.queue = queue
        self.on_message = on_message
        self.tag: str | None = None
        self.buffer: asyncio.Queue[RabbitInbound] = asyncio.Queue()
        self.task = asyncio.create_task(self._deliver(), name=f"rabbitmq-deliver:{queue.name}")

    async def receive(self, message: DeliveredMessage | aio_pika.abc.AbstractIncomingMessage) -> None:
        # aiormq runs each delivery in its own task; buffering first and handing over
        # from one task keeps the queue's order even when on_message awaits.
        if (inbound := RabbitInbound.of(message)) is not None:
            self.buffer.put_nowait(inbound)

    async def _deliver(self) -> None:
        while True:
            message = await self.buffer.get()
            if message.stale:
                continue
            try:
                await self.on_message(message)
            except Exception:
                log.exception("on_message for queue %s failed; requeueing", self.queue.name)
                try:
                    await message.reject(requeue=True)
                except Exception:  # already settled, or the broker is gone: keep delivering
                    log.debug("could not requeue message %s", message.message_id, exc_info=True)

    async def stop(self, *, connected: bool) -> None:
        # With the broker away there is nothing to tell it (and aio-pika would wait for the
        # reconnect), so only the local task is stopped; closing the connection does the rest.
        if connected and self.tag is not None:
            with contextlib.suppress(*_BROKER_ERRORS):
                async with asyncio.timeout(_CLOSE_TIMEOUT):
                    await self.queue.cancel(self.tag)
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        if connected:
            with contextlib.suppress(*_BROKER_ERRORS):
                async with asyncio.timeout(_CLOSE_TIMEOUT):
                    await self.channel.close()


class RabbitMQTransport:
    def __init__(
        self,
        url: str,
        *,
        exchange: str = "taktline.events",
        dead_exchange: str = "taktline.dead",
        delivery_limit: int = 20,
        connect_timeout: float = 10.0,
        publish_timeout: float = 30.0,
        reconnect_interval: float = 2.0,
        startup_timeout: float = 60.0,
    ) -> None:
        self.exchange = exchange
        self.dead_exchange = dead_exchange
        self.delivery_limit = delivery_limit
        self._url = url
        self._connect_timeout = connect_timeout
        self._publish_timeout = publish_timeout
        self._reconnect_interval = reconnect_interval
        self._startup_timeout = startup_timeout
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._exchange: AbstractRobustExchange | None = None
        self._consumers: list[_Consumer] = []
        self._start_lock = asyncio.Lock()

    async def start(self) -> None:
        async with self._start_lock:
            if self._connection is not None:
                return
            connection = await self._first_connection()
            try:
                channel = await connection.channel(publisher_confirms=True)
                self._exchange = await channel.declare_exchange(
                    self.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
                await channel.declare_exchange(self.dead_exchange, aio_pika.ExchangeType.DIRECT, durable=True)
            except BaseException:
                await connection.close()
                raise
            self._connection, self._channel = connection, channel

    async def _first_connection(self) -> AbstractRobustConnection:
        """Connect, retrying with exponential backoff for up to `startup_timeout` seconds.

        A service may start before its broker (compose, Kubernetes); after this first
        connection the robust connection restores itself every `reconnect_interval`."""
        loop = asyncio.get_running_loop()
        deadline, backoff = loop.time() + self._startup_timeout, 0.5
        while True:
            try:
                return await aio_pika.connect_robust(
                    self._url, timeout=self._connect_timeout, reconnect_interval=self._reconnect_interval,
                    connection_class=_BackoffConnection,
                    client_properties={"connection_name": f"taktline:{self.exchange}"},
                )
            except _BROKER_ERRORS as exc:
                if loop.time() + backoff > deadline:
                    raise
                log.warning("RabbitMQ not reachable (%s); retrying in %.1fs", exc.__class__.__name__, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def close(self) -> None:
        await self._stop_consumers()
        connection, self._connection, self._channel, self._exchange = self._connection, None, None, None
        if connection is not None:
            with contextlib.suppress(*_BROKER_ERRORS):
                async with asyncio.timeout(_CLOSE_TIMEOUT):
                    await connection.close()

    async def ready(self) -> bool:
        connection = self._connection
        return (
            connection is not None
            and not connection.is_closed
            and connection.connected.is_set()
            and connection.transport is not None
            and not connection.transport.connection.is_closed
        )

    async def publish(self, messages: Sequence[OutboundMessage]) -> None:
        if not messages:
            return
        if self._channel is None or self._exchange is None:
            raise PublishError("RabbitMQ transport is not started")
        if not await self.ready():
            raise PublishError("not connected to RabbitMQ (reconnecting)")
        try:
            async with asyncio.timeout(self._publish_timeout):
                await self._channel.ready()  # restored after a reconnect
                channel = await self._channel.get_underlay_channel()
                # Tasks start in list order and aiormq's channel lock is FIFO, so the frames
                # go out in the order given; wait=False queues them without waiting for each
                # to reach the socket, and every broker confirm is still awaited.
                results = await asyncio.gather(
                    *(channel.basic_publish(m.body, exchange=self.exchange, routing_key=m.routing_key,
                                            properties=_properties(m), mandatory=False, wait=False)
                      for m in messages),
                    return_exceptions=True,
                )
        except TimeoutError as exc:
            raise PublishError(f"no confirm within {self._publish_timeout}s for {len(messages)} messages") from exc
        failures = [r if isinstance(r, BaseException) else RuntimeError(f"broker answered {type(r).__name__}")
                    for r in results if not isinstance(r, aiormq.spec.Basic.Ack)]
        if failures:
            first = failures[0]
            raise PublishError(
                f"{len(failures)} of {len(messages)} messages not confirmed: {first.__class__.__name__}: {first}"
            ) from first

    async def declare(self, queue: str, routing_keys: Sequence[str]) -> None:
        """Declare `queue` and its dead-letter queue and bind them, without consuming."""
        channel = await self._open_channel()
        try:
            await self._declare_on(channel, queue, routing_keys)
        finally:
            await channel.close()

    async def consume(
        self,
        queue: str,
        routing_keys: Sequence[str],
        on_message: OnMessage,
        *,
        prefetch: int = 500,
    ) -> None:
        channel = await self._open_channel()
        try:
            await channel.set_qos(prefetch_count=prefetch)
            declared = await self._declare_on(channel, queue, routing_keys)
            consumer = _Consumer(channel, declared, on_message)
            consumer.tag = await declared.consume(consumer.receive)
        except BaseException:
            with contextlib.suppress(*_BROKER_ERRORS):
                await channel.close()
            raise
        self._consumers.append(consumer)

    async def _stop_consumers(self) -> None:
        consumers, self._consumers = self._consumers, []
        connected = await self.ready()
        for consumer in consumers:
            await consumer.stop(connected=connected)

    async def _open_channel(self) -> AbstractRobustChannel:
        if self._connection is None:
            raise RuntimeError("RabbitMQ transport is not started")
        return await self._connection.channel(publisher_confirms=False)

    async def _declare_on(
        self, channel: AbstractRobustChannel, queue: str, routing_keys: Sequence[str]
    ) -> AbstractRobustQueue:
        dead = await channel.declare_queue(f"{queue}.dead", durable=True)
        await dead.bind(self.dead_exchange, routing_key=queue)
        declared = await channel.declare_queue(queue, durable=True, arguments=self.queue_arguments(queue))
        for key in routing_keys:
            await declared.bind(self.exchange, routing_key=key)
        return declared

    def queue_arguments(self, queue: str) -> dict[str, str | int | bool]:
        """The x-arguments of a consumer queue (a redeclare with others fails PRECONDITION_FAILED)."""
        return {
            "x-queue-type": "quorum",
            "x-single-active-consumer": True,
            "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": self.dead_exchange,
            "x-dead-letter-routing-key": queue,
        }


def _properties(message: OutboundMessage) -> Basic.Properties:
    # Built directly: an aio_pika.Message only to read its properties costs ~20 µs a message.
    return Basic.Properties(
        content_type="application/json",
        delivery_mode=2,  # persistent
        message_id=message.message_id,
        message_type=message.routing_key,
        headers=dict(message.headers),
    )
