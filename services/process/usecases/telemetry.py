"""What the machines report, applied to the shop's model: programs, tools, variables, parts."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from services.process import repository
from services.process.domain.parts import counter_rise, cycle_seconds, decide_part, named_variables
from services.process.domain.tools import record_unassigned_use
from services.process.models import Machine, Part, Process, Program
from services.process.usecases import settings as settings_usecases
from services.process.usecases.history import VARIABLES_SEEN
from shared.db import from_unix, to_unix
from shared.events import PartCompleted, PartRecorded, Payload, ProgramLoaded, ToolChanged, VariablesChanged
from shared.uow import UnitOfWork

log = logging.getLogger("taktline.process.telemetry")
T = TypeVar("T")

# Per-transaction memo (session.info) so a consumer batch of reports for a few machines costs
# a few queries, not several per report: rows stay in the session's identity map anyway.
_LOCKED = "taktline.locked_machines"
_PROGRAMS = "taktline.programs_by_filename"
_SETTINGS = "taktline.settings"
_ROWS = "taktline.rows"
_PART_IDS = "taktline.part_ids"
_NEW_PARTS = "taktline.new_parts"  # rows of parts with reserved ids, inserted before the commit


TELEMETRY = (PartCompleted, ProgramLoaded, ToolChanged, VariablesChanged)


async def prepare_batch(uow: UnitOfWork, events: Sequence[Payload]) -> None:
    """Before a consumer batch: lock every machine it reports on and load their loaded programs
    and running processes in one statement, and the settings (kept for a few seconds).

    Without this each machine's first report ran its own queries, and each query flushed the
    part rows added before it: a batch of many machines' parts paid a lock, a lookup and a
    flush per machine. Locking in id order also keeps two writers from deadlocking."""
    ids = sorted({event.machine_id for event in events if isinstance(event, TELEMETRY)})
    if not ids:
        return
    session = uow.session
    locked: dict[int, Machine] = session.info.setdefault(_LOCKED, {})
    memo: dict[tuple[type, int], object] = session.info.setdefault(_ROWS, {})
    for machine, program, process in await repository.machines_for_update(session, [i for i in ids
                                                                                     if i not in locked]):
        locked[machine.id] = machine
        if program is not None:
            memo[(Program, program.id)] = program
        if process is not None:
            memo[(Process, process.id)] = process
    if _SETTINGS not in session.info:
        session.info[_SETTINGS] = await settings_usecases.recent_settings(session)
    parts = sum(isinstance(event, PartCompleted) for event in events)
    if parts and session.bind.dialect.name == "postgresql":
        session.info.setdefault(_PART_IDS, deque()).extend(await _part_ids(session, parts))


# Part ids reserved ahead, per engine: a batch at a steady rate (a few dozen parts) takes its ids
# without a round trip. Ids a batch took and did not use (a rollback, a glitch) are skipped, as a
# sequence skips them; with several replicas ids interleave, and parts are ordered by `finished`.
ID_BLOCK = 1000
_id_pools: WeakKeyDictionary[object, deque[int]] = WeakKeyDictionary()


async def _part_ids(session: AsyncSession, count: int) -> list[int]:
    pool = _id_pools.setdefault(session.bind, deque())
    if len(pool) < count:
        pool.extend(await repository.reserve_part_ids(session, max(count - len(pool), ID_BLOCK)))
    return [pool.popleft() for _ in range(count)]


async def _machine(uow: UnitOfWork, machine_id: int, at: float) -> Machine | None:
    locked: dict[int, Machine] = uow.session.info.setdefault(_LOCKED, {})
    machine = locked.get(machine_id)  # already row-locked by this transaction
    if machine is None:
        machine = await repository.get_machine_for_update(uow.session, machine_id)
        if machine is not None:
            locked[machine_id] = machine
    if machine is None:
        log.warning("telemetry for unknown machine %s ignored", machine_id)
        return None
    seen = from_unix(at)
    if machine.last_seen is None or seen > machine.last_seen:
        machine.last_seen = seen
    return machine


async def _program(uow: UnitOfWork, machine: Machine, filename: str) -> Program:
    """The machine's program with that filename; an unknown filename becomes a new program."""
    known: dict[tuple[int, str], Program] = uow.session.info.setdefault(_PROGRAMS, {})
    if (program := known.get((machine.id, filename))) is not None:
        return program
    program = await repository.program_by_filename(uow.session, machine.id, filename)
    if program is None:
        program = Program(machine_id=machine.id, filename=filename, name=filename, description="", archived=False)
        uow.session.add(program)
        await uow.flush()
    known[(machine.id, filename)] = program
    return program


async def _running_process(uow: UnitOfWork, machine: Machine) -> Process | None:
    """The process parts belong to: the loaded program's process, else the confirmed active one."""
    loaded = await _get(uow, Program, machine.loaded_program_id)
    process_id = loaded.process_id if loaded is not None and loaded.process_id is not None \
        else machine.active_process_id
    return await _get(uow, Process, process_id)


async def _get(uow: UnitOfWork, model: type[T], id: int | None) -> T | None:
    """session.get, memoised for the transaction: after a flush, rows with server-side
    `onupdate` columns are expired and get() would reload them for every report."""
    if id is None:
        return None
    memo: dict[tuple[type, int], object] = uow.session.info.setdefault(_ROWS, {})
    if (key := (model, id)) not in memo:
        memo[key] = await uow.session.get(model, id)
    return memo[key]  # type: ignore[return-value]


async def program_loaded(uow: UnitOfWork, event: ProgramLoaded) -> None:
    machine = await _machine(uow, event.machine_id, event.timestamp)
    if machine is None:
        return
    if not event.program:
        machine.loaded_program_id = None
        return
    program = await _program(uow, machine, event.program)
    program.last_loaded = from_unix(event.timestamp)
    machine.loaded_program_id = program.id


async def tool_changed(uow: UnitOfWork, event: ToolChanged) -> None:
    machine = await _machine(uow, event.machine_id, event.timestamp)
    if machine is None:
        return
    machine.current_tool = event.tool
    if event.tool not in (machine.tools_used or []):
        machine.tools_used = [*(machine.tools_used or []), event.tool]
    process = await _running_process(uow, machine)
    if process is not None:
        locations = [a.location for a in await repository.assemblies_of_process(uow.session, process.id)]
        updated = record_unassigned_use(dict(process.unassigned_tools_used or {}), event.tool, event.timestamp,
                                        locations)
        if updated is not None:
            process.unassigned_tools_used = updated


async def variables_changed(uow: UnitOfWork, event: VariablesChanged) -> None:
    machine = await _machine(uow, event.machine_id, event.timestamp)
    if machine is None:
        return
    previous = dict(machine.variables or {})
    machine.variables = {**previous, **event.variables}
    process = await _running_process(uow, machine)
    if process is None or process.part_count_cv is None:
        return
    key = str(process.part_count_cv)
    if key in event.variables and key in previous:
        rise = counter_rise(previous[key], event.variables[key])
        if rise:
            await _record(uow, machine, process, rise, event.timestamp, machine.loaded_program_id)


async def part_completed(uow: UnitOfWork, event: PartCompleted) -> None:
    machine = await _machine(uow, event.machine_id, event.timestamp)
    if machine is None:
        return
    program = await _program(uow, machine, event.program) if event.program else None
    if program is not None and program.process_id is not None:  # the report says what ran
        process = await _get(uow, Process, program.process_id)
    else:
        process = await _running_process(uow, machine)
    if process is not None and process.part_count_cv is not None:
        return  # this process counts parts from its variable, not the control's counter
    program_id = program.id if program is not None else machine.loaded_program_id
    await _record(uow, machine, process, event.increment, event.timestamp, program_id)


async def _record(uow: UnitOfWork, machine: Machine, process: Process | None, increment: int, at: float,
                  program_id: int | None) -> None:
    current = uow.session.info.get(_SETTINGS)
    if current is None:
        current = uow.session.info[_SETTINGS] = await settings_usecases.recent_settings(uow.session)
    # Each ORM attribute read once and written only when it changes: instrumented access was a
    # fifth of a part's CPU in a consumer batch.
    parts_per_cycle = process.parts_per_cycle if process is not None else 1
    decision = decide_part(increment, parts_per_cycle=parts_per_cycle, report_limit=current.part_report_limit)
    machine_id = machine.id
    if decision is None:
        log.warning("machine %s reported %s parts at once (limit %s): treated as a counter glitch",
                    machine_id, increment, current.part_report_limit)
        return
    variables = named_variables(process.cv_map or {}, machine.variables or {}) if process is not None else {}
    current_tool, tools_used, last_part_at = machine.current_tool, machine.tools_used, machine.last_part_at
    tools = sorted({*(tools_used or []), *([current_tool] if current_tool else [])})
    finished = from_unix(at)
    process_id = process.id if process is not None else None
    cycle_time = cycle_seconds(to_unix(last_part_at), at)
    row = dict(machine_id=machine_id, process_id=process_id, program_id=program_id, count=decision.count,
               cycles=decision.cycles, finished=finished, cycle_time=cycle_time, tool_locations=tools,
               variables=variables)
    if last_part_at is None or finished > last_part_at:
        machine.last_part_at = finished
    if process is not None:
        last_cycle_finished = process.last_cycle_finished
        if last_cycle_finished is None or finished >= last_cycle_finished:
            if last_cycle_finished != finished:
                process.last_cycle_finished = finished
            if process.last_cycle_program_id != program_id:
                process.last_cycle_program_id = program_id
    in_use = [current_tool] if current_tool else []
    if tools_used != in_use:
        machine.tools_used = in_use
    if variables:
        await _remember_variable_names(uow, variables)
    # process.part_recorded in its JSON form, less the part's id (PartRecorded's field order).
    recorded = {"machine_id": machine_id, "process_id": process_id, "program_id": program_id, "finished": at,
                "count": decision.count, "cycles": decision.cycles, "cycle_time": cycle_time,
                "time_per_cycle": process.time_per_cycle if process is not None else None,
                "parts_per_cycle": parts_per_cycle}
    reserved: deque[int] | None = uow.session.info.get(_PART_IDS)
    if reserved:
        # PostgreSQL: the id was reserved with the batch. The batch's rows, what they move on their
        # machines and processes and the batch's events go in with one statement before the commit
        # (an ORM object per part was a tenth of the batch's CPU, a statement per table a round trip).
        part_id = row["id"] = reserved.popleft()
        pending: _PartBatch | None = uow.session.info.get(_NEW_PARTS)
        if pending is None:
            pending = uow.session.info[_NEW_PARTS] = _PartBatch()
            uow.before_commit(lambda: pending.write(uow))
        pending.add(row, machine, process)
        # Queued as that form (no model to build and dump for every part); the telemetry tests
        # check it is exactly what PartRecorded dumps.
        uow.emit_data(PartRecorded, {"part_id": part_id, **recorded})
        return
    part = Part(**row)
    uow.session.add(part)
    # part.id exists after the flush at commit, which inserts the whole batch's parts at once.
    uow.emit_after_flush(lambda: PartRecorded(part_id=part.id, **recorded))


@dataclass
class _PartBatch:
    """A consumer batch's new parts and the machines and processes they moved (PostgreSQL)."""

    parts: list[dict[str, Any]] = field(default_factory=list)
    machines: dict[int, Machine] = field(default_factory=dict)
    processes: dict[int, Process] = field(default_factory=dict)

    def add(self, row: dict[str, Any], machine: Machine, process: Process | None) -> None:
        self.parts.append(row)
        self.machines[machine.id] = machine
        if process is not None:
            self.processes[process.id] = process

    async def write(self, uow: UnitOfWork) -> None:
        outbox = uow.take_outbox_rows()
        if outbox is None:  # an event still waits for a flush: the parts alone, the rest as usual
            await repository.insert_parts(uow.session, self.parts)
            return
        machines = _moved(self.machines.values(), repository.PART_MACHINE_COLUMNS)
        processes = _moved(self.processes.values(), repository.PART_PROCESS_COLUMNS)
        await repository.write_part_batch(uow.session, self.parts, machines, processes, outbox)


def _moved(rows: Iterable[T], columns: tuple[str, ...]) -> list[T]:
    """The rows whose `columns` changed in this transaction, those changes marked as written (the
    flush at commit writes only their other changes, if any)."""
    moved = []
    for row in rows:
        state = inspect(row)
        if any(state.attrs[column].history.has_changes() for column in columns):
            moved.append(row)
            for column in columns:
                set_committed_value(row, column, getattr(row, column))
    return moved


async def _remember_variable_names(uow: UnitOfWork, variables: dict[str, object]) -> None:
    seen = set((await repository.settings_values(uow.session)).get(VARIABLES_SEEN, []))
    if not set(variables) <= seen:
        await repository.put_setting(uow.session, VARIABLES_SEEN, sorted(seen | set(variables)))
