"""Every query of the process service. `get_*_or_404` raise NotFound."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Row, Text, cast, func, insert, select, text, type_coerce
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeDecorator

from services.process.models import (
    Machine,
    Part,
    Process,
    ProcessToolRequirement,
    Program,
    Setting,
    Tool,
    ToolAssembly,
    outbox,
)
from shared.db import among, json_rows, recordset
from shared.errors import NotFound
from shared.repository import get_or_404
from shared.schemas import INT32_MAX, INT32_MIN


async def get_machine_or_404(session: AsyncSession, id: int) -> Machine:
    return await get_or_404(session, Machine, id, "machine")


async def get_process_or_404(session: AsyncSession, id: int) -> Process:
    return await get_or_404(session, Process, id, "process")


async def get_program_or_404(session: AsyncSession, id: int) -> Program:
    return await get_or_404(session, Program, id, "program")


async def get_assembly_or_404(session: AsyncSession, id: int) -> ToolAssembly:
    return await get_or_404(session, ToolAssembly, id, "tool assembly")


async def get_tool_or_404(session: AsyncSession, id: int) -> Tool:
    return await get_or_404(session, Tool, id, "tool")


async def get_part_or_404(session: AsyncSession, id: int) -> Part:
    return await get_or_404(session, Part, id, "part")


async def get_machine_for_update(session: AsyncSession, id: int) -> Machine | None:
    """Row-locked on PostgreSQL: telemetry for one machine is applied one report at a time."""
    return (await session.execute(
        select(Machine).where(Machine.id == id).with_for_update()
    )).scalar_one_or_none()


async def machines_for_update(
    session: AsyncSession, ids: Sequence[int],
) -> Sequence[tuple[Machine, Program | None, Process | None]]:
    """Row-locked in id order, so two writers locking several machines cannot deadlock; each with
    its loaded program and the process its parts go to (the loaded program's, else the active
    one), in one statement."""
    rows = await session.execute(
        select(Machine, Program, Process)
        .outerjoin(Program, Program.id == Machine.loaded_program_id)
        .outerjoin(Process, Process.id == func.coalesce(Program.process_id, Machine.active_process_id))
        .where(among(Machine.id, ids, session.bind.dialect.name)).order_by(Machine.id)
        .with_for_update(of=Machine)
    )
    return rows.all()  # type: ignore[return-value]  # Rows unpack as the tuples


async def reserve_part_ids(session: AsyncSession, count: int) -> list[int]:
    """`count` ids from the parts sequence in one statement (PostgreSQL). Parts inserted with
    their ids need no RETURNING, so the flush is one prepared single-row INSERT, executed for
    all rows at once, whatever the batch's size."""
    sequence = func.nextval(func.pg_get_serial_sequence("parts", "id"))
    return list((await session.scalars(select(sequence).select_from(func.generate_series(1, count)))).all())


# A consumer batch's parts with what they move, and its events, in one statement (PostgreSQL): the
# parts with their reserved ids, each machine's and process's last part, the outbox rows. Rows go
# as JSON documents (shared.db.json_rows), so the text is the same for any batch size;
# data-modifying CTEs all run, referenced or not.
PART_COLUMNS = tuple(Part.__table__.columns.keys())
# What a part moves on its machine and process (the columns _PART_BATCH writes).
PART_MACHINE_COLUMNS = ("last_part_at", "last_seen", "tools_used")
PART_PROCESS_COLUMNS = ("last_cycle_finished", "last_cycle_program_id")
_OUTBOX_COLUMNS = ("event_id", "type", "body", "created_at", "attempts")
_PART_BATCH = text(f"""
WITH new_parts AS (
  INSERT INTO parts ({", ".join(PART_COLUMNS)})
  SELECT {", ".join(PART_COLUMNS)} FROM {recordset(Part.__table__, PART_COLUMNS, "parts", "p")}
), machines_moved AS (
  UPDATE machines SET {", ".join(f"{c} = m.{c}" for c in PART_MACHINE_COLUMNS)}
  FROM {recordset(Machine.__table__, ("id", *PART_MACHINE_COLUMNS), "machines", "m")}
  WHERE machines.id = m.id
), processes_moved AS (
  UPDATE processes SET {", ".join(f"{c} = r.{c}" for c in PART_PROCESS_COLUMNS)}
  FROM {recordset(Process.__table__, ("id", *PART_PROCESS_COLUMNS), "processes", "r")}
  WHERE processes.id = r.id
)
INSERT INTO outbox ({", ".join(_OUTBOX_COLUMNS)})
SELECT {", ".join(_OUTBOX_COLUMNS)} FROM {recordset(outbox, _OUTBOX_COLUMNS, "events", "o")}
ON CONFLICT (event_id) DO NOTHING
""")


async def write_part_batch(session: AsyncSession, parts: list[dict[str, Any]], machines: Sequence[Machine],
                           processes: Sequence[Process], events: list[dict[str, Any]]) -> None:
    """Parts with reserved ids, the machines' and processes' last part, and outbox rows, in one
    statement (PostgreSQL). The caller marks those columns as written (they are not flushed again)."""
    def moved(rows: Sequence[Machine] | Sequence[Process], columns: tuple[str, ...]) -> str:
        return json_rows({"id": row.id, **{c: getattr(row, c) for c in columns}} for row in rows)

    params = {"parts": json_rows(parts), "machines": moved(machines, PART_MACHINE_COLUMNS),
              "processes": moved(processes, PART_PROCESS_COLUMNS), "events": json_rows(events)}
    with session.no_autoflush:  # the rows' other changes, if any, are flushed at commit
        await session.execute(_PART_BATCH, params)


async def insert_parts(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Parts with their ids (reserve_part_ids): one prepared INSERT executed for all rows."""
    if rows:
        await session.execute(insert(Part.__table__), rows)


# --- machines --------------------------------------------------------------------------------

async def list_machines(session: AsyncSession) -> Sequence[Machine]:
    return (await session.scalars(select(Machine).order_by(Machine.id))).all()


async def count_processes_on(session: AsyncSession, machine_id: int) -> int:
    return int(await session.scalar(
        select(func.count()).select_from(Process).where(Process.machine_id == machine_id)) or 0)


async def machines_with_active(session: AsyncSession, process_id: int) -> Sequence[Machine]:
    return (await session.scalars(select(Machine).where(Machine.active_process_id == process_id))).all()


# --- processes -------------------------------------------------------------------------------

async def list_processes(session: AsyncSession) -> Sequence[Process]:
    return (await session.scalars(select(Process).order_by(Process.id))).all()


async def existing_process_ids(session: AsyncSession, ids: Iterable[int]) -> list[int]:
    ids = list(ids)
    if not ids:
        return []
    return list((await session.scalars(select(Process.id).where(Process.id.in_(ids)))).all())


async def active_process_ids(session: AsyncSession) -> set[int]:
    rows = await session.scalars(select(Machine.active_process_id).where(Machine.active_process_id.is_not(None)))
    return {pid for pid in rows if pid is not None}


async def loaded_process_ids(session: AsyncSession) -> set[int]:
    """Processes with a program loaded on their machine."""
    rows = await session.scalars(
        select(Program.process_id)
        .join(Machine, Machine.loaded_program_id == Program.id)
        .where(Program.process_id.is_not(None), Program.machine_id == Machine.id)
    )
    return {pid for pid in rows if pid is not None}


# The read path of GET /api/processes/ and GET /api/processes/{id}: plain rows, not ORM objects
# (loading 1,000 processes into the identity map cost more than all the rest of the request).
# views.process_dict, program_dict and tool_dict unpack these rows in their columns' order.

class _JSONText(TypeDecorator[Any]):
    """A JSON column read as text and parsed with orjson: the driver's json.loads per value was a
    fifth of listing 1,000 processes. Anything orjson refuses (NaN, huge integers, lone
    surrogates) goes to json.loads, which gives what the column type would have."""

    impl = Text
    cache_ok = True

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return json.loads(value)


def _json_as_text(column: Any) -> Any:
    return type_coerce(cast(column, Text), _JSONText()).label(column.key)


PROCESS_READ_COLUMNS = (
    Process.id, Process.machine_id, Process.name, Process.description, Process.archived,
    _json_as_text(Process.cv_map), Process.display_variable, Process.part_count_cv, Process.part_material_cost,
    Process.part_sell_price, Process.parts_per_cycle, Process.setup_instructions, Process.teardown_instructions,
    _json_as_text(Process.tags), Process.time_per_cycle, _json_as_text(Process.unassigned_tools_used),
    Process.last_cycle_finished, Process.last_cycle_program_id,
)
_PROGRAM_READ_COLUMNS = (
    Program.id, Program.machine_id, Program.filename, Program.name, Program.description, Program.process_id,
    Program.archived, Program.last_loaded,
)
# Tool and assembly columns in one row; no name clashes (the assembly's id is the tool's assembly_id).
_TOOL_READ_COLUMNS = (
    Tool.id, Tool.assembly_id, Tool.name, Tool.description, Tool.tool_type, Tool.part_number, Tool.diameter,
    Tool.length, ToolAssembly.machine_id, ToolAssembly.location, ToolAssembly.process_id,
)


async def process_rows(session: AsyncSession) -> Sequence[Row[Any]]:
    return (await session.execute(select(*PROCESS_READ_COLUMNS).order_by(Process.id))).all()


async def process_row_or_404(session: AsyncSession, id: int) -> Row[Any]:
    """One process's row with `loaded` and `active` (as loaded_process_ids and active_process_ids
    decide them), in one query."""
    loaded = (select(Program.id).join(Machine, Machine.loaded_program_id == Program.id)
              .where(Program.process_id == Process.id, Program.machine_id == Machine.id).exists())
    active = select(Machine.id).where(Machine.active_process_id == Process.id).exists()
    row = (await session.execute(
        select(*PROCESS_READ_COLUMNS, loaded.label("loaded"), active.label("active")).where(Process.id == id)
    )).first() if INT32_MIN <= id <= INT32_MAX else None
    if row is None:
        raise NotFound("process", id)
    return row


async def program_rows(session: AsyncSession, process_ids: Sequence[int]) -> Sequence[Row[Any]]:
    """Programs of the processes with `loaded` (a machine's loaded program, as loaded_program_ids)."""
    loaded = select(Machine.id).where(Machine.loaded_program_id == Program.id).exists()
    return (await session.execute(
        select(*_PROGRAM_READ_COLUMNS, loaded.label("loaded"))
        .where(Program.process_id.in_(process_ids)).order_by(Program.id))).all()


async def tool_rows(session: AsyncSession, process_ids: Sequence[int]) -> Sequence[Row[Any]]:
    """The tools of the processes' assemblies, each with its assembly's columns (as tools_of_processes)."""
    return (await session.execute(
        select(*_TOOL_READ_COLUMNS).join(ToolAssembly, Tool.assembly_id == ToolAssembly.id)
        .where(ToolAssembly.process_id.in_(process_ids)).order_by(Tool.id))).all()


async def assembly_tool_rows(session: AsyncSession, process_id: int) -> Sequence[Row[Any]]:
    """Every assembly of one process with its tools: one row per tool, and one with the tool's
    columns None for an assembly without tools (so the assemblies' locations come along)."""
    return (await session.execute(
        select(*_TOOL_READ_COLUMNS).select_from(ToolAssembly).outerjoin(Tool, Tool.assembly_id == ToolAssembly.id)
        .where(ToolAssembly.process_id == process_id).order_by(Tool.id))).all()


async def process_of_program(session: AsyncSession, program_id: int | None) -> int | None:
    if program_id is None:
        return None
    return await session.scalar(select(Program.process_id).where(Program.id == program_id))


async def programs_of(session: AsyncSession, process_ids: Sequence[int]) -> Sequence[Program]:
    return (await session.scalars(
        select(Program).where(Program.process_id.in_(process_ids)).order_by(Program.id))).all()


async def assemblies_of_process(session: AsyncSession, process_id: int) -> Sequence[ToolAssembly]:
    return (await session.scalars(
        select(ToolAssembly).where(ToolAssembly.process_id == process_id).order_by(ToolAssembly.id))).all()


async def tools_of_processes(session: AsyncSession, process_ids: Sequence[int]) -> Sequence[tuple[Tool, ToolAssembly]]:
    rows = await session.execute(
        select(Tool, ToolAssembly).join(ToolAssembly, Tool.assembly_id == ToolAssembly.id)
        .where(ToolAssembly.process_id.in_(process_ids)).order_by(Tool.id))
    return [(tool, assembly) for tool, assembly in rows]


async def recent_part_tools(session: AsyncSession, process_id: int, limit: int) -> list[list[str]]:
    rows = await session.scalars(
        select(Part.tool_locations).where(Part.process_id == process_id)
        .order_by(Part.finished.desc(), Part.id.desc()).limit(limit))
    return [list(r or []) for r in rows]


async def tool_requirements(session: AsyncSession, process_id: int) -> Sequence[ProcessToolRequirement]:
    return (await session.scalars(
        select(ProcessToolRequirement).where(ProcessToolRequirement.process_id == process_id)
        .order_by(ProcessToolRequirement.id))).all()


async def requirement_at(session: AsyncSession, process_id: int, location: str) -> ProcessToolRequirement | None:
    return (await session.scalars(select(ProcessToolRequirement).where(
        ProcessToolRequirement.process_id == process_id,
        ProcessToolRequirement.location == location))).first()


async def part_totals(session: AsyncSession, process_ids: Sequence[int], start: datetime,
                      end: datetime) -> dict[int, tuple[int, int, int, float]]:
    """{process_id: (parts, cycles, measured cycles, measured seconds)} in [start, end)."""
    measured = Part.cycle_time.is_not(None)
    rows = await session.execute(
        select(
            Part.process_id,
            func.coalesce(func.sum(Part.count), 0),
            func.coalesce(func.sum(Part.cycles), 0),
            func.coalesce(func.sum(Part.cycles).filter(measured), 0),
            func.coalesce(func.sum(Part.cycle_time).filter(measured), 0.0),
        )
        .where(Part.process_id.in_(process_ids), Part.finished >= start, Part.finished < end)
        .group_by(Part.process_id))
    return {pid: (int(p), int(c), int(mc), float(ms)) for pid, p, c, mc, ms in rows}


async def average_cycle_minutes(session: AsyncSession, process_ids: Sequence[int]) -> dict[int, float]:
    """Mean measured minutes per cycle over parts of each process's programs."""
    rows = await session.execute(
        select(Program.process_id, func.sum(Part.cycle_time), func.sum(Part.cycles))
        .join(Program, Part.program_id == Program.id)
        .where(Program.process_id.in_(process_ids), Part.cycle_time.is_not(None))
        .group_by(Program.process_id))
    return {pid: float(seconds) / int(cycles) / 60 for pid, seconds, cycles in rows if cycles}


async def part_days(session: AsyncSession, process_id: int, start: datetime,
                    end: datetime) -> Sequence[tuple[datetime, int]]:
    rows = await session.execute(
        select(Part.finished, Part.count)
        .where(Part.process_id == process_id, Part.finished >= start, Part.finished < end))
    return [(finished, count) for finished, count in rows]


# --- programs, assemblies, tools, parts -------------------------------------------------------

async def list_programs(session: AsyncSession, machine_id: int | None, process_id: int | None) -> Sequence[Program]:
    query = select(Program).order_by(Program.id)
    if machine_id is not None:
        query = query.where(Program.machine_id == machine_id)
    if process_id is not None:
        query = query.where(Program.process_id == process_id)
    return (await session.scalars(query)).all()


async def program_by_filename(session: AsyncSession, machine_id: int, filename: str) -> Program | None:
    return (await session.scalars(
        select(Program).where(Program.machine_id == machine_id, Program.filename == filename))).first()


async def programs_by_filenames(session: AsyncSession, machine_id: int,
                                filenames: Iterable[str]) -> Sequence[Program]:
    names = list(filenames)
    if not names:
        return []
    return (await session.scalars(
        select(Program).where(Program.machine_id == machine_id, Program.filename.in_(names)))).all()


async def loaded_program_ids(session: AsyncSession) -> set[int]:
    rows = await session.scalars(select(Machine.loaded_program_id).where(Machine.loaded_program_id.is_not(None)))
    return {r for r in rows if r is not None}


async def list_assemblies(session: AsyncSession, machine_id: int | None,
                          process_id: int | None) -> Sequence[ToolAssembly]:
    query = select(ToolAssembly).order_by(ToolAssembly.id)
    if machine_id is not None:
        query = query.where(ToolAssembly.machine_id == machine_id)
    if process_id is not None:
        query = query.where(ToolAssembly.process_id == process_id)
    return (await session.scalars(query)).all()


async def assemblies_by_ids(session: AsyncSession, ids: Iterable[int]) -> Sequence[ToolAssembly]:
    ids = list(ids)
    if not ids:
        return []
    return (await session.scalars(select(ToolAssembly).where(ToolAssembly.id.in_(ids)))).all()


async def tools_in(session: AsyncSession, assembly_ids: Sequence[int]) -> Sequence[Tool]:
    if not assembly_ids:
        return []
    return (await session.scalars(
        select(Tool).where(Tool.assembly_id.in_(assembly_ids)).order_by(Tool.id))).all()


async def list_tools(session: AsyncSession, machine_id: int | None, process_id: int | None,
                     assembly_id: int | None) -> Sequence[tuple[Tool, ToolAssembly]]:
    query = select(Tool, ToolAssembly).join(ToolAssembly, Tool.assembly_id == ToolAssembly.id).order_by(Tool.id)
    if machine_id is not None:
        query = query.where(ToolAssembly.machine_id == machine_id)
    if process_id is not None:
        query = query.where(ToolAssembly.process_id == process_id)
    if assembly_id is not None:
        query = query.where(Tool.assembly_id == assembly_id)
    return [(t, a) for t, a in await session.execute(query)]


async def list_parts(session: AsyncSession, *, machine_id: int | None = None, process_id: int | None = None,
                     program_id: int | None = None, start: datetime | None = None, end: datetime | None = None,
                     limit: int | None = None, offset: int = 0) -> Sequence[Part]:
    query = select(Part).order_by(Part.finished.desc(), Part.id.desc())
    if machine_id is not None:
        query = query.where(Part.machine_id == machine_id)
    if process_id is not None:
        query = query.where(Part.process_id == process_id)
    if program_id is not None:
        query = query.where(Part.program_id == program_id)
    if start is not None:
        query = query.where(Part.finished >= start)
    if end is not None:
        query = query.where(Part.finished < end)
    if limit is not None:
        query = query.limit(limit).offset(offset)
    return (await session.scalars(query)).all()


# --- settings --------------------------------------------------------------------------------

async def settings_values(session: AsyncSession) -> dict[str, Any]:
    return {s.key: s.value for s in await session.scalars(select(Setting))}


async def put_setting(session: AsyncSession, key: str, value: Any) -> None:
    row = await session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value
