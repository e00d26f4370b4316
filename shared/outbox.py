"""Transactional outbox: event rows written with the change, published by a relay.

The relay claims unsent rows in id order, publishes them with confirms and marks them
sent. On PostgreSQL a transaction-scoped advisory lock lets one replica relay at a time
(that keeps per-machine order across replicas) and `FOR UPDATE SKIP LOCKED` keeps a
claim from blocking; SQLite has one writer anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import zlib
from datetime import timedelta
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import UTCDateTime, pg_driver, utcnow
from shared.metrics import EVENTS_PUBLISHED, OUTBOX_PENDING
from shared.transport.base import OutboundMessage, PublishError, Transport, pack

log = logging.getLogger("taktline.outbox")


# Two partial indexes, one per state of a row. The relay claims unsent rows in id order from
# ix_outbox_unsent. An index on (published_at, id) kept the entries of sent rows (an UPDATE leaves
# the old entry until vacuum), and the planner read them all with a bitmap scan: 4 ms a claim
# with 40,000 rows sent since the last vacuum, against 0.08 ms for an index scan of the partial
# index, which also skips the dead entries it has seen once. The purge finds old sent rows by
# ix_outbox_published; holding sent rows only, it takes no entry from an insert, so a push's
# insert and the relay's update do not meet on the same index page.
UNSENT = "published_at IS NULL"
SENT = "published_at IS NOT NULL"

# The relay's transaction on PostgreSQL, begun in one round trip. Its claim is a prepared statement
# that gets a generic plan after five rounds; one planned while the outbox is new and small reads
# the table sequentially (cheaper than a TID or index scan of 10 pages) and keeps doing so as the
# table grows, until autovacuum analyzes it. With sequential scans off for this transaction alone
# the plan is the partial index and a TID scan at any size
# (test_the_claim_planned_on_a_new_outbox_stays_good_as_it_grows). The transaction only marks rows
# sent after the broker confirmed them, so its commit need not wait for the WAL flush: a mark a
# crash loses means those rows are published again, and consumers' inboxes drop the copies.
_BEGIN = "BEGIN; SET LOCAL enable_seqscan = off; SET LOCAL synchronous_commit = off"


def make_outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
               autoincrement=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("type", String(100), nullable=False),
        Column("body", Text, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("published_at", UTCDateTime, nullable=True),
        Column("attempts", Integer, nullable=False, default=0),
        Column("last_error", Text, nullable=True),
        Index("ix_outbox_unsent", "id", postgresql_where=text(UNSENT), sqlite_where=text(UNSENT)),
        Index("ix_outbox_published", "published_at", postgresql_where=text(SENT), sqlite_where=text(SENT)),
    )


def upgrade_indexes(op: Any) -> None:
    """For each service's migration (alembic `op`): one partial index for unsent rows, one for sent."""
    op.drop_index("ix_outbox_unsent", table_name="outbox")
    op.create_index("ix_outbox_unsent", "outbox", ["id"], postgresql_where=text(UNSENT), sqlite_where=text(UNSENT))
    op.create_index("ix_outbox_published", "outbox", ["published_at"], postgresql_where=text(SENT),
                    sqlite_where=text(SENT))


def downgrade_indexes(op: Any) -> None:
    op.drop_index("ix_outbox_published", table_name="outbox")
    op.drop_index("ix_outbox_unsent", table_name="outbox")
    op.create_index("ix_outbox_unsent", "outbox", ["published_at", "id"])


class OutboxRelay:
    def __init__(
        self,
        service: str,
        sessionmaker: async_sessionmaker[AsyncSession],
        table: Table,
        transport: Transport,
        *,
        batch_size: int = 500,
        interval: float = 0.5,
        retention: timedelta = timedelta(hours=24),
        lock_scope: str | None = None,
        events_per_message: int = 1,
        round_interval: float = 0.0,
    ) -> None:
        self.service = service
        self._per_message = events_per_message
        self._round_interval = round_interval  # the least time between the starts of two rounds
        self._sessions = sessionmaker
        self._table = table
        self._transport = transport
        self._batch_size = batch_size
        self._interval = interval
        self._retention = retention
        self._wake = asyncio.Event()
        # Advisory locks span the database: key by schema too, so services (or whole stacks
        # with their own schema prefix) sharing one database do not take turns.
        lock_key = zlib.crc32(f"taktline.outbox.{lock_scope or service}".encode())
        self._lock = select(func.pg_try_advisory_xact_lock(lock_key)).scalar_subquery()
        self._claims: dict[str, Select[Any]] = {}
        # PostgreSQL: lock the next unsent rows in id order and mark them sent, in one statement.
        # The rows are marked by their ctid, which the claim's row lock keeps still until the end
        # of the transaction (a TID scan, no index descent).
        self.claim_and_mark = (
            f'UPDATE "{table.name}" SET published_at = $1 WHERE ctid = ANY(ARRAY('
            f'SELECT ctid FROM "{table.name}" WHERE {UNSENT} AND (SELECT pg_try_advisory_xact_lock({lock_key})) '
            f"ORDER BY id LIMIT {int(batch_size)} FOR UPDATE SKIP LOCKED)) RETURNING id, event_id, type, body"
        )

    def wake(self) -> None:
        """Called after a commit that wrote outbox rows: publish now, not at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        backoff = self._interval
        rounds = 0
        loop = asyncio.get_running_loop()
        last_round = -math.inf
        while True:
            if (hold := last_round + self._round_interval - loop.time()) > 0:
                # Busy: what commits meanwhile goes out with this round, in the same message
                # (decision 0011), instead of a round, a message and a delivery for each commit.
                await asyncio.sleep(hold)
            self._wake.clear()  # before the round: a commit during it wakes the next one
            last_round = loop.time()
            try:
                published = await self.publish_pending()
                backoff = self._interval
                rounds += 1
                if rounds % 1000 == 1:
                    await self.purge()
                if published >= self._batch_size:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker or database away: keep the rows, retry later
                log.warning("outbox relay of %s failed: %s", self.service, exc)
                backoff = min(backoff * 2, 30.0)
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that
            # arrives as a commit wakes the relay, and stop() then waits for the next wake-up.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):
                    await self._wake.wait()

    def claim(self, dialect: str) -> Select[Any]:
        """The next unsent rows in id order (built once per dialect; SQLite's relay reads these).

        On PostgreSQL the relay claims and marks in one statement (`claim_and_mark`); this form
        is kept for reading the claim's plan."""
        if (query := self._claims.get(dialect)) is None:
            t = self._table
            query = select(t.c.id, t.c.event_id, t.c.type, t.c.body).where(t.c.published_at.is_(None)) \
                .order_by(t.c.id).limit(self._batch_size)
            if dialect == "postgresql":
                # The replica lock in the same statement (an uncorrelated subquery, evaluated once).
                # Another replica holding it reads as nothing to do.
                query = query.where(self._lock).with_for_update(skip_locked=True)
            self._claims[dialect] = query
        return query

    async def publish_pending(self) -> int:
        """Publish one batch of unsent rows; returns how many were published."""
        ids: list[int] = []  # what this round claimed, filled before it publishes
        try:
            async with self._sessions() as session:
                if session.bind.dialect.name == "postgresql":
                    await self._publish_pending_pg(session, ids)
                else:
                    await self._publish_pending_orm(session, ids)
        except PublishError as exc:
            await self._record_failure(ids, exc)
            raise
        if not ids:
            OUTBOX_PENDING.labels(self.service).set(0)
        EVENTS_PUBLISHED.labels(self.service).inc(len(ids))
        return len(ids)

    def _messages(self, rows: Any) -> list[OutboundMessage]:
        """Rows (id, event_id, type, body) in id order, consecutive events of a type packed together."""
        return pack(((r[2], r[1], r[3].encode()) for r in rows), per_message=self._per_message,
                    producer=self.service)

    async def _publish_pending_pg(self, session: AsyncSession, ids: list[int]) -> None:
        """Claim and mark, publish with confirms, commit: three round trips and no ORM. A failed
        publish rolls the mark back."""
        async with pg_driver(session) as driver:
            await driver.execute(_BEGIN)
            try:
                # RETURNING gives the rows in no particular order.
                rows = sorted(await driver.fetch(self.claim_and_mark, utcnow()), key=itemgetter(0))
                ids.extend(r[0] for r in rows)
                if rows:
                    await self._transport.publish(self._messages(rows))
            except BaseException:
                try:
                    await driver.execute("ROLLBACK")
                except BaseException:
                    driver.terminate()  # never hand the pool a connection inside a transaction
                raise
            await driver.execute("COMMIT")

    async def _publish_pending_orm(self, session: AsyncSession, ids: list[int]) -> None:
        t = self._table
        async with session.begin():
            rows = (await session.execute(self.claim(session.bind.dialect.name))).all()
            if not rows:
                return
            ids.extend(r.id for r in rows)
            # The rows are marked sent while the broker's confirms come in: the mark is seen only if
            # this transaction commits, and a failed publish rolls it back.
            publishing = asyncio.ensure_future(self._transport.publish(self._messages(rows)))
            try:
                await session.execute(update(t).where(t.c.id.in_(ids)).values(published_at=utcnow()))
            except BaseException:
                publishing.cancel()
                await asyncio.gather(publishing, return_exceptions=True)
                raise
            await publishing

    async def _record_failure(self, ids: list[int], error: Exception) -> None:
        """In its own transaction: the claim's transaction ended without marking anything sent."""
        t = self._table
        async with self._sessions() as session, session.begin():
            await session.execute(update(t).where(t.c.id.in_(ids))
                                  .values(attempts=t.c.attempts + 1, last_error=str(error)[:1000]))

    async def pending(self) -> int:
        async with self._sessions() as session:
            t = self._table
            return int(await session.scalar(
                select(func.count()).select_from(t).where(t.c.published_at.is_(None))) or 0)

    async def purge(self) -> None:
        t = self._table
        async with self._sessions() as session, session.begin():
            await session.execute(
                delete(t).where(t.c.published_at.is_not(None),
                                t.c.published_at < utcnow() - self._retention)
            )
