"""Inbox: the ids of consumed messages, written in the same transaction as their effect."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import Column, MetaData, String, Table, delete
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import UTCDateTime, insert_new, utcnow


def make_inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("message_id", String(64), primary_key=True),
        Column("type", String(100), nullable=False),
        Column("received_at", UTCDateTime, nullable=False, index=True),
    )


async def record_all_once(session: AsyncSession, table: Table, messages: Sequence[tuple[str, str]]) -> set[str]:
    """Insert the (id, type) pairs in one statement; returns the ids that were not there yet."""
    if not messages:
        return set()
    now = utcnow()
    rows = [{"message_id": id, "type": type, "received_at": now} for id, type in dict(messages).items()]
    return await insert_new(session, table, "message_id", rows)


async def purge_inbox(session: AsyncSession, table: Table, keep: timedelta) -> None:
    await session.execute(delete(table).where(table.c.received_at < utcnow() - keep))
