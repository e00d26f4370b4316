"""Turning rows into the API's objects (the shapes the seed describes)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.process import repository
from services.process.models import Part, Process, Program, Tool, ToolAssembly
from services.process.schemas import PartRead, ProcessRead, ProgramRead, ToolRead
from shared.db import to_unix


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


# The *_dict functions give an object exactly as its Read model serialises (fields in the
# model's order, floats as floats): GET /api/processes/ and /{id} send them as they are, without
# building a model per object (tests/process/api/test_read_path.py holds them to the models).
# They take the values of a repository row, in its columns' order (unpacking a row is several
# times faster than reading its attributes); the *_read functions pass an ORM object's values.


def program_dict(values: Sequence[Any]) -> dict[str, Any]:
    """`values`: repository.program_rows's columns (..., last_loaded, loaded)."""
    program_id, machine_id, filename, name, description, process_id, archived, last_loaded, loaded = values
    return {
        "id": program_id, "machine_id": machine_id, "filename": filename, "name": name,
        "description": description, "process_id": process_id, "archived": archived, "loaded": loaded,
        "last_loaded": to_unix(last_loaded),
    }


def program_read(program: Program, loaded_ids: set[int]) -> ProgramRead:
    return ProgramRead(**program_dict((
        program.id, program.machine_id, program.filename, program.name, program.description, program.process_id,
        program.archived, program.last_loaded, program.id in loaded_ids)))


def tool_dict(values: Sequence[Any]) -> dict[str, Any]:
    """`values`: repository.tool_rows's columns (the tool's, then its assembly's)."""
    (tool_id, assembly_id, name, description, tool_type, part_number, diameter, length,
     machine_id, location, process_id) = values
    return {
        "id": tool_id, "assembly_id": assembly_id, "machine_id": machine_id, "location": location,
        "process_id": process_id, "name": name, "description": description, "tool_type": tool_type,
        "part_number": part_number, "diameter": _float(diameter), "length": _float(length),
    }


def tool_read(tool: Tool, assembly: ToolAssembly) -> ToolRead:
    return ToolRead(**tool_dict((
        tool.id, tool.assembly_id, tool.name, tool.description, tool.tool_type, tool.part_number, tool.diameter,
        tool.length, assembly.machine_id, assembly.location, assembly.process_id)))


def part_read(part: Part) -> PartRead:
    return PartRead(
        id=part.id, machine_id=part.machine_id, process_id=part.process_id, program_id=part.program_id,
        count=part.count, cycles=part.cycles, finished=part.finished.timestamp(), cycle_time=part.cycle_time,
        tool_locations=list(part.tool_locations or []), variables=dict(part.variables or {}),
    )


def process_dict(values: Sequence[Any], *, loaded: bool, active: bool) -> dict[str, Any]:
    """`values`: repository.PROCESS_READ_COLUMNS."""
    (process_id, machine_id, name, description, archived, cv_map, display_variable, part_count_cv,
     part_material_cost, part_sell_price, parts_per_cycle, setup_instructions, teardown_instructions, tags,
     time_per_cycle, unassigned_tools_used, last_cycle_finished, last_cycle_program_id) = values
    return {
        "id": process_id, "machine_id": machine_id, "name": name, "description": description,
        "archived": archived, "cv_map": cv_map or {}, "display_variable": display_variable,
        "part_count_cv": part_count_cv, "part_material_cost": float(part_material_cost),
        "part_sell_price": float(part_sell_price), "parts_per_cycle": parts_per_cycle,
        "setup_instructions": setup_instructions, "teardown_instructions": teardown_instructions,
        "tags": tags or [], "time_per_cycle": _float(time_per_cycle),
        "unassigned_tools_used": {k: float(v) for k, v in unassigned_tools_used.items()}
        if unassigned_tools_used else {},
        "loaded": loaded,
        "last_cycle": {"finished": last_cycle_finished.timestamp(), "program_id": last_cycle_program_id}
        if last_cycle_finished else None,
        "active": active,
    }


def process_read(process: Process, *, loaded: bool, active: bool) -> ProcessRead:
    values = [getattr(process, column.key) for column in repository.PROCESS_READ_COLUMNS]
    return ProcessRead(**process_dict(values, loaded=loaded, active=active))


async def process_reads(session: AsyncSession, processes: Sequence[Process]) -> dict[int, ProcessRead]:
    """The base objects of several processes, with `loaded` and `active`, in 2 queries."""
    if not processes:
        return {}
    loaded = await repository.loaded_process_ids(session)
    active = await repository.active_process_ids(session)
    return {p.id: process_read(p, loaded=p.id in loaded, active=p.id in active) for p in processes}


async def attach_programs(session: AsyncSession, reads: dict[int, dict[str, Any]]) -> None:
    for read in reads.values():
        read["programs"] = {}
    for row in await repository.program_rows(session, list(reads)):
        program = program_dict(row)
        reads[program["process_id"]]["programs"][str(program["id"])] = program


def attach_tools(reads: dict[int, dict[str, Any]], rows: Iterable[Any]) -> None:
    """`rows` from repository.tool_rows (tool and assembly columns), in tool id order."""
    for read in reads.values():
        read["tools"] = {}
    for row in rows:
        tool = tool_dict(row)
        reads[tool["process_id"]]["tools"][str(tool["id"])] = tool
