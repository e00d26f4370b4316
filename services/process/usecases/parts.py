"""Reading parts (parts are created from telemetry, see telemetry.py)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.process import repository
from services.process.schemas import PartRead
from services.process.usecases import views
from shared.db import from_unix
from shared.errors import InvalidInput


async def list_parts(session: AsyncSession, *, machine_id: int | None, process_id: int | None,
                     program_id: int | None, start: float | None, end: float | None, limit: int,
                     offset: int) -> dict[str, PartRead]:
    if start is not None and end is not None and end < start:
        raise InvalidInput("end", "must not be before start")
    parts = await repository.list_parts(
        session, machine_id=machine_id, process_id=process_id, program_id=program_id,
        start=from_unix(start) if start is not None else None, end=from_unix(end) if end is not None else None,
        limit=limit, offset=offset)
    return {str(p.id): views.part_read(p) for p in parts}


async def get_part(session: AsyncSession, part_id: int) -> PartRead:
    return views.part_read(await repository.get_part_or_404(session, part_id))
