"""Machines: CRUD, the interlock from maintenance, and republishing for a read model."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.process import repository
from services.process.models import Machine
from services.process.schemas import MachineCreate, MachineRead, MachineUpdate
from services.process.usecases import settings as settings_usecases
from shared.db import to_unix
from shared.errors import Conflict
from shared.events import InterlockChanged, MachineDeleted, MachineUpserted, ProcessUpserted, SyncRequested
from shared.uow import UnitOfWork


def to_read(machine: Machine) -> MachineRead:
    return MachineRead(
        id=machine.id, name=machine.name, description=machine.description, location=machine.location,
        archived=machine.archived, active_process_id=machine.active_process_id,
        loaded_program_id=machine.loaded_program_id, blocked=machine.blocked,
        blocking_items=list(machine.blocking_items or []), current_tool=machine.current_tool,
        variables=dict(machine.variables or {}), last_seen=to_unix(machine.last_seen),
    )


def upserted(machine: Machine) -> MachineUpserted:
    return MachineUpserted(machine_id=machine.id, name=machine.name, archived=machine.archived,
                           active_process_id=machine.active_process_id, blocked=machine.blocked)


async def list_machines(session: AsyncSession) -> dict[str, MachineRead]:
    return {str(m.id): to_read(m) for m in await repository.list_machines(session)}


async def get_machine(session: AsyncSession, machine_id: int) -> MachineRead:
    return to_read(await repository.get_machine_or_404(session, machine_id))


async def create_machine(uow: UnitOfWork, data: MachineCreate) -> MachineRead:
    machine = Machine(**data.model_dump(), blocking_items=[], variables={}, tools_used=[])
    uow.session.add(machine)
    await uow.flush()
    uow.emit(upserted(machine))
    return to_read(machine)


async def update_machine(uow: UnitOfWork, machine_id: int, changes: MachineUpdate) -> MachineRead:
    machine = await repository.get_machine_or_404(uow.session, machine_id)
    for key, value in changes.model_dump(exclude_unset=True).items():
        setattr(machine, key, value)
    await uow.flush()
    uow.emit(upserted(machine))
    return to_read(machine)


async def delete_machine(uow: UnitOfWork, machine_id: int) -> None:
    machine = await repository.get_machine_or_404(uow.session, machine_id)
    if await repository.count_processes_on(uow.session, machine_id):
        raise Conflict(f"machine {machine_id} still has processes; delete them first")
    await uow.session.delete(machine)
    uow.emit(MachineDeleted(machine_id=machine_id))


async def apply_interlock(uow: UnitOfWork, event: InterlockChanged) -> None:
    machine = await repository.get_machine_or_404(uow.session, event.machine_id)
    machine.blocked = event.blocked
    machine.blocking_items = sorted(set(event.item_ids)) if event.blocked else []
    uow.emit(upserted(machine))


async def republish(uow: UnitOfWork, request: SyncRequested) -> None:
    """Another service's read model is empty: publish the current state of what it asked for."""
    wanted = set(request.domains) or {"machine", "process", "settings"}
    if "machine" in wanted:
        for machine in await repository.list_machines(uow.session):
            uow.emit(upserted(machine))
    if "process" in wanted:
        for process in await repository.list_processes(uow.session):
            uow.emit(ProcessUpserted(
                process_id=process.id, machine_id=process.machine_id, name=process.name,
                archived=process.archived, time_per_cycle=process.time_per_cycle,
                parts_per_cycle=process.parts_per_cycle))
    if "settings" in wanted:
        uow.emit(settings_usecases.settings_event(await settings_usecases.get_settings(uow.session)))
