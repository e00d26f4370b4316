"""Every query of the collector. `get_*_or_404` raise NotFound."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.collector.models import INT32_MAX, INT32_MIN, Alarm, Interlock, MachineState, Source
from shared.errors import NotFound


def _fits(id: int) -> bool:
    return INT32_MIN <= id <= INT32_MAX


async def get_source_or_404(session: AsyncSession, id: int) -> Source:
    found = await session.get(Source, id) if _fits(id) else None
    if found is None:
        raise NotFound("source", id)
    return found


async def get_source(session: AsyncSession, id: int) -> Source | None:
    return await session.get(Source, id) if _fits(id) else None


async def list_sources(session: AsyncSession, machine_id: int | None = None, kind: str | None = None,
                       enabled: bool | None = None) -> Sequence[Source]:
    query = select(Source).order_by(Source.id)
    if machine_id is not None:
        query = query.where(Source.machine_id == machine_id)
    if kind is not None:
        query = query.where(Source.kind == kind)
    if enabled is not None:
        query = query.where(Source.enabled == enabled)
    return (await session.scalars(query)).all()


async def get_state(session: AsyncSession, machine_id: int) -> MachineState | None:
    return await session.get(MachineState, machine_id) if _fits(machine_id) else None


async def state_for_update(session: AsyncSession, machine_id: int) -> MachineState:
    """The machine's state row, locked for this transaction (created on its first report).

    Two writers of one machine (live sources, pushes with conditions, an edge resending while its
    first push is in flight, two collector replicas) derive from the state: without the lock both
    read the same part count and both count the parts between it and their own, so the second
    waits for the first. The other pushes check the version instead (`swap_state`)."""
    state = await session.get(MachineState, machine_id, with_for_update=True)
    if state is None:
        insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
        await session.execute(insert(MachineState).values(machine_id=machine_id, variables={})
                              .on_conflict_do_nothing(index_elements=["machine_id"]))
        state = await session.get(MachineState, machine_id, with_for_update=True, populate_existing=True)
        assert state is not None
    return state


@dataclass(frozen=True, slots=True)
class StoredState:
    """A machine's state row as the unlocked push reads it, `version` included."""

    part_count: int | None
    program: str | None
    execution: str | None
    tool: str | None
    variables: dict[str, Any]
    last_seen: datetime | None
    version: int


_READ_STATE = ("SELECT part_count, program, execution, tool, variables, last_seen, version FROM machine_state "
               "WHERE machine_id = $1")
_NEW_STATE = "INSERT INTO machine_state (machine_id, variables) VALUES ($1, '{}') ON CONFLICT (machine_id) DO NOTHING"
# One statement, so one transaction without BEGIN and COMMIT round trips: the state moves only if its
# version is still the one read, and only then do the events enter the outbox and the source's status
# move. Under READ COMMITTED an UPDATE that waited for another writer's lock rechecks its WHERE
# against the committed row, so a push that lost the race writes nothing.
_SWAP_STATE = """
WITH moved AS (
  UPDATE machine_state SET part_count = $3, program = $4, execution = $5, tool = $6, variables = $7,
         last_seen = $8, version = version + 1
  WHERE machine_id = $1 AND version = $2
  RETURNING machine_id
), queued AS (
  INSERT INTO outbox (event_id, type, body, created_at, attempts)
  SELECT e, t, b, $12, 0 FROM unnest($9::varchar[], $10::varchar[], $11::text[]) AS u(e, t, b)
  WHERE EXISTS (SELECT FROM moved)
  ON CONFLICT (event_id) DO NOTHING
  RETURNING event_id
), seen AS (
  UPDATE sources SET connected = true, last_data_at = $12 WHERE id = $13 AND EXISTS (SELECT FROM moved)
)
SELECT EXISTS (SELECT FROM moved), ARRAY(SELECT event_id FROM queued)
"""


async def read_state(driver: asyncpg.Connection, machine_id: int) -> StoredState:
    """The machine's state without a lock (PostgreSQL driver; created on its first report)."""
    row = await driver.fetchrow(_READ_STATE, machine_id)
    if row is None:
        await driver.execute(_NEW_STATE, machine_id)
        row = await driver.fetchrow(_READ_STATE, machine_id)
    return StoredState(*row)


async def swap_state(driver: asyncpg.Connection, machine_id: int, read: StoredState, new: StoredState,
                     events: Sequence[tuple[str, str, str]], now: datetime, seen_source: int | None) -> set[str] | None:
    """Store `new` and queue `events` (id, type, body) if the state is still at `read.version`; the
    source `seen_source` (if any) becomes connected with data at `now`. Returns the event ids that
    were not queued yet, or None if another write moved the state first (nothing was written)."""
    moved, queued = await driver.fetchrow(
        _SWAP_STATE, machine_id, read.version, new.part_count, new.program, new.execution, new.tool,
        json.dumps(new.variables), new.last_seen, [e[0] for e in events], [e[1] for e in events],
        [e[2] for e in events], now, seen_source)
    return set(queued) if moved else None


async def active_alarms(session: AsyncSession, machine_id: int) -> Sequence[Alarm]:
    return (await session.scalars(select(Alarm).where(Alarm.machine_id == machine_id, Alarm.cleared_at.is_(None))
                                  .order_by(Alarm.id))).all()


async def list_alarms(session: AsyncSession, machine_id: int | None, active: bool | None,
                      start: datetime | None, end: datetime | None) -> Sequence[Alarm]:
    query = select(Alarm).order_by(Alarm.id)
    if machine_id is not None:
        query = query.where(Alarm.machine_id == machine_id)
    if active is not None:
        query = query.where(Alarm.cleared_at.is_(None) if active else Alarm.cleared_at.is_not(None))
    if start is not None:  # alarms still active at, or raised after, start
        query = query.where((Alarm.cleared_at.is_(None)) | (Alarm.cleared_at >= start))
    if end is not None:
        query = query.where(Alarm.raised_at <= end)
    return (await session.scalars(query)).all()


async def get_interlock(session: AsyncSession, machine_id: int) -> Interlock | None:
    return await session.get(Interlock, machine_id) if _fits(machine_id) else None
