"""Processes: create, read (with programs, tools, efficiency), update, archive, delete."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

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


# GET /api/processes/ and /{id} answer plain data in the response models' exact shape (see
# views.process_dict): for 1,000 processes, ORM objects and a model per object cost several
# times more than the queries.


async def _expand(session: AsyncSession, reads: dict[int, dict[str, Any]], rows: dict[int, Any], *,
                  programs: bool, tools: bool, with_efficiency: bool, now: datetime,
                  tool_rows: Sequence[Any] | None = None) -> None:
    """Add `programs`, `tools`, `efficiency` as asked, in that (the model's) order."""
    if programs:
        await views.attach_programs(session, reads)
    if tools:
        views.attach_tools(reads, tool_rows if tool_rows is not None else
                           await repository.tool_rows(session, list(reads)))
    if with_efficiency:
        start = now - EFFICIENCY_WINDOW
        totals = await repository.part_totals(session, list(reads), start, now)
        for pid, read in reads.items():
            p = rows[pid]
            read["efficiency"] = efficiency(
                PartTotals(*totals.get(pid, (0, 0, 0, 0.0))), time_per_cycle=p.time_per_cycle,
                part_sell_price=p.part_sell_price, part_material_cost=p.part_material_cost,
                window_start=start.timestamp(), window_end=now.timestamp(),
            )


async def list_processes(session: AsyncSession, *, programs: bool, tools: bool, with_efficiency: bool,
                         now: datetime) -> dict[str, dict[str, Any]]:
    """The body of GET /api/processes/ (ProcessRead objects as plain data)."""
    # The small queries first: from the big one to the answer nothing awaits, so no other request
    # runs while 1,000 rows are alive (fewer objects for the garbage collector to go through).
    loaded = await repository.loaded_process_ids(session)
    active = await repository.active_process_ids(session)
    rows = {row[0]: row for row in await repository.process_rows(session)}
    if not rows:
        return {}
    reads = {pid: views.process_dict(row, loaded=pid in loaded, active=pid in active) for pid, row in rows.items()}
    await _expand(session, reads, rows, programs=programs, tools=tools, with_efficiency=with_efficiency, now=now)
    return {str(pid): read for pid, read in reads.items()}


async def get_process(session: AsyncSession, process_id: int, *, programs: bool, tools: bool,
                      with_efficiency: bool, now: datetime) -> dict[str, Any]:
    """The body of GET /api/processes/{id} (a ProcessRead as plain data)."""
    row = await repository.process_row_or_404(session, process_id)
    *values, loaded, active = row
    read = views.process_dict(values, loaded=loaded, active=active)
    assemblies = await repository.assembly_tool_rows(session, process_id)  # tools and locations at once
    tool_rows = [a for a in assemblies if a.id is not None]  # not the rows of assemblies without tools
    await _expand(session, {row.id: read}, {row.id: row}, programs=programs, tools=tools,
                  with_efficiency=with_efficiency, now=now, tool_rows=tool_rows)
    window = (await settings_usecases.get_settings(session)).check_unused_tools_parts
    recent = await repository.recent_part_tools(session, process_id, window) if window else []
    read["unused_tool_locations"] = unused_tool_locations([a.location for a in assemblies], recent, window)
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
