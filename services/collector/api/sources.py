"""/api/collector/sources: where the collector reads each machine's data."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response

from services.collector.api.deps import IdFilter, PushSourcesDep, SessionDep, UowDep
from services.collector.schemas import SourceCreate, SourceRead, SourceUpdate
from services.collector.usecases import sources
from shared.auth import Editor, Reader
from shared.errors import problem_responses

router = APIRouter(prefix="/api/collector/sources", tags=["collector sources"])


@router.get("/", responses=problem_responses(400, 401, 403))
async def list_sources(_: Reader, session: SessionDep, machine_id: IdFilter = None,
                       kind: Literal["mtconnect", "shdr", "http", "simulator"] | None = None) -> dict[str, SourceRead]:
    return await sources.list_sources(session, machine_id, kind)


@router.put("/", status_code=201, responses=problem_responses(400, 401, 403))
async def create_source(_: Editor, uow: UowDep, cache: PushSourcesDep, body: SourceCreate) -> SourceRead:
    return await sources.create_source(uow, body, cache=cache)


@router.get("/{source_id}", responses=problem_responses(401, 403, 404))
async def get_source(_: Reader, session: SessionDep, source_id: int) -> SourceRead:
    return await sources.get_source(session, source_id)


@router.patch("/{source_id}", responses=problem_responses(400, 401, 403, 404))
async def update_source(_: Editor, uow: UowDep, cache: PushSourcesDep, source_id: int,
                        body: SourceUpdate) -> SourceRead:
    return await sources.update_source(uow, source_id, body, cache=cache)


@router.delete("/{source_id}", status_code=204, responses=problem_responses(401, 403, 404))
async def delete_source(_: Editor, uow: UowDep, cache: PushSourcesDep, source_id: int) -> Response:
    await sources.delete_source(uow, source_id, cache=cache)
    return Response(status_code=204)
