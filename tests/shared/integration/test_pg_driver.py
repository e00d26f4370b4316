"""shared.db.pg_driver: a session's asyncpg connection, and what happens when the server drops it."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from shared.db import database_unavailable, make_engine, make_sessionmaker, pg_driver


async def test_a_dropped_connection_is_a_connection_error_and_leaves_the_pool(postgres_url: str) -> None:
    name = f"taktline-test-{uuid.uuid4().hex[:8]}"
    engine = make_engine(postgres_url, application_name=name, pool_size=1)
    admin = make_engine(postgres_url)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions() as session, pg_driver(session) as driver:
            assert await driver.fetchval("SELECT 1") == 1
            assert not driver.is_in_transaction()  # asyncpg began nothing: each statement commits itself

        async with sessions() as session:
            with pytest.raises(ConnectionError) as caught:
                async with pg_driver(session) as driver:
                    async with admin.begin() as conn:  # a server restart, as the connection sees it
                        await conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                                "WHERE application_name = :name"), {"name": name})
                    await driver.fetchval("SELECT 1")
            assert database_unavailable(caught.value)  # a 503 for an HTTP caller, a retry for a consumer

        # The pool does not hand out the dead connection again: the next statement just works.
        async with sessions() as session, pg_driver(session) as driver:
            assert await driver.fetchval("SELECT 2") == 2
        async with sessions() as session:
            assert await session.scalar(text("SELECT 3")) == 3
    finally:
        await engine.dispose()
        await admin.dispose()


async def test_statements_run_in_the_sessions_transaction_once_it_has_begun(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    try:
        async with make_sessionmaker(engine)() as session:
            await session.execute(text("SELECT 1"))  # the ORM began a transaction
            async with pg_driver(session) as driver:
                assert driver.is_in_transaction()
                await driver.execute("CREATE TEMPORARY TABLE pg_driver_probe (x int) ON COMMIT DROP")
            await session.rollback()
            async with pg_driver(session) as driver:
                assert not driver.is_in_transaction()
                assert await driver.fetchval("SELECT to_regclass('pg_driver_probe')") is None  # rolled back with it
    finally:
        await engine.dispose()
