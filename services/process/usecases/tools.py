"""Tool assemblies (a location on a machine, assigned to a process or none) and their tools."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.process import repository
from services.process.models import Tool, ToolAssembly
from services.process.schemas import (
    ToolAssemblyCreate,
    ToolAssemblyRead,
    ToolAssemblyUpdate,
    ToolCreate,
    ToolRead,
    ToolUpdate,
)
from services.process.usecases import references, views
from shared.errors import InvalidInput
from shared.uow import UnitOfWork


def assembly_read(assembly: ToolAssembly, tools: list[Tool]) -> ToolAssemblyRead:
    return ToolAssemblyRead(
        id=assembly.id, machine_id=assembly.machine_id, name=assembly.name, description=assembly.description,
        location=assembly.location, process_id=assembly.process_id,
        tools={str(t.id): views.tool_read(t, assembly) for t in tools},
    )


async def _assembly_reads(session: AsyncSession, assemblies: list[ToolAssembly]) -> dict[str, ToolAssemblyRead]:
    tools = await repository.tools_in(session, [a.id for a in assemblies])
    return {str(a.id): assembly_read(a, [t for t in tools if t.assembly_id == a.id]) for a in assemblies}


async def list_assemblies(session: AsyncSession, machine_id: int | None,
                          process_id: int | None) -> dict[str, ToolAssemblyRead]:
    return await _assembly_reads(session, list(await repository.list_assemblies(session, machine_id, process_id)))


async def get_assembly(session: AsyncSession, assembly_id: int) -> ToolAssemblyRead:
    assembly = await repository.get_assembly_or_404(session, assembly_id)
    return (await _assembly_reads(session, [assembly]))[str(assembly.id)]


async def create_assembly(uow: UnitOfWork, data: ToolAssemblyCreate) -> ToolAssemblyRead:
    await references.require_machine(uow.session, data.machine_id)
    await references.require_process_on(uow.session, data.process_id, data.machine_id)
    assembly = ToolAssembly(**data.model_dump(exclude={"tools"}))
    uow.session.add(assembly)
    await uow.flush()
    for tool in data.tools:
        uow.session.add(Tool(assembly_id=assembly.id, **tool.model_dump()))
    await uow.flush()
    return await get_assembly(uow.session, assembly.id)


async def update_assembly(uow: UnitOfWork, assembly_id: int, changes: ToolAssemblyUpdate) -> ToolAssemblyRead:
    assembly = await repository.get_assembly_or_404(uow.session, assembly_id)
    values = changes.model_dump(exclude_unset=True)
    if "machine_id" in values and values.pop("machine_id") != assembly.machine_id:
        raise InvalidInput("machine_id", "an assembly cannot move to another machine; create one there")
    if "process_id" in values:
        await references.require_process_on(uow.session, values["process_id"], assembly.machine_id)
    for key, value in values.items():
        if value is None and key in ("name", "description"):
            raise InvalidInput(key, "cannot be null")
        setattr(assembly, key, value)
    await uow.flush()
    return await get_assembly(uow.session, assembly.id)


async def delete_assembly(uow: UnitOfWork, assembly_id: int) -> None:
    await uow.session.delete(await repository.get_assembly_or_404(uow.session, assembly_id))


async def list_tools(session: AsyncSession, machine_id: int | None, process_id: int | None,
                     assembly_id: int | None) -> dict[str, ToolRead]:
    return {str(t.id): views.tool_read(t, a)
            for t, a in await repository.list_tools(session, machine_id, process_id, assembly_id)}


async def get_tool(session: AsyncSession, tool_id: int) -> ToolRead:
    tool = await repository.get_tool_or_404(session, tool_id)
    return views.tool_read(tool, await repository.get_assembly_or_404(session, tool.assembly_id))


async def create_tool(uow: UnitOfWork, data: ToolCreate) -> ToolRead:
    await references.require_assembly(uow.session, data.assembly_id)
    tool = Tool(**data.model_dump())
    uow.session.add(tool)
    await uow.flush()
    return await get_tool(uow.session, tool.id)


async def update_tool(uow: UnitOfWork, tool_id: int, changes: ToolUpdate) -> ToolRead:
    """Also how a tool is replaced: new dimensions or part number, or moved into another assembly."""
    tool = await repository.get_tool_or_404(uow.session, tool_id)
    values = changes.model_dump(exclude_unset=True)
    if "assembly_id" in values:
        await references.require_assembly(uow.session, values["assembly_id"])
    for key, value in values.items():
        if value is None and key not in ("diameter", "length"):
            raise InvalidInput(key, "cannot be null")
        setattr(tool, key, value)
    await uow.flush()
    return await get_tool(uow.session, tool.id)


async def delete_tool(uow: UnitOfWork, tool_id: int) -> None:
    await uow.session.delete(await repository.get_tool_or_404(uow.session, tool_id))
