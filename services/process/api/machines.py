"""/api/machines: machines, their active process, loaded program and interlock."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.process.api.deps import SessionDep, UowDep
from services.process.schemas import MachineCreate, MachineRead, MachineUpdate
from services.process.usecases import machines
from shared.auth import Editor, Reader
from shared.errors import problem_responses

router = APIRouter(prefix="/api/machines", tags=["machines"])


@router.get("/", responses=problem_responses(401, 403))
async def list_machines(_: Reader, session: SessionDep) -> dict[str, MachineRead]:
    return await machines.list_machines(session)


@router.put("/", status_code=201, responses=problem_responses(400, 401, 403))
async def create_machine(_: Editor, uow: UowDep, body: MachineCreate) -> MachineRead:
    return await machines.create_machine(uow, body)


@router.get("/{machine_id}", responses=problem_responses(401, 403, 404))
async def get_machine(_: Reader, session: SessionDep, machine_id: int) -> MachineRead:
    return await machines.get_machine(session, machine_id)


@router.patch("/{machine_id}", responses=problem_responses(400, 401, 403, 404))
async def update_machine(_: Editor, uow: UowDep, machine_id: int, body: MachineUpdate) -> MachineRead:
    return await machines.update_machine(uow, machine_id, body)


@router.delete("/{machine_id}", status_code=204, responses=problem_responses(401, 403, 404, 409))
async def delete_machine(_: Editor, uow: UowDep, machine_id: int) -> Response:
    await machines.delete_machine(uow, machine_id)
    return Response(status_code=204)
