"""/api/collector/alarms: the alarm history (integer ids, as telemetry.alarm_raised carries them)."""

from __future__ import annotations

from fastapi import APIRouter

from services.collector.api.deps import IdFilter, SessionDep, UnixTime
from services.collector.schemas import AlarmRead
from services.collector.usecases import machines
from shared.auth import Reader
from shared.db import from_unix
from shared.errors import problem_responses

router = APIRouter(prefix="/api/collector/alarms", tags=["collector alarms"])


@router.get("/", responses=problem_responses(400, 401, 403))
async def list_alarms(_: Reader, session: SessionDep, machine_id: IdFilter = None, active: bool | None = None,
                      start: UnixTime = None, end: UnixTime = None) -> dict[str, AlarmRead]:
    return await machines.list_alarms(session, machine_id, active, None if start is None else from_unix(start),
                                      None if end is None else from_unix(end))
