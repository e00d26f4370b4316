"""/api/maintenance/items: the seed's endpoints (import is not built yet)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Body, Query, Response

from services.maintenance.api.deps import IdList, Limit, NowDep, Offset, SessionDep, UnixTime, UowDep
from services.maintenance.schemas import EntryRead, ItemCreate, ItemRead, ItemUpdate, PreviewRequest
from services.maintenance.usecases import items, schedule
from shared.auth import Editor, Reader
from shared.db import from_unix
from shared.errors import InvalidInput, problem_responses

router = APIRouter(prefix="/api/maintenance/items", tags=["maintenance items"])
Ids = Annotated[list[Annotated[int, Body()]], Body(max_length=10_000)]


@router.get("/", responses=problem_responses(400, 401, 403))
async def list_items(
    _: Reader, session: SessionDep, item_type: Annotated[list[Literal["task", "measurement"]], Query()] = [],  # noqa: B006
    machine_id: IdList = [], equipment_id: IdList = [],  # noqa: B006
) -> dict[str, ItemRead]:
    return await items.list_items(session, item_types=item_type, machine_ids=machine_id, equipment_ids=equipment_id)


@router.put("/", status_code=201, responses=problem_responses(400, 401, 403))
async def create_item(_: Editor, uow: UowDep, body: ItemCreate) -> ItemRead:
    return await items.create_item(uow, body)


@router.get("/schedule", response_model=dict[str, list[float]], responses=problem_responses(400, 401, 403))
async def get_schedule(_: Reader, session: SessionDep, start: UnixTime = None, end: UnixTime = None) -> Response:
    if start is None or end is None:
        raise InvalidInput("start" if start is None else "end", "start and end (UNIX seconds) are required")
    # Serialized directly: a shop's whole schedule is up to a million numbers, which the
    # response-model validation would walk again for nothing.
    found = await schedule.due_dates(session, from_unix(start), from_unix(end))
    return Response(orjson.dumps(found), media_type="application/json")


@router.post("/previewSchedule", responses=problem_responses(400, 401, 403))
async def preview_schedule(_: Reader, session: SessionDep, now: NowDep, body: PreviewRequest,
                           count: Annotated[int, Query(ge=1, le=1000)] = 1) -> list[float]:
    return await schedule.preview(session, body, count, now)


@router.post("/averageCompletionDurations", responses=problem_responses(400, 401, 403))
async def average_completion_durations(_: Reader, session: SessionDep, body: Ids) -> dict[str, float | None]:
    return await items.average_completion_durations(session, body)


@router.get("/{item_id}", responses=problem_responses(401, 403, 404))
async def get_item(_: Reader, session: SessionDep, item_id: int) -> ItemRead:
    return await items.get_item(session, item_id)


@router.patch("/{item_id}", responses=problem_responses(400, 401, 403, 404))
async def update_item(_: Editor, uow: UowDep, item_id: int, body: ItemUpdate) -> ItemRead:  # type: ignore[valid-type]
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    return await items.update_item(uow, item_id, changes)


@router.delete("/{item_id}", status_code=204, responses=problem_responses(401, 403, 404))
async def delete_item(_: Editor, uow: UowDep, item_id: int) -> Response:
    await items.delete_item(uow, item_id)
    return Response(status_code=204)


@router.get("/{item_id}/entries", responses=problem_responses(400, 401, 403, 404))
async def item_entries(_: Reader, session: SessionDep, item_id: int, limit: Limit = None,
                       offset: Offset = 0) -> dict[str, EntryRead]:
    return await items.item_entries(session, item_id, limit=limit, offset=offset)
