"""The consume loop: parse → validate → inbox → handler → commit → ack, in micro-batches.

A batch of up to `batch_size` messages (or whatever arrived within the batch window: up to
`batch_wait`, less while the consumer is mostly idle) is applied in one transaction with its
inbox rows, then acknowledged together. A batch that fails is retried message by message, so
one bad message fails alone. What does not parse or validate, or fails with a DomainError, is
dead-lettered at once; other failures are requeued (the queue's delivery limit dead-letters a
message that keeps failing). When the database itself is unreachable the batch is retried in
place, without burning deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from pydantic import ValidationError
from sqlalchemy import Table

from shared.db import database_unavailable
from shared.errors import DomainError
from shared.events import Envelope, Payload, UnknownEventType
from shared.inbox import purge_inbox, record_all_once
from shared.logs import event_id_var
from shared.metrics import CONSUMER_BATCH, EVENTS_CONSUMED
from shared.transport.base import InboundMessage, Transport, ack_batch
from shared.uow import UnitOfWork

log = logging.getLogger("taktline.consumer")

BUSY_SMOOTHING = 0.2  # weight of the latest batch in the moving average of the busy share
BUSY_FOR_FULL_WINDOW = 0.5  # at this busy share and above a batch waits the whole batch_wait

Handler = Callable[[UnitOfWork, Payload, Envelope], Awaitable[None]]
# Runs once per batch transaction, before the handlers, with the events about to be applied:
# a service loads (and locks, in a fixed order) the rows the whole batch touches in a few
# statements, instead of a query per event that also flushes the events before it.
BatchPrepare = Callable[[UnitOfWork, Sequence[Payload]], Awaitable[None]]
UowFactory = Callable[[], UnitOfWork]


@dataclass(slots=True)
class _Parsed:
    message: InboundMessage
    envelope: Envelope
    payload: Payload


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
        batch_size: int = 200,
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
        self._incoming: asyncio.Queue[tuple[float, InboundMessage]] = asyncio.Queue()  # (arrived, message)
        self._busy = 0.0  # moving average of the share of time spent applying batches
        self._worker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name=f"consumer:{self.queue}")
        await self._transport.consume(
            self.queue, list(self._subscriptions), self._receive, prefetch=self._prefetch
        )

    async def _receive(self, message: InboundMessage) -> None:
        self._incoming.put_nowait((time.monotonic(), message))

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
                await self.handle_batch(batch)
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
        so a lone message is not held back for nothing."""
        return self._batch_wait * min(max(self._busy / BUSY_FOR_FULL_WINDOW, 0.1), 1.0)

    async def _next_batch(self) -> list[InboundMessage]:
        """The first delivery, then whatever else arrives within the batch window, up to batch_size."""
        incoming = self._incoming
        arrived, first = await incoming.get()
        batch = [first]
        # The window runs from the first message's arrival: one that queued while the batch
        # before was applied has waited already.
        deadline = arrived + self.batch_window
        while len(batch) < self._batch_size:
            # Take what is queued already without a timer per message (most of a busy batch).
            while not incoming.empty() and len(batch) < self._batch_size:
                batch.append(incoming.get_nowait()[1])
            remaining = deadline - time.monotonic()
            if len(batch) >= self._batch_size or remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):  # not wait_for: see docs/decisions/0008
                    batch.append((await incoming.get())[1])
            except TimeoutError:
                break
        return batch

    async def _purge_inbox_hourly(self) -> None:
        """Forget ids older than the retention: redeliveries come within minutes, not days."""
        if time.monotonic() - self._purged_at < 3600:
            return
        self._purged_at = time.monotonic()
        async with self._uow_factory() as uow:
            await purge_inbox(uow.session, self._inbox, self._inbox_retention)
            await uow.commit()

    async def handle_batch(self, messages: list[InboundMessage]) -> None:
        parsed = [item for m in messages if (item := await self._parse(m)) is not None]
        if not parsed:
            return
        CONSUMER_BATCH.labels(self.service).observe(len(parsed))
        try:
            await self._apply_through_outages(parsed)
        except Exception:
            for item in parsed:  # the batch failed: apply one by one so a bad message fails alone
                await self._apply_single(item)
            return
        await ack_batch([item.message for item in parsed])

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

    async def _apply_single(self, item: _Parsed) -> None:
        token = event_id_var.set(str(item.envelope.id))
        try:
            await self._apply_through_outages([item])
        except DomainError as exc:
            log.error("consumer %s: %s rejected (%s); dead-lettered", self.queue, item.envelope.type, exc)
            EVENTS_CONSUMED.labels(self.service, item.envelope.type, "dead").inc()
            await item.message.reject(requeue=False)
            return
        except Exception:
            log.exception("consumer %s: %s failed (delivery %d); requeued", self.queue,
                          item.envelope.type, item.message.delivery_count)
            EVENTS_CONSUMED.labels(self.service, item.envelope.type, "requeued").inc()
            await asyncio.sleep(min(0.1 * (item.message.delivery_count + 1), 2.0))
            await item.message.reject(requeue=True)
            return
        finally:
            event_id_var.reset(token)
        await item.message.ack()

    async def _parse(self, message: InboundMessage) -> _Parsed | None:
        try:
            envelope = Envelope.from_bytes(message.body)
            if envelope.type not in self._subscriptions:
                raise UnknownEventType(envelope.type)
            payload = envelope.payload()
        except (ValidationError, ValueError) as exc:
            log.error("consumer %s: dead-lettering unparseable message %s (%s): %s",
                      self.queue, message.message_id, message.routing_key, exc)
            EVENTS_CONSUMED.labels(self.service, message.routing_key, "dead").inc()
            await message.reject(requeue=False)
            return None
        return _Parsed(message, envelope, payload)

    async def _apply(self, items: list[_Parsed]) -> None:
        async with self._uow_factory() as uow:
            # One inbox statement for the batch; a redelivered copy within it counts once.
            fresh_ids = await record_all_once(uow.session, self._inbox,
                                              [(str(i.envelope.id), i.envelope.type) for i in items])
            if self._prepare is not None and fresh_ids:
                # Each fresh event once, in delivery order (a redelivered copy has the same payload).
                fresh = {str(i.envelope.id): i.payload for i in items if str(i.envelope.id) in fresh_ids}
                await self._prepare(uow, list(fresh.values()))
            for item in items:
                token = event_id_var.set(str(item.envelope.id))
                try:
                    fresh = str(item.envelope.id) in fresh_ids
                    fresh_ids.discard(str(item.envelope.id))
                    if fresh:
                        await self._subscriptions[item.envelope.type](uow, item.payload,
                                                                      item.envelope)
                    outcome = "applied" if fresh else "duplicate"
                    EVENTS_CONSUMED.labels(self.service, item.envelope.type, outcome).inc()
                finally:
                    event_id_var.reset(token)
            await uow.commit()


def _is_transient(exc: BaseException) -> bool:
    return database_unavailable(exc) or isinstance(exc, OSError | TimeoutError)
