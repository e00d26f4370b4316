"""Shop-wide settings: unused-tool check window, part report limit, shop time zone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.process import repository
from services.process.schemas import SettingsRead, SettingsUpdate
from shared.events import SettingsUpdated
from shared.uow import UnitOfWork

if TYPE_CHECKING:
    from shared.runtime import ServiceRuntime

DEFAULTS: dict[str, Any] = {"check_unused_tools_parts": 5, "part_report_limit": 100, "time_zone": "UTC"}


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


async def shop_zone(session: AsyncSession) -> ZoneInfo:
    return ZoneInfo((await get_settings(session)).time_zone)


async def update_settings(uow: UnitOfWork, changes: SettingsUpdate) -> SettingsRead:
    for key, value in changes.model_dump(exclude_unset=True).items():
        await repository.put_setting(uow.session, key, value)
    current = await get_settings(uow.session)
    uow.emit(SettingsUpdated(**current.model_dump()))
    return current


def settings_event(current: SettingsRead) -> SettingsUpdated:
    return SettingsUpdated(**current.model_dump())
