"""A process's production history: day overview, chart, average cycle times, variables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.process import repository
from services.process.domain import calendar
from services.process.schemas import ChartRead
from services.process.usecases import settings as settings_usecases
from services.process.usecases import views
from shared.db import from_unix
from shared.errors import InvalidInput

VARIABLES_SEEN = "variables_seen"


async def overview(session: AsyncSession, process_id: int, year: int, month: int | None) -> dict[str, dict[str, int]]:
    await repository.get_process_or_404(session, process_id)
    if not 1970 <= year <= 9998:
        raise InvalidInput("year", "must be between 1970 and 9998")
    if month is not None and not 1 <= month <= 12:
        raise InvalidInput("month", "must be between 1 and 12")
    zone = await settings_usecases.shop_zone(session)
    start, end = calendar.local_range(zone, year, month)
    return calendar.overview(zone, await repository.part_days(session, process_id, start, end))


async def chart(session: AsyncSession, process_id: int, start: float | None, end: float | None,
                now: datetime) -> ChartRead:
    process = await repository.get_process_or_404(session, process_id)
    zone = await settings_usecases.shop_zone(session)
    begin = from_unix(start) if start is not None else calendar.start_of_local_day(zone, now)
    # The seed's default end is "the start of the current day", which would chart nothing;
    # the end of the current local day is what a chart of "today" needs (docs/api.md).
    finish = from_unix(end) if end is not None else calendar.start_of_next_local_day(zone, now)
    if finish < begin:
        raise InvalidInput("end", "must not be before start")
    parts = await repository.list_parts(session, process_id=process_id, start=begin, end=finish)
    return ChartRead(process=(await views.process_reads(session, [process]))[process.id],
                     parts={str(p.id): views.part_read(p) for p in reversed(parts)})


async def average_cycle_times(session: AsyncSession, ids: Sequence[int]) -> dict[str, float | None]:
    known = set(await repository.existing_process_ids(session, ids))
    averages = await repository.average_cycle_minutes(session, list(known))
    ordered = [pid for pid in dict.fromkeys(ids) if pid in known]  # request order, no repeats
    return {str(pid): (round(averages[pid], 4) if pid in averages else None) for pid in ordered}


async def variables(session: AsyncSession) -> list[str]:
    names: set[str] = set()
    for process in await repository.list_processes(session):
        names.update((process.cv_map or {}).keys())
    names.update((await repository.settings_values(session)).get(VARIABLES_SEEN, []))
    return sorted(names)
