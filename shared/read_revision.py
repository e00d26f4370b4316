"""A service's read revision: one counter row, moved by database triggers in the same transaction
as any change to the tables a cached read depends on (shared/read_cache.py keys bodies by it).

Triggers, not application code, so every writer counts: the ORM, Core statements, another
replica, a shop engineer's `psql`. On PostgreSQL they are deferred constraint triggers that bump
once per transaction at commit: the counter row is locked only for the instant before commit, so
it adds no lock-order deadlocks to transactions that also lock machine or process rows. SQLite
has one writer at a time, so plain row triggers do.

Readers take the revision *before* the data (shared/read_cache.py): a body read afterwards is at
least as new as its key, so a later request sees a newer revision and reads again, never an old
body under a new key.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import aiosqlite
import asyncpg
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

TABLE = "read_revision"
FUNCTION = "taktline_bump_read_revision"


def make_read_revision_table(metadata: MetaData) -> Table:
    # `epoch` changes when the row is created again (a restored or recreated database), so an ETag
    # from before can never match a revision number that happens to repeat.
    return Table(
        TABLE,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("epoch", String(32), nullable=False),
        Column("n", BigInteger, nullable=False),
    )


# table -> the columns whose change counts (None: every change, inserts and deletes too).
Watched = Mapping[str, Sequence[str] | None]


def trigger_statements(dialect: str, watched: Watched) -> list[str]:
    """DDL creating the counter row and the triggers (for a migration's `upgrade`)."""
    statements = [f"INSERT INTO {TABLE} (id, epoch, n) VALUES (1, '{uuid.uuid4().hex}', 0)"]
    if dialect == "postgresql":
        statements.append(f"""
            CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF current_setting('taktline.read_revision_bumped', true) IS DISTINCT FROM 'on' THEN
                    UPDATE {TABLE} SET n = n + 1 WHERE id = 1;
                    PERFORM set_config('taktline.read_revision_bumped', 'on', true);
                END IF;
                RETURN NULL;
            END $$""")
        for table, columns in watched.items():
            if columns:
                changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in columns)
                statements.append(
                    f"CREATE CONSTRAINT TRIGGER trg_{table}_read_revision AFTER UPDATE ON {table} "
                    f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION {FUNCTION}()")
            else:
                statements.append(
                    f"CREATE CONSTRAINT TRIGGER trg_{table}_read_revision AFTER INSERT OR UPDATE OR DELETE "
                    f"ON {table} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()")
        return statements
    bump = f"BEGIN UPDATE {TABLE} SET n = n + 1 WHERE id = 1; END"
    for table, columns in watched.items():
        if columns:
            statements.append(f"CREATE TRIGGER trg_{table}_read_revision AFTER UPDATE OF {', '.join(columns)} "
                              f"ON {table} {bump}")
        else:
            for event in ("INSERT", "UPDATE", "DELETE"):
                statements.append(f"CREATE TRIGGER trg_{table}_read_revision_{event.lower()} AFTER {event} "
                                  f"ON {table} {bump}")
    return statements


def drop_statements(dialect: str, watched: Watched) -> list[str]:
    """DDL undoing trigger_statements (for a migration's `downgrade`)."""
    if dialect == "postgresql":
        return [f"DROP TRIGGER trg_{t}_read_revision ON {t}" for t in watched] + [f"DROP FUNCTION {FUNCTION}()"]
    return [f"DROP TRIGGER trg_{t}_read_revision{suffix}" for t, columns in watched.items()
            for suffix in ([""] if columns else ["_insert", "_update", "_delete"])]


QUERY = f"SELECT epoch, n FROM {TABLE} WHERE id = 1"


def _as_revision(row: Any) -> str | None:
    return None if row is None else f"{row[0]}.{row[1]}"


async def current(session: AsyncSession) -> str | None:
    """The revision as an opaque string (epoch and counter), or None without the row."""
    return _as_revision((await session.execute(text(QUERY))).first())


class RevisionReader:
    """The current revision for many concurrent requests, one query at a time on its own
    connection (no pool checkout, ping or transaction per request).

    Every caller gets the answer of a query that *began after it asked*, so it sees every commit
    that preceded its request (a client's own write, another replica's); callers who ask while a
    query runs share the next one. Under load that is a query per round trip, not per request.
    """

    def __init__(self, engine: AsyncEngine, schema: str | None) -> None:
        self._url = engine.url
        self._schema = schema
        self._postgres = engine.dialect.name == "postgresql"
        self._conn: Any = None
        self._next: asyncio.Future[str | None] | None = None
        self._task: asyncio.Task[None] | None = None

    async def get(self) -> str | None:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            if self._task is None or self._task.done():
                self._task = asyncio.create_task(self._run(), name="read-revision")
        return await asyncio.shield(self._next)

    async def _run(self) -> None:
        while self._next is not None:
            future, self._next = self._next, None
            try:
                value = await self._query()
            except Exception as exc:
                future.set_exception(exc)
                future.exception()  # retrieved: its callers may all have gone
                await self._drop()
            else:
                future.set_result(value)

    async def _query(self) -> str | None:
        if self._conn is None:
            self._conn = await self._connect()
        if self._postgres:
            return _as_revision(await self._conn.fetchrow(QUERY))
        async with self._conn.execute(QUERY) as cursor:
            return _as_revision(await cursor.fetchone())

    async def _connect(self) -> Any:
        if self._postgres:
            dsn = self._url.set(drivername="postgresql").render_as_string(hide_password=False)
            settings = {"application_name": "taktline-read-revision"}
            if self._schema:
                settings["search_path"] = self._schema
            return await asyncpg.connect(dsn, server_settings=settings, timeout=10)
        # Autocommit: each read sees the newest commit (WAL).
        return await aiosqlite.connect(self._url.database or ":memory:", isolation_level=None, timeout=30)

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await conn.close()

    async def close(self) -> None:
        # Shutdown never waits on a query: a stuck one (a database gone silent) would hold it.
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=2)  # bounded even if the query ignores the cancel
        if self._next is not None and not self._next.done():
            self._next.cancel()
        self._next = None
        await self._drop()
