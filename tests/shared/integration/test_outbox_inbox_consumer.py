"""Unit of work, outbox relay, inbox and consumer on SQLite and on PostgreSQL.

Uses a test-only metadata (an `items` table next to the outbox and inbox) and the
in-memory transport, so each mechanism is exercised against both real databases.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.consumer import Consumer
from shared.db import make_engine, make_metadata, make_sessionmaker
from shared.errors import InvalidInput
from shared.events import Envelope, MachineDeleted, Payload, ToolChanged, envelopes_in
from shared.inbox import make_inbox_table
from shared.outbox import OutboxRelay, make_outbox_table
from shared.transport.base import OutboundMessage, PublishError, pack
from shared.transport.memory import MemoryTransport
from shared.uow import UnitOfWork
from tests.process.conftest import Delivery

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.integration)]

metadata: MetaData = make_metadata()
outbox = make_outbox_table(metadata)
inbox = make_inbox_table(metadata)
items = Table("items", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)))


@dataclass
class Db:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    def uow(self, on_commit=None) -> UnitOfWork:  # type: ignore[no-untyped-def]
        return UnitOfWork(self.sessions, producer="test", outbox=outbox, on_commit=on_commit)

    async def count(self, table: Table, *where: object) -> int:
        async with self.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(table).where(*where)) or 0)


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Db]:
    schema = None
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        schema = f"t{uuid.uuid4().hex[:10]}"
        admin = make_engine(url)
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await admin.dispose()
    else:
        url = f"sqlite:///{tmp_path / 'shared.db'}"
    engine = make_engine(url, schema=schema)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        yield Db(engine, make_sessionmaker(engine))
    finally:
        await engine.dispose()
        if schema:
            admin = make_engine(url)
            async with admin.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            await admin.dispose()


async def eventually(condition, within: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    """Poll until `condition()` holds (never a fixed sleep as the assertion)."""
    async with asyncio.timeout(within):
        while True:
            result = condition()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.01)


def tool_consumer(db: Db, transport: MemoryTransport, handler, **options) -> Consumer:  # type: ignore[no-untyped-def]
    """A consumer of telemetry.tool_changed on the test tables; batches of 50 within 20 ms unless told."""
    options = {"batch_size": 50, "batch_wait": 0.02, **options}
    return Consumer(service="test", queue="test", transport=transport, uow_factory=db.uow, inbox=inbox,
                    subscriptions={"telemetry.tool_changed": handler}, **options)


async def _ignore(uow: UnitOfWork, payload: Payload, envelope: Envelope) -> None:
    pass


async def _insert_tool(uow: UnitOfWork, payload: Payload, envelope: Envelope) -> None:
    await uow.session.execute(insert(items).values(name=payload.tool))  # type: ignore[attr-defined]


async def _insert_tool_but_t2(uow: UnitOfWork, payload: Payload, envelope: Envelope) -> None:
    if payload.tool == "T2":  # type: ignore[attr-defined]
        raise InvalidInput("tool", "rejected by the domain")
    await _insert_tool(uow, payload, envelope)


def event(n: int, machine: int = 1) -> ToolChanged:
    return ToolChanged(machine_id=machine, timestamp=float(n), tool=f"T{n}")


class TestUnitOfWork:
    async def test_commit_writes_rows_and_outbox_together_and_wakes_the_relay(self, db: Db) -> None:
        woken: list[bool] = []
        async with db.uow(on_commit=lambda: woken.append(True)) as uow:
            await uow.session.execute(insert(items).values(name="a"))
            uow.emit(event(1))
            uow.emit(event(2))
            await uow.commit()
        assert await db.count(items) == 1
        assert await db.count(outbox) == 2
        assert woken == [True]

    async def test_taken_outbox_rows_are_the_callers_to_write_and_still_wake_the_relay(self, db: Db) -> None:
        woken: list[bool] = []
        async with db.uow(on_commit=lambda: woken.append(True)) as uow:
            first, second = uow.emit(event(1)), uow.emit(event(2))
            rows = uow.take_outbox_rows()
            assert rows is not None
            assert [(r["event_id"], r["type"]) for r in rows] == [(str(first.id), ToolChanged.type),
                                                                  (str(second.id), ToolChanged.type)]
            assert uow.take_outbox_rows() == []  # taken once
            await uow.session.execute(insert(outbox), [{**rows[0], "attempts": 0}])  # the caller's statement
            await uow.commit()
        assert await db.count(outbox) == 1  # commit wrote nothing more
        assert woken == [True]

    async def test_no_rows_are_taken_while_an_event_waits_for_a_flush(self, db: Db) -> None:
        async with db.uow() as uow:
            uow.emit(event(1))
            uow.emit_after_flush(lambda: event(2))
            assert uow.take_outbox_rows() is None
            await uow.commit()
        assert await db.count(outbox) == 2  # both written at commit, as usual

    async def test_events_after_flush_see_assigned_ids_and_keep_emit_order(self, db: Db) -> None:
        rows = [{"name": "a"}, {"name": "b"}]
        async with db.uow() as uow:
            uow.emit(event(1))
            for row in rows:
                # What an ORM insert does: the id is known only after the flush at commit.
                uow.emit_after_flush(lambda row=row: ToolChanged(machine_id=row["id"], timestamp=2.0, tool=row["name"]))
                row["id"] = (await uow.session.execute(insert(items).values(name=row["name"]))).inserted_primary_key[0]
            uow.emit(event(3))
            await uow.commit()
        async with db.sessions() as session:
            bodies = (await session.scalars(select(outbox.c.body).order_by(outbox.c.id))).all()
        data = [Envelope.model_validate_json(b).data for b in bodies]
        assert [(d["tool"], d["machine_id"]) for d in data] == [("T1", 1), ("a", rows[0]["id"]),
                                                                ("b", rows[1]["id"]), ("T3", 1)]

    async def test_writes_before_commit_go_in_with_the_transaction_and_not_after_a_rollback(self, db: Db) -> None:
        collected = [{"name": "a"}, {"name": "b"}]
        async with db.uow() as uow:
            uow.before_commit(lambda: uow.session.execute(insert(items), collected))
            collected.append({"name": "c"})  # added after the registration: written at commit all the same
            await uow.commit()
        assert await db.count(items) == 3
        async with db.uow() as uow:
            uow.before_commit(lambda: uow.session.execute(insert(items), [{"name": "d"}]))
            await uow.rollback()
            await uow.commit()  # nothing left to write
        assert await db.count(items) == 3

    async def test_an_error_rolls_back_rows_and_events(self, db: Db) -> None:
        with pytest.raises(RuntimeError):
            async with db.uow() as uow:
                await uow.session.execute(insert(items).values(name="a"))
                uow.emit(event(1))
                raise RuntimeError("boom")
        assert await db.count(items) == 0
        assert await db.count(outbox) == 0

    async def test_leaving_without_commit_rolls_back(self, db: Db) -> None:
        async with db.uow() as uow:
            await uow.session.execute(insert(items).values(name="a"))
            uow.emit(event(1))
        assert await db.count(items) == 0 and await db.count(outbox) == 0


class FlakyTransport(MemoryTransport):
    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.sent: list[OutboundMessage] = []

    async def publish(self, messages: Sequence[OutboundMessage]) -> None:
        if self.failures:
            self.failures -= 1
            raise PublishError("broker away")
        self.sent.extend(messages)


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[asyncio.Task[None]]:
    """The relay's loop as a task; cancelled and awaited (bounded) at the end, so no relay is left
    mid-transaction while the fixture disposes the engine."""
    task = asyncio.create_task(relay.run())
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.wait([task], timeout=5)


class TestOutboxRelay:
    async def test_publishes_in_commit_order_and_marks_rows_sent(self, db: Db) -> None:
        for n in range(5):
            async with db.uow() as uow:
                uow.emit(event(n))
                await uow.commit()
        transport = FlakyTransport(failures=0)
        relay = OutboxRelay("test", db.sessions, outbox, transport, batch_size=2)
        assert [await relay.publish_pending() for _ in range(4)] == [2, 2, 1, 0]
        assert [Envelope.from_bytes(m.body).data["tool"] for m in transport.sent] == [f"T{n}" for n in range(5)]
        assert await db.count(outbox, outbox.c.published_at.is_(None)) == 0

    async def test_packs_consecutive_events_of_a_type_into_one_message_in_order(self, db: Db) -> None:
        async with db.uow() as uow:
            for n in range(5):
                uow.emit(event(n))
            uow.emit(MachineDeleted(machine_id=1))
            uow.emit(event(6))
            await uow.commit()
        transport = FlakyTransport(failures=0)
        relay = OutboxRelay("test", db.sessions, outbox, transport, events_per_message=3)
        assert await relay.publish_pending() == 7
        assert [(m.routing_key, [e.data.get("tool") for e in envelopes_in(m.body)]) for m in transport.sent] == [
            (ToolChanged.type, ["T0", "T1", "T2"]), (ToolChanged.type, ["T3", "T4"]),
            (MachineDeleted.type, [None]), (ToolChanged.type, ["T6"])]
        assert await db.count(outbox, outbox.c.published_at.is_(None)) == 0

    async def test_a_failed_publish_keeps_the_rows_and_counts_the_attempt(self, db: Db) -> None:
        async with db.uow() as uow:
            uow.emit(event(1))
            await uow.commit()
        transport = FlakyTransport(failures=1)
        relay = OutboxRelay("test", db.sessions, outbox, transport)
        with pytest.raises(PublishError):
            await relay.publish_pending()
        async with db.sessions() as session:
            row = (await session.execute(select(outbox.c.attempts, outbox.c.last_error, outbox.c.published_at))).one()
        assert row.attempts == 1 and "broker away" in row.last_error and row.published_at is None
        assert await relay.publish_pending() == 1
        assert len(transport.sent) == 1

    async def test_the_running_relay_retries_until_the_broker_is_back(self, db: Db) -> None:
        transport = FlakyTransport(failures=2)
        relay = OutboxRelay("test", db.sessions, outbox, transport, interval=0.01)
        async with running(relay):
            async with db.uow(on_commit=relay.wake) as uow:
                uow.emit(event(7))
                await uow.commit()
            await eventually(lambda: bool(transport.sent))
        assert [Envelope.from_bytes(m.body).data["tool"] for m in transport.sent] == ["T7"]

    async def test_a_busy_relay_sends_what_commits_between_its_rounds_together(self, db: Db) -> None:
        transport = FlakyTransport(failures=0)
        relay = OutboxRelay("test", db.sessions, outbox, transport, interval=30, events_per_message=100,
                            round_interval=0.5)
        async with running(relay):
            await asyncio.sleep(0.05)  # its first round (nothing to send) is over
            started = time.monotonic()
            for n in range(3):  # three commits in quick succession, each waking the relay
                async with db.uow(on_commit=relay.wake) as uow:
                    uow.emit(event(n))
                    await uow.commit()
            await eventually(lambda: bool(transport.sent))
        # One round, one message, at least round_interval after the round before it.
        assert [[e.data["tool"] for e in envelopes_in(m.body)] for m in transport.sent] == [["T0", "T1", "T2"]]
        assert time.monotonic() - started >= 0.4

    async def test_an_idle_relay_publishes_a_commit_at_once(self, db: Db) -> None:
        transport = FlakyTransport(failures=0)
        relay = OutboxRelay("test", db.sessions, outbox, transport, interval=30, round_interval=1)
        async with running(relay):
            await asyncio.sleep(1.1)  # its first round (nothing to send) began longer ago than round_interval
            started = time.monotonic()
            async with db.uow(on_commit=relay.wake) as uow:
                uow.emit(event(1))
                await uow.commit()
            await eventually(lambda: bool(transport.sent))
        assert time.monotonic() - started < 0.9  # not held for round_interval (1 s)

    async def test_a_stop_that_comes_with_a_wake_up_stops_the_relay(self, db: Db) -> None:
        # Python 3.11's asyncio.wait_for dropped this cancel: the relay went on to wait an hour
        # for its next round and service shutdown (and a CI run) hung on it.
        transport = FlakyTransport(failures=0)
        relay = OutboxRelay("test", db.sessions, outbox, transport, interval=3600)
        async with running(relay) as task:
            async with db.uow(on_commit=relay.wake) as uow:
                uow.emit(event(1))
                await uow.commit()
            await eventually(lambda: bool(transport.sent))
            for _ in range(5):  # let it get back to waiting for the next wake-up
                await asyncio.sleep(0)
            relay.wake()  # a commit lands in the same loop turn as the stop
            task.cancel()
            done, _ = await asyncio.wait([task], timeout=5)
            assert task in done and task.cancelled()


    # Replica coordination uses PostgreSQL locks; on SQLite one relay runs per database.
    @pytest.mark.parametrize("db", [pytest.param("postgres", marks=pytest.mark.integration)], indirect=True)
    async def test_two_relays_on_postgres_publish_each_row_once_in_order(self, db: Db) -> None:
        for n in range(300):
            async with db.uow() as uow:
                uow.emit(event(n))
                await uow.commit()

        class SlowTransport(FlakyTransport):
            async def publish(self, messages: Sequence[OutboundMessage]) -> None:
                # Every other batch is slow: without coordination the next batch would overtake it.
                first = int(Envelope.from_bytes(messages[0].body).data["tool"][1:])
                await asyncio.sleep(0.03 if first % 50 == 0 else 0.001)
                await super().publish(messages)

        transport = SlowTransport(failures=0)
        relays = [OutboxRelay("test", db.sessions, outbox, transport, batch_size=25) for _ in range(2)]

        async def drain(relay: OutboxRelay) -> None:
            while await db.count(outbox, outbox.c.published_at.is_(None)):
                await relay.publish_pending()

        await asyncio.gather(*(drain(r) for r in relays))
        tools = [Envelope.from_bytes(m.body).data["tool"] for m in transport.sent]
        assert tools == [f"T{n}" for n in range(300)]

    @pytest.mark.parametrize("db", [pytest.param("postgres", marks=pytest.mark.integration)], indirect=True)
    async def test_a_relay_leaves_the_rows_to_the_replica_holding_the_lock(self, db: Db) -> None:
        import zlib

        async with db.uow() as uow:
            uow.emit(event(1))
            await uow.commit()
        transport = FlakyTransport(failures=0)
        relay = OutboxRelay("test", db.sessions, outbox, transport, lock_scope="held-elsewhere")
        key = zlib.crc32(b"taktline.outbox.held-elsewhere")
        async with db.engine.connect() as other:  # another replica, inside its round
            await other.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            assert await relay.publish_pending() == 0
            assert transport.sent == []
            await other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        assert await relay.publish_pending() == 1
        assert [Envelope.from_bytes(m.body).data["tool"] for m in transport.sent] == ["T1"]

    @pytest.mark.parametrize("db", [pytest.param("postgres", marks=pytest.mark.integration)], indirect=True)
    async def test_the_claim_reads_the_partial_index_of_unsent_rows(self, db: Db) -> None:
        from datetime import timedelta

        from shared.db import utcnow

        now = utcnow()
        async with db.engine.begin() as conn:
            await conn.execute(insert(outbox), [
                {"event_id": str(uuid.uuid4()), "type": "t", "body": "{}", "created_at": now, "attempts": 0,
                 "published_at": now - timedelta(hours=n % 48) if n < 19_990 else None} for n in range(20_000)])
            await conn.execute(text("ANALYZE outbox"))
        transport = MemoryTransport()
        await transport.start()
        relay = OutboxRelay("test", db.sessions, outbox, transport)
        async with db.engine.connect() as conn:
            claim = relay.claim("postgresql").compile(db.engine.sync_engine, compile_kwargs={"literal_binds": True})
            plan = "\n".join((await conn.exec_driver_sql(f"EXPLAIN {claim}")).scalars())
        mark_plan = await _generic_plan_of(db, relay)
        # An ordered scan of the unsent rows alone: not a bitmap scan of every row sent since the last vacuum.
        assert "Index Scan using ix_outbox_unsent" in plan, plan
        assert "Index Scan using ix_outbox_unsent" in mark_plan and "Tid Scan" in mark_plan, mark_plan
        assert await relay.publish_pending() == 10

    @pytest.mark.parametrize("db", [pytest.param("postgres", marks=pytest.mark.integration)], indirect=True)
    async def test_the_claim_planned_on_a_new_outbox_stays_good_as_it_grows(self, db: Db) -> None:
        # A prepared statement's generic plan is made once; on an empty table a sequential scan
        # costs least, and it would then read every row of the grown outbox on every round.
        relay = OutboxRelay("test", db.sessions, outbox, FlakyTransport(failures=0))
        plan = await _generic_plan_of(db, relay)
        assert "Seq Scan" not in plan and "Tid Scan" in plan, plan

    @pytest.mark.parametrize("db", [pytest.param("postgres", marks=pytest.mark.integration)], indirect=True)
    async def test_a_round_leaves_no_transaction_open_on_its_connection(self, db: Db) -> None:
        async with db.uow() as uow:
            uow.emit(event(1))
            await uow.commit()
        relay = OutboxRelay("test", db.sessions, outbox, FlakyTransport(failures=1), lock_scope="one-connection")
        with pytest.raises(PublishError):
            await relay.publish_pending()  # marked, then rolled back
        assert await relay.publish_pending() == 1  # committed
        async with db.engine.connect() as conn:  # each connection the pool hands out is idle
            driver = (await conn.get_raw_connection()).driver_connection
            assert not driver.is_in_transaction()
        async with db.sessions() as session:
            row = (await session.execute(select(outbox.c.attempts, outbox.c.published_at))).one()
        assert row.attempts == 1 and row.published_at is not None


async def _generic_plan_of(db: Db, relay: OutboxRelay) -> str:
    """The plan the relay's claim-and-mark gets after five rounds, in the relay's transaction."""
    from shared.db import utcnow
    from shared.outbox import _BEGIN

    async with db.engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        await driver.execute(_BEGIN)
        try:
            await driver.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            return "\n".join(r[0] for r in await driver.fetch(f"EXPLAIN {relay.claim_and_mark}", utcnow()))
        finally:
            await driver.execute("ROLLBACK")


class TestInbox:
    async def test_record_all_once_and_purge_of_old_ids(self, db: Db) -> None:
        from datetime import timedelta

        from shared.db import utcnow
        from shared.inbox import purge_inbox, record_all_once

        async with db.sessions() as session, session.begin():
            assert await record_all_once(session, inbox, [("m-1", "x")]) == {"m-1"}
            assert await record_all_once(session, inbox, [("m-1", "x"), ("m-3", "x"), ("m-3", "x")]) == {"m-3"}
            await session.execute(inbox.update().values(received_at=utcnow() - timedelta(days=8)))
            assert await record_all_once(session, inbox, [("m-2", "x")]) == {"m-2"}
            await purge_inbox(session, inbox, timedelta(days=7))
        async with db.sessions() as session:
            assert (await session.scalars(select(inbox.c.message_id))).all() == ["m-2"]


    async def test_rows_keep_awkward_text_and_instants_exactly(self, db: Db) -> None:
        """On PostgreSQL the rows travel as one JSON document: quotes, backslashes, newlines and
        non-ASCII text come back unchanged, and an instant with any offset is the same instant."""
        from datetime import UTC, datetime, timedelta, timezone

        from shared.db import insert_new

        awkward = ['"quoted" \\ back\\slash', "line\nbreak\ttab", "Spindel überhitzt ⚠ 主轴", "{\"json\": [1, 2]}"]
        at = datetime(2026, 12, 4, 17, 30, 15, 123456, tzinfo=UTC)
        rows = [{"event_id": f"e{n}", "type": "x.y", "body": body, "attempts": n,
                 "created_at": at.astimezone(timezone(timedelta(hours=n)))} for n, body in enumerate(awkward)]
        async with db.sessions() as session, session.begin():
            assert await insert_new(session, outbox, "event_id", rows) == {r["event_id"] for r in rows}
            assert await insert_new(session, outbox, "event_id", rows[:1]) == set()  # already there
        async with db.sessions() as session:
            stored = (await session.execute(select(outbox.c.event_id, outbox.c.body, outbox.c.created_at,
                                                   outbox.c.attempts).order_by(outbox.c.event_id))).all()
        assert [(e, b, c, a) for e, b, c, a in stored] == [(f"e{n}", body, at, n) for n, body in enumerate(awkward)]

    async def test_one_statement_text_for_every_batch_size_on_postgres(self, db: Db) -> None:
        """A multi-row VALUES list is a new prepared statement per batch size; the arrays are not."""
        from sqlalchemy import event as sa_event

        from shared.inbox import record_all_once

        statements: list[str] = []

        def record(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
            statements.append(statement)

        sa_event.listen(db.engine.sync_engine, "before_cursor_execute", record)
        try:
            async with db.sessions() as session, session.begin():
                for size in (1, 3, 7):
                    ids = [(f"s{size}-{n}", "x") for n in range(size)]
                    assert await record_all_once(session, inbox, ids) == {i for i, _ in ids}
            async with db.uow() as uow:
                for n in range(5):
                    uow.emit(event(n))
                assert len(await uow.write_events()) == 5
                await uow.commit()
        finally:
            sa_event.remove(db.engine.sync_engine, "before_cursor_execute", record)
        inserts = [s for s in statements if s.startswith("INSERT INTO inbox")]
        assert len(inserts) == 3
        if db.engine.dialect.name == "postgresql":
            assert len(set(inserts)) == 1 and "json_to_recordset" in inserts[0]
        assert await db.count(outbox) == 5


class TestConsumer:
    async def _run(self, db: Db, messages: list[OutboundMessage], handler, done, **options) -> MemoryTransport:  # type: ignore[no-untyped-def]
        transport = MemoryTransport(delivery_limit=3)
        await transport.start()
        consumer = tool_consumer(db, transport, handler, **options)
        await consumer.start()
        await transport.publish(messages)
        try:
            await eventually(lambda: done(transport))
        finally:
            await consumer.stop()
            await transport.close()
        return transport

    async def test_a_stop_that_comes_with_a_delivery_stops_the_consumer(self, db: Db) -> None:
        applied: list[str] = []

        async def handler(uow: UnitOfWork, payload: Payload, _: Envelope) -> None:
            applied.append(payload.tool)  # type: ignore[attr-defined]

        transport = MemoryTransport()
        await transport.start()
        # A long batch window: the first message waits in it for company.
        consumer = tool_consumer(db, transport, handler, batch_wait=30)
        await consumer.start()
        try:
            await transport.publish([self.message(1)])
            await eventually(lambda: transport.pending("test") == 0 and consumer._incoming.empty())
            for _ in range(5):
                await asyncio.sleep(0)
            # A delivery in the same loop turn as the stop.
            delivery = await consumer._read(Delivery.of(event(2)))  # type: ignore[arg-type]
            consumer._incoming.put_nowait((time.monotonic(), delivery))  # type: ignore[arg-type]
            stopping = asyncio.create_task(consumer.stop())
            done, _ = await asyncio.wait([stopping], timeout=5)
            assert stopping in done, "stop() still waiting: the worker swallowed its cancellation"
            assert applied == []  # the unfinished batch was dropped unacked, to be redelivered
        finally:
            if consumer._worker:
                consumer._worker.cancel()
            await transport.close()

    @staticmethod
    def message(n: int, id: str | None = None) -> OutboundMessage:
        envelope = Envelope.wrap(event(n), "collector", id=uuid.UUID(id) if id else None)
        return OutboundMessage.from_envelope(envelope)

    async def test_applies_each_message_once_even_when_redelivered(self, db: Db) -> None:
        async def handler(uow: UnitOfWork, payload: Payload, _: Envelope) -> None:
            await uow.session.execute(insert(items).values(name=payload.tool))  # type: ignore[attr-defined]

        twice = self.message(1)
        marker = self.message(4)
        seen: list[str] = []

        async def handler_and_marker(uow: UnitOfWork, payload: Payload, envelope: Envelope) -> None:
            await handler(uow, payload, envelope)
            seen.append(payload.tool)  # type: ignore[attr-defined]

        await self._run(db, [twice, self.message(2), twice, self.message(3), marker], handler_and_marker,
                        lambda _: "T4" in seen)
        async with db.sessions() as session:
            names = sorted((await session.scalars(select(items.c.name))).all())
        assert names == ["T1", "T2", "T3", "T4"]
        assert await db.count(inbox) == 4

    async def test_prepare_sees_a_batch_s_fresh_events_once_inside_its_transaction(self, db: Db) -> None:
        prepared: list[list[str]] = []

        async def prepare(uow: UnitOfWork, payloads: Sequence[Payload]) -> None:
            tools = [p.tool for p in payloads]  # type: ignore[attr-defined]
            prepared.append(tools)
            await uow.session.execute(insert(items).values(name="prepared " + ",".join(tools)))

        async def handler(uow: UnitOfWork, payload: Payload, _: Envelope) -> None:
            if payload.tool == "T5":  # type: ignore[attr-defined]
                raise InvalidInput("tool", "rejected by the domain")
            await uow.session.execute(insert(items).values(name=payload.tool))  # type: ignore[attr-defined]

        async def names() -> list[str]:
            async with db.sessions() as session:
                return sorted((await session.scalars(select(items.c.name))).all())

        first = self.message(1)
        async def has(name: str) -> bool:
            return name in await names()

        await self._run(db, [first], handler, lambda _: has("T1"), prepare=prepare, batch_size=1)
        # One batch (full at four): T1 was applied before and T2 comes twice, so prepare sees T2, T3.
        second = self.message(2)
        await self._run(db, [first, second, second, self.message(3)], handler, lambda _: has("T3"), prepare=prepare,
                        batch_size=4, batch_wait=30)
        assert prepared == [["T1"], ["T2", "T3"]]
        assert await names() == ["T1", "T2", "T3", "prepared T1", "prepared T2,T3"]

        # A batch that fails is rolled back with what prepare wrote, then applied message by message.
        async def settled(t: MemoryTransport) -> bool:
            return len(t.dead_letters("test")) == 1 and "T6" in await names()

        await self._run(db, [self.message(5), self.message(6)], handler, settled, prepare=prepare,
                        batch_size=2, batch_wait=30)
        assert prepared[2:] == [["T5", "T6"], ["T5"], ["T6"]]
        assert await names() == ["T1", "T2", "T3", "T6", "prepared T1", "prepared T2,T3", "prepared T6"]

    async def test_an_idle_consumer_does_not_hold_a_lone_message_for_the_whole_window(self, db: Db) -> None:
        applied: list[float] = []

        async def handler(uow: UnitOfWork, payload: Payload, _: Envelope) -> None:
            applied.append(time.monotonic())

        sent = time.monotonic()
        # batch_wait 4 s; an idle consumer waits a tenth of it.
        await self._run(db, [self.message(1)], handler, lambda _: bool(applied), batch_wait=4)
        assert applied[0] - sent < 2.0

    def test_the_batch_window_follows_how_busy_the_consumer_is(self) -> None:
        consumer = Consumer(service="test", queue="test", transport=MemoryTransport(), uow_factory=lambda: None,  # type: ignore[arg-type,return-value]
                            inbox=inbox, subscriptions={}, batch_wait=0.01)
        assert consumer.batch_window == pytest.approx(0.001)  # idle: a tenth
        for _ in range(20):
            consumer._note_busy(busy=0.03, period=0.04)  # applying batches 75% of the time
        assert consumer.batch_window == pytest.approx(0.01)
        for _ in range(5):
            consumer._note_busy(busy=0.01, period=0.04)
        assert 0.001 < consumer.batch_window < 0.01  # easing off as the load falls
        for _ in range(30):
            consumer._note_busy(busy=0.005, period=1.0)
        assert consumer.batch_window == pytest.approx(0.001)

    async def test_no_window_for_messages_that_come_further_apart_than_it(self) -> None:
        consumer = Consumer(service="test", queue="test", transport=MemoryTransport(), uow_factory=lambda: None,  # type: ignore[arg-type,return-value]
                            inbox=inbox, subscriptions={ToolChanged.type: _ignore}, batch_wait=0.01)
        for _ in range(20):
            consumer._note_busy(busy=0.03, period=0.04)  # busy: the whole window ...
        assert consumer.batch_window == pytest.approx(0.01)
        for _ in range(20):  # ... while messages come 30 ms apart, as packed relay rounds do: none
            consumer._arrived -= 0.03
            await consumer._receive(Delivery.of(event(1)))  # type: ignore[arg-type]
        assert consumer.batch_window == pytest.approx(0.001)
        for _ in range(20):  # every 5 ms: a second one is likely within the window
            consumer._arrived -= 0.005
            await consumer._receive(Delivery.of(event(1)))  # type: ignore[arg-type]
        assert consumer.batch_window == pytest.approx(0.01)

    async def test_messages_are_read_ahead_up_to_two_batches_and_the_rest_when_taken(self) -> None:
        consumer = Consumer(service="test", queue="test", transport=MemoryTransport(), uow_factory=lambda: None,  # type: ignore[arg-type,return-value]
                            inbox=inbox, subscriptions={ToolChanged.type: _ignore}, batch_size=3, batch_wait=0)
        messages = [Delivery.of(event(n)) for n in range(8)]
        garbage = Delivery(b"not json", ToolChanged.type, "garbage")
        for message in [*messages[:6], garbage, *messages[6:]]:
            await consumer._receive(message)  # type: ignore[arg-type]
        read = [queued for _, queued in consumer._incoming._queue]  # type: ignore[attr-defined]
        assert [type(q).__name__ for q in read] == ["_Delivery"] * 6 + ["Delivery"] * 3  # 6 events read ahead
        assert consumer._read_ahead == 6
        batches = [[d.items[0].payload.tool for d in await consumer._next_batch()]  # type: ignore[attr-defined]
                   for _ in range(3)]
        assert batches == [["T0", "T1", "T2"], ["T3", "T4", "T5"], ["T6", "T7"]]
        assert garbage.settled == ["dead"] and consumer._read_ahead == 0

    async def test_the_window_runs_from_the_first_messages_arrival(self) -> None:
        consumer = Consumer(service="test", queue="test", transport=MemoryTransport(), uow_factory=lambda: None,  # type: ignore[arg-type,return-value]
                            inbox=inbox, subscriptions={ToolChanged.type: _ignore}, batch_wait=0.3)
        for _ in range(20):
            consumer._note_busy(busy=0.03, period=0.04)  # busy: the whole window
        queued, waited, fresh = (Delivery.of(event(n)) for n in range(3))
        # Queued while the batch before was applied, longer ago than the window: no more waiting.
        await consumer._receive(queued)  # type: ignore[arg-type]
        consumer._incoming.put_nowait((time.monotonic() - 1.0, await consumer._read(waited)))  # type: ignore[arg-type]
        consumer._incoming._queue.rotate(1)  # type: ignore[attr-defined]  # the older one first
        started = time.monotonic()
        assert [d.message for d in await consumer._next_batch()] == [waited, queued]
        assert time.monotonic() - started < 0.1
        # Just arrived: it waits the window for company.
        await consumer._receive(fresh)  # type: ignore[arg-type]
        started = time.monotonic()
        assert [d.message for d in await consumer._next_batch()] == [fresh]
        assert time.monotonic() - started >= 0.25

    async def test_a_failing_message_fails_alone_and_is_dead_lettered(self, db: Db) -> None:
        transport = await self._run(db, [self.message(n) for n in range(1, 5)], _insert_tool_but_t2,
                                    self.one_dead_and(db, applied=3))
        async with db.sessions() as session:
            names = sorted((await session.scalars(select(items.c.name))).all())
        assert names == ["T1", "T3", "T4"]
        assert [Envelope.from_bytes(m.body).data["tool"] for m in transport.dead_letters("test")] == ["T2"]

    @staticmethod
    def packed(*numbers: int) -> OutboundMessage:
        (message,) = pack([(ToolChanged.type, str(e.id), e.to_bytes())
                           for e in (Envelope.wrap(event(n), "collector") for n in numbers)],
                          per_message=len(numbers), producer="collector")
        return message

    async def names(self, db: Db) -> list[str]:
        async with db.sessions() as session:
            return sorted((await session.scalars(select(items.c.name))).all())

    @staticmethod
    def one_dead_and(db: Db, applied: int) -> Callable[[MemoryTransport], Awaitable[bool]]:
        """Done once one message is dead-lettered and `applied` rows are in."""
        async def settled(t: MemoryTransport) -> bool:
            return len(t.dead_letters("test")) == 1 and await db.count(items) == applied
        return settled

    @staticmethod
    def batches_into(batches: list[list[str]]) -> Callable[[UnitOfWork, Sequence[Payload]], Awaitable[None]]:
        """A prepare hook that records each batch's tools."""
        async def prepare(uow: UnitOfWork, payloads: Sequence[Payload]) -> None:
            batches.append([p.tool for p in payloads])  # type: ignore[attr-defined]
        return prepare

    async def test_a_packed_message_is_applied_in_one_transaction_and_acked_once(self, db: Db) -> None:
        batches: list[list[str]] = []

        async def done(t: MemoryTransport) -> bool:
            return await db.count(items) == 3 and t.pending("test") == 0

        transport = await self._run(db, [self.packed(1, 2, 3)], _insert_tool, done,
                                    prepare=self.batches_into(batches), batch_wait=0)
        assert batches == [["T1", "T2", "T3"]]
        assert await db.count(inbox) == 3 and transport.dead_letters("test") == []

    async def test_batch_size_counts_events_and_keeps_a_message_s_events_together(self, db: Db) -> None:
        batches: list[list[str]] = []

        async def done(t: MemoryTransport) -> bool:
            return await db.count(items) == 7

        await self._run(db, [self.packed(1, 2), self.packed(3, 4, 5), self.packed(6), self.packed(7)], _insert_tool,
                        done, prepare=self.batches_into(batches), batch_size=4, batch_wait=30)
        assert batches == [["T1", "T2", "T3", "T4", "T5"], ["T6", "T7"]]

    async def test_an_event_that_does_not_parse_sends_its_message_dead_after_the_others_are_applied(
            self, db: Db) -> None:
        good = self.packed(1, 2)
        bad = OutboundMessage(routing_key=good.routing_key, body=good.body[:-1] + b',{"type": "nonsense"}]',
                              message_id="bad")
        transport = await self._run(db, [bad, self.message(3)], _insert_tool, self.one_dead_and(db, applied=3))
        assert await self.names(db) == ["T1", "T2", "T3"]
        assert [m.message_id for m in transport.dead_letters("test")] == ["bad"]  # whole, as it came

    async def test_a_rejected_event_sends_its_message_dead_and_the_others_in_it_count_once(self, db: Db) -> None:
        transport = await self._run(db, [self.packed(1, 2, 3), self.message(4)], _insert_tool_but_t2,
                                    self.one_dead_and(db, applied=3))
        assert await self.names(db) == ["T1", "T3", "T4"]
        assert [[e.data["tool"] for e in envelopes_in(m.body)] for m in transport.dead_letters("test")] == [
            ["T1", "T2", "T3"]]

    async def test_a_failing_event_requeues_its_message_and_the_applied_ones_are_not_applied_again(
            self, db: Db) -> None:
        calls: list[str] = []

        async def handler(uow: UnitOfWork, payload: Payload, _: Envelope) -> None:
            calls.append(payload.tool)  # type: ignore[attr-defined]
            if payload.tool == "T2" and calls.count("T2") < 3:  # type: ignore[attr-defined]
                raise KeyError("a passing fault")
            await uow.session.execute(insert(items).values(name=payload.tool))  # type: ignore[attr-defined]

        async def settled(t: MemoryTransport) -> bool:
            return await db.count(items) == 3 and t.pending("test") == 0

        transport = await self._run(db, [self.packed(1, 2, 3)], handler, settled)
        assert await self.names(db) == ["T1", "T2", "T3"]
        assert calls.count("T1") == 2  # in the failed batch, then alone; the redelivery skips it (inbox)
        assert calls.count("T2") == 3 and transport.dead_letters("test") == []

    async def test_a_bug_is_retried_then_dead_lettered_at_the_delivery_limit(self, db: Db) -> None:
        calls: list[str] = []

        async def handler(uow: UnitOfWork, payload: Payload, _: Envelope) -> None:
            calls.append(payload.tool)  # type: ignore[attr-defined]
            if payload.tool == "T1":  # type: ignore[attr-defined]
                raise KeyError("a bug")

        transport = await self._run(db, [self.message(1)], handler, lambda t: len(t.dead_letters("test")) == 1)
        assert calls.count("T1") >= 3
        assert len(transport.dead_letters("test")) == 1
        assert await db.count(inbox) == 0  # nothing of the failed attempts was committed


POSTGRES_ONLY = pytest.mark.parametrize("db", [pytest.param("postgres", marks=pytest.mark.integration)], indirect=True)


async def _terminate(db: Db, pids: set[int]) -> None:
    """What a PostgreSQL restart does to the pool's connections, without stopping the server."""
    admin = make_engine(db.engine.url.render_as_string(hide_password=False))  # not one of the pool's
    try:
        async with admin.begin() as conn:
            for pid in pids:
                await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await admin.dispose()


class TestDatabaseRestart:
    """Pooled connections are not pinged before use (TAKTLINE_DATABASE_PRE_PING is off): a dropped
    connection fails one statement, is seen as the database being away, and the pool recovers."""

    @POSTGRES_ONLY
    async def test_a_dropped_connection_fails_once_as_unavailable_then_the_pool_reconnects(self, db: Db) -> None:
        from shared.db import database_unavailable

        async with db.sessions() as session:
            pid = int(await session.scalar(text("SELECT pg_backend_pid()")) or 0)
        async with db.engine.connect() as other:  # a second pooled connection that is dropped too
            other_pid = int(await other.scalar(text("SELECT pg_backend_pid()")) or 0)
        await _terminate(db, {pid, other_pid})
        with pytest.raises(Exception) as failure:
            async with db.sessions() as session:
                await session.scalar(text("SELECT 1"))
        assert database_unavailable(failure.value)
        async with db.sessions() as session:  # the pool replaced its stale connections
            assert await session.scalar(text("SELECT pg_backend_pid()")) not in (pid, other_pid)
        assert await db.count(items) == 0

    @POSTGRES_ONLY
    async def test_the_consumer_retries_a_batch_on_a_dropped_connection_and_applies_it_once(self, db: Db) -> None:
        pids: set[int] = set()

        async def handler(uow: UnitOfWork, payload: Payload, _: Envelope) -> None:
            pids.add(int(await uow.session.scalar(text("SELECT pg_backend_pid()")) or 0))
            await uow.session.execute(insert(items).values(name=payload.tool))  # type: ignore[attr-defined]

        transport = MemoryTransport(delivery_limit=3)
        await transport.start()
        consumer = tool_consumer(db, transport, handler)
        await consumer.start()
        try:
            await transport.publish([TestConsumer.message(1)])
            await eventually(lambda: db.count(items))
            await _terminate(db, pids)
            await transport.publish([TestConsumer.message(n) for n in range(2, 6)])

            async def settled() -> bool:
                try:
                    return transport.pending("test") == 0 and await db.count(items) == 5
                except DBAPIError:  # this check itself may draw a dropped connection once
                    return False

            await eventually(settled)
        finally:
            await consumer.stop()
            await transport.close()
        async with db.sessions() as session:
            names = sorted((await session.scalars(select(items.c.name))).all())
        assert names == ["T1", "T2", "T3", "T4", "T5"]
        assert transport.dead_letters("test") == []
