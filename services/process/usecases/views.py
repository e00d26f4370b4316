"""Turning rows into the API's objects (the shapes the seed describes)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from services.process import repository
from services.process.models import Part, Process, Program, Tool, ToolAssembly
from services.process.schemas import LastCycle, PartRead, ProcessRead, ProgramRead, ToolRead
from shared.db import to_unix


def program_read(program: Program, loaded_ids: set[int]) -> ProgramRead:
    return ProgramRead(
        id=program.id, machine_id=program.machine_id, filename=program.filename, name=program.name,
        description=program.description, process_id=program.process_id, archived=program.archived,
        loaded=program.id in loaded_ids, last_loaded=to_unix(program.last_loaded),
    )


def tool_read(tool: Tool, assembly: ToolAssembly) -> ToolRead:
    return ToolRead(
        id=tool.id, assembly_id=tool.assembly_id, machine_id=assembly.machine_id, location=assembly.location,
        process_id=assembly.process_id, name=tool.name, description=tool.description, tool_type=tool.tool_type,
        part_number=tool.part_number, diameter=tool.diameter, length=tool.length,
    )


def part_read(part: Part) -> PartRead:
    return PartRead(
        id=part.id, machine_id=part.machine_id, process_id=part.process_id, program_id=part.program_id,
        count=part.count, cycles=part.cycles, finished=part.finished.timestamp(), cycle_time=part.cycle_time,
        tool_locations=list(part.tool_locations or []), variables=dict(part.variables or {}),
    )


def process_read(process: Process, *, loaded: bool, active: bool) -> ProcessRead:
    finished = process.last_cycle_finished
    return ProcessRead(
        id=process.id, machine_id=process.machine_id, name=process.name, description=process.description,
        archived=process.archived, cv_map=dict(process.cv_map or {}), display_variable=process.display_variable,
        part_count_cv=process.part_count_cv, part_material_cost=process.part_material_cost,
        part_sell_price=process.part_sell_price, parts_per_cycle=process.parts_per_cycle,
        setup_instructions=process.setup_instructions, teardown_instructions=process.teardown_instructions,
        tags=list(process.tags or []), time_per_cycle=process.time_per_cycle,
        unassigned_tools_used=dict(process.unassigned_tools_used or {}), loaded=loaded, active=active,
        last_cycle=LastCycle(finished=finished.timestamp(), program_id=process.last_cycle_program_id)
        if finished else None,
    )


async def process_reads(session: AsyncSession, processes: Sequence[Process]) -> dict[int, ProcessRead]:
    """The base objects of several processes, with `loaded` and `active`, in 2 queries."""
    if not processes:
        return {}
    loaded = await repository.loaded_process_ids(session)
    active = await repository.active_process_ids(session)
    return {p.id: process_read(p, loaded=p.id in loaded, active=p.id in active) for p in processes}


async def attach_programs(session: AsyncSession, reads: dict[int, ProcessRead]) -> None:
    loaded_ids = await repository.loaded_program_ids(session)
    for read in reads.values():
        read.programs = {}
    for program in await repository.programs_of(session, list(reads)):
        reads[program.process_id].programs[str(program.id)] = program_read(program, loaded_ids)  # type: ignore[index]


async def attach_tools(session: AsyncSession, reads: dict[int, ProcessRead]) -> None:
    for read in reads.values():
        read.tools = {}
    for tool, assembly in await repository.tools_of_processes(session, list(reads)):
        reads[assembly.process_id].tools[str(tool.id)] = tool_read(tool, assembly)  # type: ignore[index]

