"""Unit of work: one session, one transaction, and the events it will publish."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from types import TracebackType
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import insert_new, utcnow
from shared.events import Envelope, Payload


class UnitOfWork:
    """Async context manager; rolls back unless `commit()` was called.

    `emit()` queues an event; `commit()` writes the queued events as outbox rows in the
    same transaction as the changes, commits, and wakes the relay. `emit_after_flush()`
    queues an event whose payload needs ids the database assigns: it is built at commit,
    after one flush, so a batch of inserts needs no round trip per row.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        producer: str,
        outbox: Table,
        on_commit: Callable[[], None] | None = None,
        principal: str | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._outbox = outbox
        self._on_commit = on_commit
        self.producer = producer
        self.principal = principal
        self._events: list[Envelope | Callable[[], Envelope]] = []
        self._written = False  # outbox rows written in this transaction: wake the relay at commit
        self._after_commit: list[Callable[[], None]] = []
        self._before_commit: list[Callable[[], Awaitable[None]]] = []
        self.session: AsyncSession

    async def __aenter__(self) -> UnitOfWork:
        self.session = self._sessionmaker()
        self._events = []
        self._written = False
        self._after_commit = []
        self._before_commit = []
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.session.in_transaction():
                await self.session.rollback()
        finally:
            await self.session.close()

    def emit(
        self, payload: Payload, *, id: uuid.UUID | None = None, occurred_at: datetime | None = None
    ) -> Envelope:
        return self._queue(Envelope.wrap(payload, self.producer, id=id, occurred_at=occurred_at))

    def emit_data(self, payload_type: type[Payload], data: dict[str, Any]) -> Envelope:
        """Queue an event given as its payload's JSON form (`Envelope.wrap_data`): no model is
        built or validated, so the caller's values must be exactly what the model would dump."""
        return self._queue(Envelope.wrap_data(payload_type, data, self.producer))

    def _queue(self, envelope: Envelope) -> Envelope:
        self._events.append(envelope)
        return envelope

    def emit_after_flush(self, build: Callable[[], Payload]) -> None:
        """Queue the event `build()` returns once the session is flushed (in emit order)."""
        self._events.append(lambda: Envelope.wrap(build(), self.producer))

    def before_commit(self, write: Callable[[], Awaitable[None]]) -> None:
        """Await `write()` at commit, before the queued events are written: rows a use case
        collects over a batch go in with one statement."""
        self._before_commit.append(write)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` once this transaction has committed; never after a rollback
        (a cache dropped before the commit could be filled again with the old rows)."""
        self._after_commit.append(callback)

    @property
    def pending_events(self) -> list[Envelope]:
        return [e for e in self._events if isinstance(e, Envelope)]

    async def flush(self) -> None:
        await self.session.flush()

    async def write_events(self) -> set[str]:
        """Write the queued events to the outbox now; returns the ids that were not there yet.

        An event whose id the outbox already holds (sent or not) is skipped: ids derived from
        the data (a resent HTTP push) are queued once, in one statement, with no lookup first."""
        if not self._events:
            return set()
        if not all(isinstance(e, Envelope) for e in self._events):
            await self.session.flush()
        events = [e if isinstance(e, Envelope) else e() for e in self._events]
        self._events = []
        written = await insert_new(self.session, self._outbox, "event_id", _outbox_rows(events))
        self._written = self._written or bool(written)
        return written

    def take_outbox_rows(self) -> list[dict[str, object]] | None:
        """The queued events as outbox rows, for a statement of the caller's own that inserts them
        with the rest of its writes (`ON CONFLICT (event_id) DO NOTHING`, as `write_events` does);
        the relay is woken at commit. None, and nothing taken, while an event still waits for a
        flush (`emit_after_flush`)."""
        if not all(isinstance(e, Envelope) for e in self._events):
            return None
        events, self._events = self._events, []
        rows = _outbox_rows([e for e in events if isinstance(e, Envelope)])
        self._written = self._written or bool(rows)
        return rows

    def wrote_outbox(self) -> None:
        """Outbox rows went in by a statement of the caller's own (shared.db.pg_driver): wake the
        relay at commit as `write_events` would."""
        self._written = True

    async def commit(self) -> None:
        writes, self._before_commit = self._before_commit, []
        for write in writes:
            await write()
        await self.write_events()
        await self.session.commit()
        woken, self._written = self._written, False
        if woken and self._on_commit:
            self._on_commit()
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    async def rollback(self) -> None:
        self._events = []
        self._written = False
        self._after_commit = []
        self._before_commit = []
        await self.session.rollback()


def _outbox_rows(events: list[Envelope]) -> list[dict[str, object]]:
    now = utcnow()
    return [{"event_id": str(e.id), "type": e.type, "body": e.model_dump_json(), "created_at": now, "attempts": 0}
            for e in events]
