"""Per-machine reads: latest state, alarm history, interlock (from maintenance)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.collector import repository
from services.collector.models import Interlock
from services.collector.schemas import AlarmRead, InterlockRead, MachineStateRead
from services.collector.usecases.views import alarm_read, interlock_read, state_read
from shared.db import utcnow
from shared.errors import NotFound
from shared.events import InterlockChanged
from shared.uow import UnitOfWork


async def get_state(session: AsyncSession, machine_id: int) -> MachineStateRead:
    state = await repository.get_state(session, machine_id)
    if state is None and not await repository.list_sources(session, machine_id):
        raise NotFound("machine", machine_id)  # the collector neither reads it nor has heard from it
    return state_read(machine_id, state, await repository.active_alarms(session, machine_id))


async def list_alarms(session: AsyncSession, machine_id: int | None, active: bool | None,
                      start: datetime | None, end: datetime | None) -> dict[str, AlarmRead]:
    return {str(a.id): alarm_read(a) for a in await repository.list_alarms(session, machine_id, active, start, end)}


async def get_interlock(session: AsyncSession, machine_id: int) -> InterlockRead:
    return interlock_read(machine_id, await repository.get_interlock(session, machine_id))


async def apply_interlock(uow: UnitOfWork, event: InterlockChanged) -> None:
    interlock = await repository.get_interlock(uow.session, event.machine_id)
    if interlock is None:
        interlock = Interlock(machine_id=event.machine_id)
        uow.session.add(interlock)
    interlock.blocked, interlock.item_ids, interlock.changed_at = event.blocked, list(event.item_ids), utcnow()
