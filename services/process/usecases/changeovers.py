"""Confirming a process changeover, and duplicating a process onto another machine."""

from __future__ import annotations

from datetime import datetime

from services.process import repository
from services.process.domain.changeover import check_changeover, current_process
from services.process.models import Changeover, Process, ProcessToolRequirement, Tool, ToolAssembly
from services.process.schemas import ChangeoverRequest, DuplicateRequest, ProcessRead
from services.process.usecases import machines, processes, references
from shared.errors import InvalidInput
from shared.events import ProcessChangedOver
from shared.uow import UnitOfWork

COPIED_FIELDS = (
    "description", "cv_map", "display_variable", "part_count_cv", "part_material_cost", "part_sell_price",
    "parts_per_cycle", "setup_instructions", "teardown_instructions", "tags", "time_per_cycle",
)


async def change_over(uow: UnitOfWork, from_id: int, to_id: int, request: ChangeoverRequest, *,
                      planned: bool, user: str | None, now: datetime) -> ProcessRead:
    source = await repository.get_process_or_404(uow.session, from_id)
    target = await repository.get_process_or_404(uow.session, to_id)
    machine = await repository.get_machine_or_404(uow.session, target.machine_id)
    loaded_process = await repository.process_of_program(uow.session, machine.loaded_program_id)
    check_changeover(
        from_machine_id=source.machine_id, to_machine_id=target.machine_id, to_id=to_id,
        current_process_id=current_process(machine.active_process_id, loaded_process), planned=planned,
    )
    removed = await _assemblies_to_remove(uow, request.remove_tool_assemblies, machine.id)
    for assembly in removed:
        assembly.process_id = None
    machine.active_process_id = target.id
    uow.session.add(Changeover(machine_id=machine.id, from_process_id=source.id, to_process_id=target.id,
                               planned=planned, user=user, removed_tool_assemblies=[a.id for a in removed],
                               changed_at=now))
    await uow.flush()
    uow.emit(ProcessChangedOver(machine_id=machine.id, from_process_id=source.id, to_process_id=target.id,
                                planned=planned, changed_at=now.timestamp(), user=user,
                                removed_tool_assemblies=[a.id for a in removed]))
    uow.emit(machines.upserted(machine))
    return await processes.read_one(uow.session, target)


async def _assemblies_to_remove(uow: UnitOfWork, ids: list[int], machine_id: int) -> list[ToolAssembly]:
    found = {a.id: a for a in await repository.assemblies_by_ids(uow.session, ids)}
    unknown = sorted(set(ids) - set(found))
    if unknown:
        raise InvalidInput("remove_tool_assemblies", f"unknown tool assemblies: {unknown}")
    elsewhere = sorted(a.id for a in found.values() if a.machine_id != machine_id)
    if elsewhere:
        raise InvalidInput("remove_tool_assemblies", f"tool assemblies {elsewhere} are on another machine")
    return [found[i] for i in dict.fromkeys(ids)]


async def duplicate_process(uow: UnitOfWork, process_id: int, request: DuplicateRequest) -> ProcessRead:
    source = await repository.get_process_or_404(uow.session, process_id)
    await references.require_machine(uow.session, request.machine_id)
    copy = Process(machine_id=request.machine_id, name=request.name, archived=False, unassigned_tools_used={},
                   **{f: getattr(source, f) for f in COPIED_FIELDS})
    uow.session.add(copy)
    await uow.flush()
    for requirement in await repository.tool_requirements(uow.session, source.id):
        uow.session.add(ProcessToolRequirement(process_id=copy.id, location=requirement.location,
                                               description=requirement.description,
                                               tool_type=requirement.tool_type))
    await _copy_assemblies(uow, source.id, copy)
    filenames = [p.filename for p in await repository.programs_of(uow.session, [source.id])]
    for program in await repository.programs_by_filenames(uow.session, request.machine_id, filenames):
        if program.process_id is None:  # adopt; never steal from another process, never create
            program.process_id = copy.id
    await uow.flush()
    uow.emit(processes.upserted(copy))
    return await processes.read_one(uow.session, copy)


async def _copy_assemblies(uow: UnitOfWork, source_id: int, copy: Process) -> None:
    assemblies = await repository.assemblies_of_process(uow.session, source_id)
    tools = await repository.tools_in(uow.session, [a.id for a in assemblies])
    for assembly in assemblies:
        new = ToolAssembly(machine_id=copy.machine_id, name=assembly.name, description=assembly.description,
                           location=assembly.location, process_id=copy.id)
        uow.session.add(new)
        await uow.flush()
        for tool in (t for t in tools if t.assembly_id == assembly.id):
            uow.session.add(Tool(assembly_id=new.id, name=tool.name, description=tool.description,
                                 tool_type=tool.tool_type, part_number=tool.part_number,
                                 diameter=tool.diameter, length=tool.length))
