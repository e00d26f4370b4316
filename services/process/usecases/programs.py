"""Programs: a filename on a machine, in at most one process."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.process import repository
from services.process.models import Machine, Program
from services.process.schemas import ProgramCreate, ProgramRead, ProgramUpdate
from services.process.usecases import references, views
from shared.errors import Conflict, InvalidInput
from shared.uow import UnitOfWork


async def _read(session: AsyncSession, program: Program) -> ProgramRead:
    return views.program_read(program, await repository.loaded_program_ids(session))


async def list_programs(
    session: AsyncSession, machine_id: int | None, process_id: int | None
) -> dict[str, ProgramRead]:
    loaded = await repository.loaded_program_ids(session)
    return {str(p.id): views.program_read(p, loaded)
            for p in await repository.list_programs(session, machine_id, process_id)}


async def get_program(session: AsyncSession, program_id: int) -> ProgramRead:
    return await _read(session, await repository.get_program_or_404(session, program_id))


async def _check_filename_free(session: AsyncSession, machine_id: int, filename: str, own_id: int | None) -> None:
    existing = await repository.program_by_filename(session, machine_id, filename)
    if existing is not None and existing.id != own_id:
        raise Conflict(f"machine {machine_id} already has program {filename!r} (id {existing.id})")


async def create_program(uow: UnitOfWork, data: ProgramCreate) -> ProgramRead:
    await references.require_machine(uow.session, data.machine_id)
    await references.require_process_on(uow.session, data.process_id, data.machine_id)
    await _check_filename_free(uow.session, data.machine_id, data.filename, None)
    program = Program(**data.model_dump())
    uow.session.add(program)
    await uow.flush()
    return await _read(uow.session, program)


async def update_program(uow: UnitOfWork, program_id: int, changes: ProgramUpdate) -> ProgramRead:
    program = await repository.get_program_or_404(uow.session, program_id)
    values = changes.model_dump(exclude_unset=True)
    if "machine_id" in values and values.pop("machine_id") != program.machine_id:
        raise InvalidInput("machine_id", "a program cannot move to another machine")
    if "process_id" in values:
        await references.require_process_on(uow.session, values["process_id"], program.machine_id)
    if "filename" in values:
        if values["filename"] is None:
            raise InvalidInput("filename", "cannot be null")
        await _check_filename_free(uow.session, program.machine_id, values["filename"], program.id)
    for key, value in values.items():
        if value is None and key not in ("process_id",):
            raise InvalidInput(key, "cannot be null")
        setattr(program, key, value)
    await uow.flush()
    return await _read(uow.session, program)


async def delete_program(uow: UnitOfWork, program_id: int) -> None:
    program = await repository.get_program_or_404(uow.session, program_id)
    machine = await uow.session.get(Machine, program.machine_id)
    if machine is not None and machine.loaded_program_id == program.id:
        machine.loaded_program_id = None
    await uow.session.delete(program)
