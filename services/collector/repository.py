"""Every query of the collector. `get_*_or_404` raise NotFound."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
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
