"""Removing what a test or benchmark created on the shared broker and database (here, not in shared/: only
shared/transport/rabbitmq.py may import aio_pika there)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

import aio_pika
from sqlalchemy import text

from shared.db import make_engine


async def remove_test_objects(amqp_url: str, database_url: str, *, queues: Iterable[str] = (),
                              exchanges: Iterable[str] = (), schemas: Iterable[str] = (),
                              within: float = 0) -> None:
    """Delete the queues and exchanges, then drop the schemas (even when the broker part fails).

    Each name is removed once and not tried again. On failure the rest is retried for `within`
    seconds, because a fault test or a benchmark may just have restarted PostgreSQL or RabbitMQ.
    After that the error propagates."""
    left_queues, left_exchanges, left_schemas = list(queues), list(exchanges), list(schemas)
    deadline = time.monotonic() + within
    while True:
        try:
            try:
                await _delete_topology(amqp_url, left_queues, left_exchanges)
            finally:
                await _drop_schemas(database_url, left_schemas)
            return
        except Exception:
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(1)


async def _delete_topology(amqp_url: str, queues: list[str], exchanges: list[str]) -> None:
    if not (queues or exchanges):
        return
    async with asyncio.timeout(30):
        connection = await aio_pika.connect(amqp_url, timeout=10)
        try:
            channel = await connection.channel()
            for names, delete in ((queues, channel.queue_delete), (exchanges, channel.exchange_delete)):
                while names:
                    await delete(names[0])
                    names.pop(0)
        finally:
            await connection.close()


async def _drop_schemas(database_url: str, schemas: list[str]) -> None:
    if not schemas:
        return
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            for schema in schemas:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        schemas.clear()
    finally:
        await engine.dispose()
