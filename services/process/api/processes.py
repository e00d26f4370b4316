"""/api/processes: the seed's endpoints (seeds/000)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response

from services.process.api.deps import NowDep, SessionDep, UnixTime, UowDep
from services.process.schemas import (
    ChangeoverRequest,
    ChartRead,
    DuplicateRequest,
    Int32,
    ProcessCreate,
    ProcessRead,
    ProcessUpdate,
    ToolRead,
    ToolRequirementCreate,
    ToolRequirementRead,
)
from services.process.usecases import changeovers, history, processes
from shared.auth import Editor, Operator, Reader
from shared.errors import problem_responses
from shared.read_cache import CachedReads, cached_json
from shared.schemas import INT32_MAX

router = APIRouter(prefix="/api/processes", tags=["processes"])
Flag = Annotated[int, Query(ge=0, le=1)]


# The two reads below answer plain data in the response model's shape, serialised as FastAPI
# would (tests/process/api/test_read_path.py holds them to it), through the read cache for the
# requests `read_key` covers (shared/read_cache.py; the service's spec declares it).
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the ETag in If-None-Match is still current"}}


def _reads(request: Request) -> CachedReads | None:
    return request.app.state.runtimes["process"].reads


_FLAGS = (b"programs", b"tools", b"efficiency")
_READ_PATH = re.compile(r"/api/processes/(?:([0-9]{1,10}))?\Z")


def read_key(path: str, query: bytes) -> tuple[Any, ...] | None:
    """The cache key of GET /api/processes/ or /{id} with well-formed flags, or None: uncached
    (efficiency depends on the clock; anything unusual is left to the route's validation)."""
    match = _READ_PATH.match(path)
    if match is None:
        return None
    flags = dict.fromkeys(_FLAGS, b"0")
    seen: set[bytes] = set()
    for pair in query.split(b"&") if query else ():
        name, _, value = pair.partition(b"=")
        if name not in flags or name in seen or value not in (b"0", b"1"):
            return None
        seen.add(name)
        flags[name] = value
    if flags[b"efficiency"] == b"1":
        return None
    programs, tools = flags[b"programs"] == b"1", flags[b"tools"] == b"1"
    if match.group(1) is None:
        return ("/api/processes/", programs, tools)
    process_id = int(match.group(1))
    return ("/api/processes/{process_id}", process_id, programs, tools) if process_id <= INT32_MAX else None


@router.get("/", response_model=dict[str, ProcessRead], response_model_exclude_unset=True,
            responses={**NOT_MODIFIED, **problem_responses(400, 401, 403)})
async def list_processes(
    request: Request, _: Reader, session: SessionDep, now: NowDep,
    programs: Flag = 0, tools: Flag = 0, efficiency: Flag = 0,
) -> Response:
    async def build() -> Any:
        return await processes.list_processes(
            session, programs=bool(programs), tools=bool(tools), with_efficiency=bool(efficiency), now=now)

    return await cached_json(request, _reads(request), build)


@router.get("/variables", responses=problem_responses(401, 403))
async def list_variables(_: Reader, session: SessionDep) -> list[str]:
    return await history.variables(session)


@router.post("/averageCycleTimes", responses=problem_responses(400, 401, 403))
async def average_cycle_times(
    _: Reader, session: SessionDep, ids: Annotated[list[Int32], Body()]
) -> dict[str, float | None]:
    return await history.average_cycle_times(session, ids)


@router.put("/", status_code=201, response_model_exclude_unset=True, responses=problem_responses(400, 401, 403))
async def create_process(_: Editor, uow: UowDep, body: ProcessCreate) -> ProcessRead:
    return await processes.create_process(uow, body)


@router.get("/{process_id}", response_model=ProcessRead, response_model_exclude_unset=True,
            responses={**NOT_MODIFIED, **problem_responses(400, 401, 403, 404)})
async def get_process(
    request: Request,
    _: Reader,
    session: SessionDep,
    now: NowDep,
    process_id: int,
    programs: Flag = 0,
    tools: Flag = 0,
    efficiency: Flag = 0,
) -> Response:
    async def build() -> Any:
        return await processes.get_process(
            session, process_id, programs=bool(programs), tools=bool(tools), with_efficiency=bool(efficiency),
            now=now)

    return await cached_json(request, _reads(request), build)


@router.patch("/{process_id}", response_model_exclude_unset=True, responses=problem_responses(400, 401, 403, 404))
async def update_process(_: Editor, uow: UowDep, process_id: int, body: ProcessUpdate) -> ProcessRead:
    return await processes.update_process(uow, process_id, body)


@router.delete("/{process_id}", status_code=204, responses=problem_responses(401, 403, 404))
async def delete_process(_: Editor, uow: UowDep, process_id: int) -> Response:
    await processes.delete_process(uow, process_id)
    return Response(status_code=204)


@router.put("/{process_id}/toolRequirements", status_code=201, responses=problem_responses(400, 401, 403, 404, 409))
async def create_tool_requirement(
    _: Editor, uow: UowDep, process_id: int, body: ToolRequirementCreate
) -> ToolRequirementRead:
    return await processes.add_tool_requirement(uow, process_id, body)


@router.get("/{process_id}/toolRequirements", responses=problem_responses(401, 403, 404))
async def list_tool_requirements(_: Reader, session: SessionDep, process_id: int) -> dict[str, ToolRequirementRead]:
    return await processes.list_tool_requirements(session, process_id)


@router.post(
    "/{process_id}/archive", response_model_exclude_unset=True, responses=problem_responses(400, 401, 403, 404)
)
async def archive_process(_: Editor, uow: UowDep, process_id: int, programs: Flag = 0) -> ProcessRead:
    return await processes.archive_process(uow, process_id, programs=bool(programs))


@router.get("/{process_id}/overview/{year}", responses=problem_responses(400, 401, 403, 404))
async def overview_year(_: Reader, session: SessionDep, process_id: int, year: int) -> dict[str, dict[str, int]]:
    return await history.overview(session, process_id, year, None)


@router.get("/{process_id}/overview/{year}/{month}", responses=problem_responses(400, 401, 403, 404))
async def overview_month(
    _: Reader, session: SessionDep, process_id: int, year: int, month: int
) -> dict[str, dict[str, int]]:
    return await history.overview(session, process_id, year, month)


@router.get("/{process_id}/chart", response_model_exclude_unset=True, responses=problem_responses(400, 401, 403, 404))
async def chart(
    _: Reader, session: SessionDep, now: NowDep, process_id: int, start: UnixTime = None, end: UnixTime = None
) -> ChartRead:
    return await history.chart(session, process_id, start, end, now)


@router.get("/{process_id}/tools", responses=problem_responses(401, 403, 404))
async def process_tools(_: Reader, session: SessionDep, process_id: int) -> dict[str, ToolRead]:
    return await processes.process_tools(session, process_id)


@router.post(
    "/{process_id}/duplicate",
    status_code=201,
    response_model_exclude_unset=True,
    responses=problem_responses(400, 401, 403, 404),
)
async def duplicate_process(_: Editor, uow: UowDep, process_id: int, body: DuplicateRequest) -> ProcessRead:
    return await changeovers.duplicate_process(uow, process_id, body)


@router.post(
    "/{from_id}/changeover/{to_id}",
    response_model_exclude_unset=True,
    responses=problem_responses(400, 401, 403, 404, 409, 412),
)
async def change_over(
    who: Operator,
    uow: UowDep,
    now: NowDep,
    from_id: int,
    to_id: int,
    planned: Flag = 0,
    body: ChangeoverRequest | None = None,
) -> ProcessRead:
    return await changeovers.change_over(
        uow, from_id, to_id, body or ChangeoverRequest(), planned=bool(planned), user=who.subject, now=now
    )
