"""/api/toolAssemblies and /api/tools. Shop staff may edit them: that is tool replacement."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.process.api.deps import IdFilter, SessionDep, UowDep
from services.process.schemas import (
    ToolAssemblyCreate,
    ToolAssemblyRead,
    ToolAssemblyUpdate,
    ToolCreate,
    ToolRead,
    ToolUpdate,
)
from services.process.usecases import tools
from shared.auth import Operator, Reader
from shared.errors import problem_responses

assemblies = APIRouter(prefix="/api/toolAssemblies", tags=["tools"])
router = APIRouter(prefix="/api/tools", tags=["tools"])


@assemblies.get("/", responses=problem_responses(400, 401, 403))
async def list_assemblies(_: Reader, session: SessionDep, machine_id: IdFilter = None,
                          process_id: IdFilter = None) -> dict[str, ToolAssemblyRead]:
    return await tools.list_assemblies(session, machine_id, process_id)


@assemblies.put("/", status_code=201, responses=problem_responses(400, 401, 403))
async def create_assembly(_: Operator, uow: UowDep, body: ToolAssemblyCreate) -> ToolAssemblyRead:
    return await tools.create_assembly(uow, body)


@assemblies.get("/{assembly_id}", responses=problem_responses(401, 403, 404))
async def get_assembly(_: Reader, session: SessionDep, assembly_id: int) -> ToolAssemblyRead:
    return await tools.get_assembly(session, assembly_id)


@assemblies.patch("/{assembly_id}", responses=problem_responses(400, 401, 403, 404))
async def update_assembly(_: Operator, uow: UowDep, assembly_id: int, body: ToolAssemblyUpdate) -> ToolAssemblyRead:
    return await tools.update_assembly(uow, assembly_id, body)


@assemblies.delete("/{assembly_id}", status_code=204, responses=problem_responses(401, 403, 404))
async def delete_assembly(_: Operator, uow: UowDep, assembly_id: int) -> Response:
    await tools.delete_assembly(uow, assembly_id)
    return Response(status_code=204)


@router.get("/", responses=problem_responses(400, 401, 403))
async def list_tools(_: Reader, session: SessionDep, machine_id: IdFilter = None, process_id: IdFilter = None,
                     assembly_id: IdFilter = None) -> dict[str, ToolRead]:
    return await tools.list_tools(session, machine_id, process_id, assembly_id)


@router.put("/", status_code=201, responses=problem_responses(400, 401, 403))
async def create_tool(_: Operator, uow: UowDep, body: ToolCreate) -> ToolRead:
    return await tools.create_tool(uow, body)


@router.get("/{tool_id}", responses=problem_responses(401, 403, 404))
async def get_tool(_: Reader, session: SessionDep, tool_id: int) -> ToolRead:
    return await tools.get_tool(session, tool_id)


@router.patch("/{tool_id}", responses=problem_responses(400, 401, 403, 404))
async def update_tool(_: Operator, uow: UowDep, tool_id: int, body: ToolUpdate) -> ToolRead:
    return await tools.update_tool(uow, tool_id, body)


@router.delete("/{tool_id}", status_code=204, responses=problem_responses(401, 403, 404))
async def delete_tool(_: Operator, uow: UowDep, tool_id: int) -> Response:
    await tools.delete_tool(uow, tool_id)
    return Response(status_code=204)
