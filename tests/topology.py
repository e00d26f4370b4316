"""Removing what a test created on the shared broker and database (queues, exchanges, schemas)."""

from __future__ import annotations

from collections.abc import Iterable

import aio_pika
from sqlalchemy import text

from shared.db import make_engine


async def remove_test_objects(amqp_url: str, database_url: str, *, queues: Iterable[str] = (),
                              exchanges: Iterable[str] = (), schemas: Iterable[str] = ()) -> None:
    """Delete the queues and exchanges, then drop the schemas (even when the broker part fails)."""
    try:
        connection = await aio_pika.connect(amqp_url)
        try:
            channel = await connection.channel()
            for queue in queues:
                await channel.queue_delete(queue)
            for exchange in exchanges:
                await channel.exchange_delete(exchange)
        finally:
            await connection.close()
    finally:
        engine = make_engine(database_url)
        try:
            async with engine.begin() as conn:
                for schema in schemas:
                    await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        finally:
            await engine.dispose()
