"""/api/settings: shop-wide settings."""

from __future__ import annotations

from fastapi import APIRouter

from services.process.api.deps import SessionDep, UowDep
from services.process.schemas import SettingsRead, SettingsUpdate
from services.process.usecases import settings
from shared.auth import Editor, Reader
from shared.errors import problem_responses

router = APIRouter(prefix="/api/settings", tags=["settings"])


@router.get("", responses=problem_responses(401, 403))
async def get_settings(_: Reader, session: SessionDep) -> SettingsRead:
    return await settings.get_settings(session)


@router.patch("", responses=problem_responses(400, 401, 403))
async def update_settings(_: Editor, uow: UowDep, body: SettingsUpdate) -> SettingsRead:
    return await settings.update_settings(uow, body)
