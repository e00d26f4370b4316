"""Checks of ids a request body names: an unknown one is a 400 naming the field."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.process.models import Machine, Process, ToolAssembly
from shared.errors import InvalidInput


async def require_machine(session: AsyncSession, machine_id: int, field: str = "machine_id") -> Machine:
    machine = await session.get(Machine, machine_id)
    if machine is None:
        raise InvalidInput(field, f"machine {machine_id} does not exist")
    return machine


async def require_assembly(session: AsyncSession, assembly_id: int | None, field: str = "assembly_id") -> ToolAssembly:
    assembly = await session.get(ToolAssembly, assembly_id) if assembly_id is not None else None
    if assembly is None:
        raise InvalidInput(field, f"tool assembly {assembly_id} does not exist")
    return assembly


async def require_process_on(session: AsyncSession, process_id: int | None, machine_id: int) -> None:
    """A process to assign something of `machine_id` to: it must exist and be on that machine."""
    if process_id is None:
        return
    process = await session.get(Process, process_id)
    if process is None:
        raise InvalidInput("process_id", f"process {process_id} does not exist")
    if process.machine_id != machine_id:
        raise InvalidInput("process_id", f"process {process_id} is on machine {process.machine_id}, "
                                         f"not machine {machine_id}")
