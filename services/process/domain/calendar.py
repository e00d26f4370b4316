"""Shop-local days: range of a year or month in UTC, and grouping parts by local day."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo


def local_range(zone: ZoneInfo, year: int, month: int | None) -> tuple[datetime, datetime]:
    """UTC bounds [start, end) of a local year, or of one local month."""
    if month is None:
        start, end = datetime(year, 1, 1, tzinfo=zone), datetime(year + 1, 1, 1, tzinfo=zone)
    else:
        start = datetime(year, month, 1, tzinfo=zone)
        end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def overview(zone: ZoneInfo, parts: Iterable[tuple[datetime, int]]) -> dict[str, dict[str, int]]:
    """{"YYYY": {"YYYY-MM-DD": parts}} with each part on the shop-local day it finished."""
    days: dict[str, dict[str, int]] = defaultdict(dict)
    for finished, count in parts:
        local = finished.astimezone(zone)
        day = local.strftime("%Y-%m-%d")
        bucket = days[f"{local.year:04d}"]
        bucket[day] = bucket.get(day, 0) + count
    return {year: dict(sorted(d.items())) for year, d in sorted(days.items())}


def start_of_local_day(zone: ZoneInfo, now: datetime) -> datetime:
    local = now.astimezone(zone)
    return datetime(local.year, local.month, local.day, tzinfo=zone).astimezone(UTC)


def start_of_next_local_day(zone: ZoneInfo, now: datetime) -> datetime:
    local = now.astimezone(zone)
    nxt = datetime(local.year, local.month, local.day) + timedelta(days=1)
    return nxt.replace(tzinfo=zone).astimezone(UTC)
