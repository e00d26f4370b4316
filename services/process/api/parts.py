"""/api/parts: parts recorded from telemetry, filtered by machine, process, program and time."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.process.api.deps import IdFilter, SessionDep, UnixTime
from services.process.schemas import PartRead
from services.process.usecases import parts
from shared.auth import Reader
from shared.errors import problem_responses

router = APIRouter(prefix="/api/parts", tags=["parts"])


@router.get("/", responses=problem_responses(400, 401, 403))
async def list_parts(_: Reader, session: SessionDep, machine_id: IdFilter = None, process_id: IdFilter = None,
                     program_id: IdFilter = None, start: UnixTime = None, end: UnixTime = None,
                     limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
                     offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, PartRead]:
    return await parts.list_parts(session, machine_id=machine_id, process_id=process_id, program_id=program_id,
                                  start=start, end=end, limit=limit, offset=offset)


@router.get("/{part_id}", responses=problem_responses(401, 403, 404))
async def get_part(_: Reader, session: SessionDep, part_id: int) -> PartRead:
    return await parts.get_part(session, part_id)
