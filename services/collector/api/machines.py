"""/api/collector/machines/{id}: latest state, interlock, and the HTTP push of an edge adapter."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path

from services.collector.api.deps import PusherDep, SessionDep
from services.collector.models import INT32_MAX, INT32_MIN
from services.collector.schemas import InterlockRead, MachineStateRead, PushResult
from services.collector.usecases import machines
from shared.auth import MachineRole, Reader
from shared.errors import problem_responses

router = APIRouter(prefix="/api/collector/machines", tags=["collector machines"])
MachineId = Annotated[int, Path(ge=INT32_MIN, le=INT32_MAX)]
Batch = Annotated[list[Any], Body(max_length=5000, description="Observations, each validated on its own.")]


@router.get("/{machine_id}/state", responses=problem_responses(400, 401, 403, 404))
async def get_state(_: Reader, session: SessionDep, machine_id: MachineId) -> MachineStateRead:
    return await machines.get_state(session, machine_id)


@router.get("/{machine_id}/interlock", responses=problem_responses(400, 401, 403))
async def get_interlock(_: Reader, session: SessionDep, machine_id: MachineId) -> InterlockRead:
    return await machines.get_interlock(session, machine_id)


@router.post("/{machine_id}/events", responses=problem_responses(400, 401, 403))
async def push_events(_: MachineRole, pusher: PusherDep, machine_id: MachineId, body: Batch) -> PushResult:
    return await pusher.push(machine_id, body)
