"""Shop-wide settings: unused-tool check window, part report limit, shop time zone."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.process import repository
from services.process.schemas import SettingsRead, SettingsUpdate
from shared.events import SettingsUpdated
from shared.uow import UnitOfWork

if TYPE_CHECKING:
    from shared.runtime import ServiceRuntime

DEFAULTS: dict[str, Any] = {"check_unused_tools_parts": 5, "part_report_limit": 100, "time_zone": "UTC"}

# Every telemetry batch needs the settings, and they change seldom, through this service's API:
# kept per engine (one per service runtime) for a few seconds. A change through this replica
# applies from the next batch (dropped when it commits), one through another within CACHE_SECONDS.
CACHE_SECONDS = 2.0
_cached: WeakKeyDictionary[object, tuple[float, SettingsRead]] = WeakKeyDictionary()


async def ensure_defaults(runtime: ServiceRuntime) -> None:
    """First start: store the defaults (time zone from TAKTLINE_TIME_ZONE) once."""
    async with runtime.uow() as uow:
        stored = await repository.settings_values(uow.session)
        missing = {**DEFAULTS, "time_zone": runtime.settings.time_zone}.items() - stored.items()
        for key, value in missing:
            if key not in stored:
                await repository.put_setting(uow.session, key, value)
        await uow.commit()


async def get_settings(session: AsyncSession) -> SettingsRead:
    return SettingsRead(**{**DEFAULTS, **await repository.settings_values(session)})


async def recent_settings(session: AsyncSession) -> SettingsRead:
    """The settings as read at most CACHE_SECONDS ago (telemetry's hot path; the API reads them fresh)."""
    now = time.monotonic()
    kept = _cached.get(session.bind)
    if kept is not None and now - kept[0] < CACHE_SECONDS:
        return kept[1]
    current = await get_settings(session)
    _cached[session.bind] = (now, current)
    return current


async def shop_zone(session: AsyncSession) -> ZoneInfo:
    return ZoneInfo((await get_settings(session)).time_zone)


async def update_settings(uow: UnitOfWork, changes: SettingsUpdate) -> SettingsRead:
    for key, value in changes.model_dump(exclude_unset=True).items():
        await repository.put_setting(uow.session, key, value)
    engine = uow.session.bind
    uow.after_commit(lambda: _cached.pop(engine, None))
    current = await get_settings(uow.session)
    uow.emit(SettingsUpdated(**current.model_dump()))
    return current


def settings_event(current: SettingsRead) -> SettingsUpdated:
    return SettingsUpdated(**current.model_dump())
