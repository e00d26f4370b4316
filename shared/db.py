"""Engines, sessions and column types shared by every service's models."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from sqlalchemy import JSON, DateTime, MetaData, Table, any_, bindparam, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def make_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


# JSON that is JSONB on PostgreSQL. Mutations are not tracked: assign a new value.
JSONType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite stores naive text otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def normalize_url(url: str) -> str:
    """Accept the plain URLs people paste and pick the async driver."""
    for prefix, driver in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(prefix):
            return driver + url[len(prefix) :]
    return url


def is_postgres(engine_or_url: AsyncEngine | str) -> bool:
    if isinstance(engine_or_url, AsyncEngine):
        return engine_or_url.dialect.name == "postgresql"
    return make_url(normalize_url(engine_or_url)).get_backend_name() == "postgresql"


def make_engine(url: str, *, schema: str | None = None, pool_size: int = 10, pre_ping: bool = False,
                application_name: str | None = None) -> AsyncEngine:
    """An async engine. On PostgreSQL the service's tables live in `schema` (search_path).

    Without `pre_ping` a connection the server dropped fails its next statement once; SQLAlchemy
    then invalidates the whole pool, so a restart costs one failed statement, not a round trip
    on every checkout. `application_name` names the connections in pg_stat_activity."""
    url = normalize_url(url)
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"pool_pre_ping": pre_ping}
    if parsed.get_backend_name() == "postgresql":
        # The hot batch statements keep one text (insert_new, among), but IN lists and ORM
        # multi-row inserts elsewhere are one text per size: a cache of 100 per connection
        # evicts them and every miss costs a PREPARE round trip.
        connect_args: dict[str, Any] = {"prepared_statement_cache_size": 1000}
        server_settings = {"search_path": schema} if schema else {}
        if application_name:
            server_settings["application_name"] = application_name
        if server_settings:
            connect_args["server_settings"] = server_settings
        kwargs["connect_args"] = connect_args
        kwargs.update(pool_size=pool_size, max_overflow=pool_size)
        return create_async_engine(url, **kwargs)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 30})
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    # pysqlite's own transaction handling defers BEGIN; take control of it so every
    # transaction starts IMMEDIATE (no lock-upgrade deadlocks between writers).
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")  # first: the next pragmas may wait for a writer
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_unix(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def from_unix(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def database_unavailable(exc: BaseException) -> bool:
    """The database (or the network to it) is away, as opposed to a bad statement or a bug:
    worth retrying, and for an HTTP caller a 503, not a 500."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    return isinstance(exc, ConnectionError)


@contextlib.asynccontextmanager
async def pg_driver(session: AsyncSession) -> AsyncIterator[asyncpg.Connection]:
    """The session's asyncpg connection, for a hot path whose ORM form costs several statements.

    Its statements run in the session's transaction if the session has begun one, else each in
    its own (asyncpg does not BEGIN by itself), so such a path writes in a single statement.
    SQLAlchemy does not see the driver's errors: a connection the server closed is invalidated
    here (or the pool would hand it out again) and the error becomes a ConnectionError, which
    callers treat as the database being away (`database_unavailable`: a 503, a retry).
    PostgreSQL only (`session.bind.dialect.name`)."""
    conn = await session.connection()
    driver = (await conn.get_raw_connection()).driver_connection
    try:
        yield driver
    except Exception as exc:
        if not driver.is_closed():
            raise
        await conn.invalidate()
        raise ConnectionError(f"database connection lost: {exc}") from exc


def among(column: Any, values: Iterable[Any], dialect: str) -> Any:
    """`column IN (values)`; on PostgreSQL `column = ANY(:array)`, one parameter whatever the
    count, so the statement is prepared once instead of once per list length.

    One text also means a cached generic plan after five runs, planned on the statistics of the
    time: fine for tables that have them, not for one that starts empty and grows fast (the
    outbox relay keeps IN lists, shared/outbox.py)."""
    values = list(values)
    if dialect == "postgresql":
        return column == any_(bindparam(None, values, type_=postgresql.ARRAY(column.type)))
    return column.in_(values)


async def insert_new(session: AsyncSession, table: Table, key: str, rows: list[dict[str, Any]]) -> set[Any]:
    """`INSERT … ON CONFLICT (key) DO NOTHING RETURNING key` of `rows` (all with the same keys);
    returns the keys that were not there yet (the inbox's message ids, the outbox's event ids).

    On PostgreSQL the rows travel as one JSON document (`json_rows`), so the statement's text is
    the same whatever the batch size: prepared once per connection, where a multi-row VALUES list
    is a new statement (a Parse round trip and a fresh plan) for every new size, a tenth of a
    consumer batch's time under load (docs/performance.md)."""
    if not rows:
        return set()
    dialect = session.bind.dialect.name
    statement = _insert_new(table, key, tuple(rows[0]), dialect)
    if dialect == "postgresql":
        result = await session.execute(statement, {"rows": json_rows(rows)})
    else:
        result = await session.execute(statement, rows)
    return set(result.scalars())


@functools.cache
def _insert_new(table: Table, key: str, columns: tuple[str, ...], dialect: str) -> Any:
    if dialect == "postgresql":
        quote = _PG.identifier_preparer.quote
        names = ", ".join(quote(c) for c in columns)
        return text(f"INSERT INTO {quote(table.name)} ({names}) SELECT {names} "
                    f"FROM {recordset(table, columns)} ON CONFLICT ({quote(key)}) DO NOTHING RETURNING {quote(key)}")
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=[key]).returning(table.c[key])


_PG = postgresql.dialect()


def recordset(table: Table, columns: Iterable[str], param: str = "rows", alias: str = "r") -> str:
    """`json_to_recordset(:param) AS alias(column type, ...)`: rows sent as one JSON document
    (`json_rows`), typed as the table's columns (PostgreSQL)."""
    quote = _PG.identifier_preparer.quote
    record = ", ".join(f"{quote(c)} {table.c[c].type.compile(dialect=_PG)}" for c in columns)
    return f"json_to_recordset(CAST(:{param} AS json)) AS {alias}({record})"


def json_rows(rows: Iterable[Mapping[str, Any]]) -> str:
    """Rows as the JSON document `recordset` reads. One text parameter costs the client a fifth of
    the CPU of an array per column (asyncpg checks every element of an array), and the server no
    more. Datetimes go as ISO 8601 with their offset (naive ones as UTC)."""
    return orjson.dumps(list(rows), option=orjson.OPT_NAIVE_UTC).decode()


async def dispose(engine: AsyncEngine) -> None:
    """Dispose of the engine, then end the connection closes it leaves hanging.

    With aiosqlite, a connection whose user was cancelled is closed "gracefully" in a task of its
    own while SQLAlchemy also stops its worker thread; if the cancel lands in that close, its
    `finally` waits for a second stop the gone thread never answers, and the task waits forever
    (so would the process's shutdown, and a test's event-loop teardown, which cancels it once).
    Cancelled until done, as the collector's supervisor does with its readers."""
    await engine.dispose()
    for task in asyncio.all_tasks():
        name = getattr(task.get_coro(), "__qualname__", "")
        if task is asyncio.current_task() or not name.endswith("_terminate_graceful_close"):
            continue
        for _ in range(20):
            if task.done():
                break
            task.cancel()
            await asyncio.wait([task], timeout=0.1)
