"""Processes: create, read (with programs, tools, efficiency), update, archive, delete."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.process import repository
from services.process.domain.efficiency import PartTotals, efficiency
from services.process.domain.tools import unused_tool_locations
from services.process.models import Process, ProcessToolRequirement
from services.process.schemas import (
    ProcessCreate,
    ProcessRead,
    ProcessUpdate,
    ToolRead,
    ToolRequirementCreate,
    ToolRequirementRead,
)
from services.process.usecases import references, views
from services.process.usecases import settings as settings_usecases
from shared.errors import Conflict, InvalidInput
from shared.events import ProcessDeleted, ProcessUpserted
from shared.uow import UnitOfWork

EFFICIENCY_WINDOW = timedelta(days=30)


def upserted(process: Process) -> ProcessUpserted:
    return ProcessUpserted(
        process_id=process.id, machine_id=process.machine_id, name=process.name, archived=process.archived,
        time_per_cycle=process.time_per_cycle, parts_per_cycle=process.parts_per_cycle,
    )


async def _expand(session: AsyncSession, reads: dict[int, ProcessRead], *, programs: bool, tools: bool,
                  with_efficiency: bool, now: datetime, processes: dict[int, Process]) -> None:
    if programs:
        await views.attach_programs(session, reads)
    if tools:
        await views.attach_tools(session, reads)
    if with_efficiency:
        start = now - EFFICIENCY_WINDOW
        totals = await repository.part_totals(session, list(reads), start, now)
        for pid, read in reads.items():
            p = processes[pid]
            read.efficiency = efficiency(
                PartTotals(*totals.get(pid, (0, 0, 0, 0.0))), time_per_cycle=p.time_per_cycle,
                part_sell_price=p.part_sell_price, part_material_cost=p.part_material_cost,
                window_start=start.timestamp(), window_end=now.timestamp(),
            )


async def list_processes(session: AsyncSession, *, programs: bool, tools: bool, with_efficiency: bool,
                         now: datetime) -> dict[str, ProcessRead]:
    processes = {p.id: p for p in await repository.list_processes(session)}
    reads = await views.process_reads(session, list(processes.values()))
    await _expand(session, reads, programs=programs, tools=tools, with_efficiency=with_efficiency, now=now,
                  processes=processes)
    return {str(pid): read for pid, read in reads.items()}


async def get_process(session: AsyncSession, process_id: int, *, programs: bool, tools: bool,
                      with_efficiency: bool, now: datetime) -> ProcessRead:
    process = await repository.get_process_or_404(session, process_id)
    reads = await views.process_reads(session, [process])
    await _expand(session, reads, programs=programs, tools=tools, with_efficiency=with_efficiency, now=now,
                  processes={process.id: process})
    read = reads[process.id]
    window = (await settings_usecases.get_settings(session)).check_unused_tools_parts
    assemblies = await repository.assemblies_of_process(session, process_id)
    recent = await repository.recent_part_tools(session, process_id, window) if window else []
    read.unused_tool_locations = unused_tool_locations([a.location for a in assemblies], recent, window)
    return read


async def read_one(session: AsyncSession, process: Process) -> ProcessRead:
    return (await views.process_reads(session, [process]))[process.id]


async def create_process(uow: UnitOfWork, data: ProcessCreate) -> ProcessRead:
    await references.require_machine(uow.session, data.machine_id)
    values = data.model_dump()
    values["cv_map"] = {k: v.model_dump(exclude_none=True) for k, v in data.cv_map.items()}
    process = Process(**values, unassigned_tools_used={})
    uow.session.add(process)
    await uow.flush()
    uow.emit(upserted(process))
    return await read_one(uow.session, process)


async def update_process(uow: UnitOfWork, process_id: int, changes: ProcessUpdate) -> ProcessRead:
    process = await repository.get_process_or_404(uow.session, process_id)
    values = changes.model_dump(exclude_unset=True)
    if "machine_id" in values and values.pop("machine_id") != process.machine_id:
        raise InvalidInput("machine_id", "cannot be changed once the process has been created")
    if "cv_map" in values and changes.cv_map is not None:
        values["cv_map"] = {k: v.model_dump(exclude_none=True) for k, v in changes.cv_map.items()}
    for key, value in values.items():
        setattr(process, key, value)
    await uow.flush()
    uow.emit(upserted(process))
    return await read_one(uow.session, process)


async def archive_process(uow: UnitOfWork, process_id: int, *, programs: bool) -> ProcessRead:
    process = await repository.get_process_or_404(uow.session, process_id)
    process.archived = True
    if programs:
        for program in await repository.programs_of(uow.session, [process_id]):
            program.archived = True
    await uow.flush()
    uow.emit(upserted(process))
    return await read_one(uow.session, process)


async def delete_process(uow: UnitOfWork, process_id: int) -> None:
    process = await repository.get_process_or_404(uow.session, process_id)
    for machine in await repository.machines_with_active(uow.session, process_id):
        machine.active_process_id = None
    await uow.session.delete(process)
    await uow.flush()
    uow.emit(ProcessDeleted(process_id=process_id, machine_id=process.machine_id))


async def add_tool_requirement(uow: UnitOfWork, process_id: int,
                               data: ToolRequirementCreate) -> ToolRequirementRead:
    await repository.get_process_or_404(uow.session, process_id)
    if await repository.requirement_at(uow.session, process_id, data.location):
        raise Conflict(f"process {process_id} already has a tool requirement in location {data.location}")
    requirement = ProcessToolRequirement(process_id=process_id, **data.model_dump())
    uow.session.add(requirement)
    await uow.flush()
    return requirement_read(requirement)


async def list_tool_requirements(session: AsyncSession, process_id: int) -> dict[str, ToolRequirementRead]:
    await repository.get_process_or_404(session, process_id)
    return {str(r.id): requirement_read(r) for r in await repository.tool_requirements(session, process_id)}


def requirement_read(r: ProcessToolRequirement) -> ToolRequirementRead:
    return ToolRequirementRead(id=r.id, process_id=r.process_id, location=r.location, description=r.description,
                               tool_type=r.tool_type)


async def process_tools(session: AsyncSession, process_id: int) -> dict[str, ToolRead]:
    await repository.get_process_or_404(session, process_id)
    return {str(t.id): views.tool_read(t, a) for t, a in await repository.tools_of_processes(session, [process_id])}
