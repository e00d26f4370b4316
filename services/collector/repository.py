"""Every query of the collector. `get_*_or_404` raise NotFound."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

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

    Two pushes for one machine (an edge resending while its first push is in flight, two
    collector replicas) derive from the state: without the lock both read the same part count
    and both count the parts between it and their own, so the second waits for the first."""
    state = await session.get(MachineState, machine_id, with_for_update=True)
    if state is None:
        insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
        await session.execute(insert(MachineState).values(machine_id=machine_id, variables={})
                              .on_conflict_do_nothing(index_elements=["machine_id"]))
        state = await session.get(MachineState, machine_id, with_for_update=True, populate_existing=True)
        assert state is not None
    return state


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
