"""Schedule views over the engine: every item's due dates in a range, a preview, the shop's zone."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.maintenance import repository
from services.maintenance.domain import rules, schedule
from services.maintenance.schemas import PreviewRequest
from services.maintenance.usecases import context
from shared.db import from_unix


async def due_dates(session: AsyncSession, start: datetime, end: datetime) -> dict[str, list[float]]:
    ctx = await context.load(session)
    found: dict[str, list[float]] = {}
    for item in await repository.schedule_rows(session):
        dates = schedule.due_dates(ctx.spec(item), ctx.state(item), ctx.zone, start, end)
        run_time_due = ctx.run_time_due(item)
        if run_time_due is not None and start <= run_time_due < end and run_time_due not in dates:
            dates = sorted([*dates, run_time_due])
        found[str(item.id)] = [d.timestamp() for d in dates]
    return found


async def preview(session: AsyncSession, request: PreviewRequest, count: int, now: datetime) -> list[float]:
    """From the last entry of `id`, else `initial_entry`, else now (shown in the shop's zone)."""
    zone = await context.shop_zone(session)
    start: datetime | None = None
    if request.id is not None:
        last = await repository.last_entry(session, request.id)
        start = last.time if last else None
    if start is None and request.initial_entry is not None:
        start = from_unix(request.initial_entry)
    spec = rules.schedule_spec(request.model_dump(), has_machine=False)  # mode 1 previews as clock time
    return [d.timestamp() for d in schedule.preview(spec, zone, start or now, count)]
