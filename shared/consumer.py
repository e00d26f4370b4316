"""The consume loop: parse → validate → inbox → handler → commit → ack, in micro-batches.

A message holds one event or several of one type (decision 0011). A batch of up to
`batch_size` events (or whatever arrived within the batch window: up to `batch_wait`, less
while the consumer is mostly idle) is applied in one transaction with its inbox rows, then its
messages are acknowledged together. A batch that fails is retried event by event, so one bad
event fails alone. A message that does not parse, or whose events do not all validate, is
dead-lettered (its good events applied first); so is one with an event that fails with a
DomainError. Other failures requeue the message (the queue's delivery limit dead-letters one
that keeps failing; the inbox drops its events that were applied already). When the database
itself is unreachable the batch is retried in place, without burning deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from pydantic import ValidationError
from sqlalchemy import Table

from shared.db import database_unavailable
from shared.errors import DomainError
from shared.events import Envelope, Payload, UnknownEventType, read_body
from shared.inbox import purge_inbox, record_all_once
from shared.logs import event_id_var
from shared.metrics import CONSUMER_BATCH, EVENTS_CONSUMED
from shared.transport.base import InboundMessage, Transport, ack_batch
from shared.uow import UnitOfWork

log = logging.getLogger("taktline.consumer")

BUSY_SMOOTHING = 0.2  # weight of the latest batch in the moving average of the busy share
BUSY_FOR_FULL_WINDOW = 0.5  # at this busy share and above a batch waits the whole batch_wait
# No window while messages come more than this many windows apart: with messages spaced as a
# Poisson stream, fewer than half of the windows would then catch another one.
SPARSE_GAP = 1.5
READ_AHEAD = 2  # batches' worth of events read ahead of the batch being applied

Handler = Callable[[UnitOfWork, Payload, Envelope], Awaitable[None]]
# Runs once per batch transaction, before the handlers, with the events about to be applied:
# a service loads (and locks, in a fixed order) the rows the whole batch touches in a few
# statements, instead of a query per event that also flushes the events before it.
BatchPrepare = Callable[[UnitOfWork, Sequence[Payload]], Awaitable[None]]
UowFactory = Callable[[], UnitOfWork]


@dataclass(slots=True)
class _Parsed:
    envelope: Envelope
    payload: Payload
    id: str  # the envelope's id as text, made once: the inbox key


@dataclass(slots=True)
class _Delivery:
    """A message and its events; `bad` counts those that did not parse (the message goes dead)."""

    message: InboundMessage
    items: list[_Parsed]
    bad: int = 0


class Consumer:
    def __init__(
        self,
        *,
        service: str,
        queue: str,
        transport: Transport,
        uow_factory: UowFactory,
        inbox: Table,
        subscriptions: Mapping[str, Handler],
        prepare: BatchPrepare | None = None,
        batch_size: int = 500,
        batch_wait: float = 0.01,
        prefetch: int = 500,
        inbox_retention: timedelta = timedelta(days=7),
    ) -> None:
        self.service = service
        self.queue = queue
        self._transport = transport
        self._uow_factory = uow_factory
        self._inbox = inbox
        self._subscriptions = dict(subscriptions)
        self._prepare = prepare
        self._batch_size = batch_size
        self._batch_wait = batch_wait
        self._prefetch = prefetch
        self._inbox_retention = inbox_retention
        self._purged_at = 0.0  # monotonic time of the last inbox purge
        # (arrived, the message): read as it arrives, while the batch before is being applied, up to
        # READ_AHEAD batches' worth of events (a packed message holds many, and read they take
        # ten times the memory); the rest is read when its batch is assembled.
        self._incoming: asyncio.Queue[tuple[float, _Delivery | InboundMessage]] = asyncio.Queue()
        self._read_ahead = 0  # events read and queued
        self._busy = 0.0  # moving average of the share of time spent applying batches
        self._gap = 0.0  # moving average of the time between two messages' arrivals
        self._arrived = 0.0  # when the latest message arrived
        self._worker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name=f"consumer:{self.queue}")
        await self._transport.consume(
            self.queue, list(self._subscriptions), self._receive, prefetch=self._prefetch
        )

    async def _receive(self, message: InboundMessage) -> None:
        now = time.monotonic()
        if self._arrived:
            self._gap += BUSY_SMOOTHING * (min(now - self._arrived, 1.0) - self._gap)
        self._arrived = now
        if self._read_ahead >= READ_AHEAD * self._batch_size:
            self._incoming.put_nowait((now, message))
        elif (delivery := await self._read(message)) is not None:
            self._read_ahead += len(delivery.items)
            self._incoming.put_nowait((now, delivery))

    async def _take(self, queued: _Delivery | InboundMessage) -> _Delivery | None:
        if isinstance(queued, _Delivery):
            self._read_ahead -= len(queued.items)
            return queued
        return await self._read(queued)

    async def stop(self) -> None:
        if self._worker:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    async def _run(self) -> None:
        finished = time.monotonic()
        while True:
            batch = await self._next_batch()
            started = time.monotonic()
            try:
                await self._handle(batch)
                await self._purge_inbox_hourly()
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the loop die; the messages stay unacked
                log.exception("consumer %s: batch handling crashed", self.queue)
            previous, finished = finished, time.monotonic()
            self._note_busy(finished - started, finished - previous)

    def _note_busy(self, busy: float, period: float) -> None:
        """Keep a moving average of the share of time spent applying batches."""
        if period > 0:
            self._busy += BUSY_SMOOTHING * (min(busy / period, 1.0) - self._busy)

    @property
    def batch_window(self) -> float:
        """How long a batch waits for company after its first delivery.

        Waiting only pays when the consumer is busy: then each transaction's fixed cost is shared
        by more messages, and the CPU saved is what keeps latency down under load. An idle
        consumer waits a tenth of batch_wait (enough for a relay round's burst to arrive whole),
        so a lone message is not held back for nothing; so does one whose messages come further
        apart than the window (SPARSE_GAP)."""
        idle = self._batch_wait * 0.1
        window = self._batch_wait * min(max(self._busy / BUSY_FOR_FULL_WINDOW, 0.1), 1.0)
        # Waiting pays only if another message is likely to come within it. Messages that come
        # further apart (a producer's relay rounds, each already packed, decision 0011) would
        # mostly make the first wait for nothing: they are applied as they come.
        return idle if self._gap > SPARSE_GAP * window else window

    async def _next_batch(self) -> list[_Delivery]:
        """The first delivery, then whatever else arrives within the batch window, up to batch_size events."""
        incoming = self._incoming
        batch: list[_Delivery] = []
        events = 0

        async def add(queued: _Delivery | InboundMessage) -> None:
            nonlocal events
            if (delivery := await self._take(queued)) is not None:  # None: did not parse, settled
                batch.append(delivery)
                events += len(delivery.items)

        while not batch:
            arrived, queued = await incoming.get()
            await add(queued)
        # The window runs from the first message's arrival: one that queued while the batch
        # before was applied has waited already.
        deadline = arrived + self.batch_window
        while events < self._batch_size:
            # Take what is queued already without a timer per message (most of a busy batch).
            while not incoming.empty() and events < self._batch_size:
                await add(incoming.get_nowait()[1])
            remaining = deadline - time.monotonic()
            if events >= self._batch_size or remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):  # not wait_for: see docs/decisions/0008
                    queued = (await incoming.get())[1]
            except TimeoutError:
                break
            await add(queued)
        return batch

    async def _purge_inbox_hourly(self) -> None:
        """Forget ids older than the retention: redeliveries come within minutes, not days."""
        if time.monotonic() - self._purged_at < 3600:
            return
        self._purged_at = time.monotonic()
        async with self._uow_factory() as uow:
            await purge_inbox(uow.session, self._inbox, self._inbox_retention)
            await uow.commit()

    async def handle_batch(self, messages: Sequence[InboundMessage]) -> None:
        """Apply these messages as one batch (the loop's batches come from `_next_batch`)."""
        await self._handle([d for m in messages if (d := await self._read(m)) is not None])

    async def _handle(self, batch: list[_Delivery]) -> None:
        items = [item for delivery in batch for item in delivery.items]
        if items:
            CONSUMER_BATCH.labels(self.service).observe(len(items))
            try:
                await self._apply_through_outages(items)
            except Exception:
                for delivery in batch:  # the batch failed: apply event by event so a bad one fails alone
                    await self._apply_one_by_one(delivery)
                return
        # Dead letters first: RabbitMQ's batch ack acknowledges everything delivered before the last.
        for delivery in batch:
            if delivery.bad:
                await self._dead_letter(delivery)
        await ack_batch([delivery.message for delivery in batch if not delivery.bad])

    async def _dead_letter(self, delivery: _Delivery) -> None:
        log.error("consumer %s: dead-lettering message %s (%s): %d of its %d events do not parse%s",
                  self.queue, delivery.message.message_id, delivery.message.routing_key, delivery.bad,
                  delivery.bad + len(delivery.items), "; the others were applied" if delivery.items else "")
        await delivery.message.reject(requeue=False)

    async def _apply_through_outages(self, items: list[_Parsed]) -> None:
        """Apply the batch, retrying in place while the database is away; other errors propagate."""
        backoff = 0.5
        while True:
            try:
                await self._apply(items)
                return
            except Exception as exc:
                if not _is_transient(exc):
                    raise
                log.warning("consumer %s: database unavailable (%s); retrying in %.1fs",
                            self.queue, exc.__class__.__name__, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 15.0)

    async def _apply_one_by_one(self, delivery: _Delivery) -> None:
        """Each event of the message in a transaction of its own, then settle the message: requeue
        if an event failed for a reason that may pass, dead-letter if one is rejected for good."""
        message, requeue, dead = delivery.message, False, bool(delivery.bad)
        for item in delivery.items:
            token = event_id_var.set(item.id)
            try:
                await self._apply_through_outages([item])
            except DomainError as exc:
                log.error("consumer %s: %s rejected (%s); dead-lettered", self.queue, item.envelope.type, exc)
                EVENTS_CONSUMED.labels(self.service, item.envelope.type, "dead").inc()
                dead = True
            except Exception:
                log.exception("consumer %s: %s failed (delivery %d); requeued", self.queue,
                              item.envelope.type, message.delivery_count)
                EVENTS_CONSUMED.labels(self.service, item.envelope.type, "requeued").inc()
                requeue = True
            finally:
                event_id_var.reset(token)
        if requeue:  # the events applied meanwhile are in the inbox: a redelivery skips them
            await asyncio.sleep(min(0.1 * (message.delivery_count + 1), 2.0))
            await message.reject(requeue=True)
        elif dead:
            await message.reject(requeue=False)
        else:
            await message.ack()

    async def _read(self, message: InboundMessage) -> _Delivery | None:
        """The message's events, validated; None (and the message dead-lettered) if it has no
        readable form at all."""
        try:
            envelopes = read_body(message.body)
        except ValueError as exc:
            log.error("consumer %s: dead-lettering unparseable message %s (%s): %s",
                      self.queue, message.message_id, message.routing_key, exc)
            EVENTS_CONSUMED.labels(self.service, message.routing_key, "dead").inc()
            await message.reject(requeue=False)
            return None
        delivery = _Delivery(message, [])
        for envelope in envelopes:
            try:
                if isinstance(envelope, ValueError):
                    raise envelope
                if envelope.type not in self._subscriptions:
                    raise UnknownEventType(envelope.type)
                delivery.items.append(_Parsed(envelope, envelope.payload(), str(envelope.id)))
            except (ValidationError, ValueError) as exc:
                log.error("consumer %s: event %s in message %s (%s) does not parse: %s", self.queue,
                          getattr(envelope, "id", "?"), message.message_id, message.routing_key, exc)
                EVENTS_CONSUMED.labels(self.service, message.routing_key, "dead").inc()
                delivery.bad += 1
        if not delivery.items and delivery.bad:
            await self._dead_letter(delivery)
            return None
        return delivery

    async def _apply(self, items: list[_Parsed]) -> None:
        async with self._uow_factory() as uow:
            # One inbox statement for the batch; a redelivered copy within it counts once.
            fresh_ids = await record_all_once(uow.session, self._inbox,
                                              [(i.id, i.envelope.type) for i in items])
            if self._prepare is not None and fresh_ids:
                # Each fresh event once, in delivery order (a redelivered copy has the same payload).
                fresh = {i.id: i.payload for i in items if i.id in fresh_ids}
                await self._prepare(uow, list(fresh.values()))
            outcomes: Counter[tuple[str, str]] = Counter()
            for item in items:
                token = event_id_var.set(item.id)
                try:
                    fresh = item.id in fresh_ids
                    fresh_ids.discard(item.id)
                    if fresh:
                        await self._subscriptions[item.envelope.type](uow, item.payload,
                                                                      item.envelope)
                    outcomes[(item.envelope.type, "applied" if fresh else "duplicate")] += 1
                finally:
                    event_id_var.reset(token)
            await uow.commit()
        for (type_, outcome), count in outcomes.items():  # counted once committed, once a batch
            EVENTS_CONSUMED.labels(self.service, type_, outcome).inc(count)


def _is_transient(exc: BaseException) -> bool:
    return database_unavailable(exc) or isinstance(exc, OSError | TimeoutError)
