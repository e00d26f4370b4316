"""/api/programs: part programs, a filename on a machine, in at most one process."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.process.api.deps import IdFilter, SessionDep, UowDep
from services.process.schemas import ProgramCreate, ProgramRead, ProgramUpdate
from services.process.usecases import programs
from shared.auth import Editor, Reader
from shared.errors import problem_responses

router = APIRouter(prefix="/api/programs", tags=["programs"])


@router.get("/", responses=problem_responses(400, 401, 403))
async def list_programs(_: Reader, session: SessionDep, machine_id: IdFilter = None,
                        process_id: IdFilter = None) -> dict[str, ProgramRead]:
    return await programs.list_programs(session, machine_id, process_id)


@router.put("/", status_code=201, responses=problem_responses(400, 401, 403, 409))
async def create_program(_: Editor, uow: UowDep, body: ProgramCreate) -> ProgramRead:
    return await programs.create_program(uow, body)


@router.get("/{program_id}", responses=problem_responses(401, 403, 404))
async def get_program(_: Reader, session: SessionDep, program_id: int) -> ProgramRead:
    return await programs.get_program(session, program_id)


@router.patch("/{program_id}", responses=problem_responses(400, 401, 403, 404, 409))
async def update_program(_: Editor, uow: UowDep, program_id: int, body: ProgramUpdate) -> ProgramRead:
    return await programs.update_program(uow, program_id, body)


@router.delete("/{program_id}", status_code=204, responses=problem_responses(401, 403, 404))
async def delete_program(_: Editor, uow: UowDep, program_id: int) -> Response:
    await programs.delete_program(uow, program_id)
    return Response(status_code=204)
