"""/api/maintenance/entries: recording (and correcting) completed maintenance."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.maintenance.api.deps import IdFilter, Limit, NowDep, Offset, SessionDep, UowDep
from services.maintenance.schemas import EntryCreate, EntryRead, EntryUpdate
from services.maintenance.usecases import entries
from shared.auth import Operator, Reader
from shared.errors import problem_responses

router = APIRouter(prefix="/api/maintenance/entries", tags=["maintenance entries"])


@router.get("/", responses=problem_responses(400, 401, 403))
async def list_entries(_: Reader, session: SessionDep, item_id: IdFilter = None, limit: Limit = None,
                       offset: Offset = 0) -> dict[str, EntryRead]:
    return await entries.list_entries(session, item_id=item_id, limit=limit, offset=offset)


@router.put("/", status_code=201, responses=problem_responses(400, 401, 403, 409))
async def create_entry(who: Operator, uow: UowDep, now: NowDep, body: EntryCreate) -> EntryRead:
    return await entries.create_entry(uow, body, user=who.subject, now=now)


@router.get("/{entry_id}", responses=problem_responses(401, 403, 404))
async def get_entry(_: Reader, session: SessionDep, entry_id: int) -> EntryRead:
    return await entries.get_entry(session, entry_id)


@router.patch("/{entry_id}", responses=problem_responses(400, 401, 403, 404))
async def update_entry(_: Operator, uow: UowDep, entry_id: int, body: EntryUpdate) -> EntryRead:
    return await entries.update_entry(uow, entry_id, body)


@router.delete("/{entry_id}", status_code=204, responses=problem_responses(401, 403, 404))
async def delete_entry(_: Operator, uow: UowDep, entry_id: int) -> Response:
    await entries.delete_entry(uow, entry_id)
    return Response(status_code=204)
