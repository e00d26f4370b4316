"""Event subscriptions of the process service: each handler is one use-case call."""

from __future__ import annotations

from collections.abc import Mapping

from services.process.usecases import machines, telemetry
from shared.consumer import Handler
from shared.events import (
    Envelope,
    InterlockChanged,
    PartCompleted,
    Payload,
    ProgramLoaded,
    SyncRequested,
    ToolChanged,
    VariablesChanged,
)
from shared.uow import UnitOfWork


async def on_part_completed(uow: UnitOfWork, event: Payload, _: Envelope) -> None:
    assert isinstance(event, PartCompleted)
    await telemetry.part_completed(uow, event)


async def on_program_loaded(uow: UnitOfWork, event: Payload, _: Envelope) -> None:
    assert isinstance(event, ProgramLoaded)
    await telemetry.program_loaded(uow, event)


async def on_tool_changed(uow: UnitOfWork, event: Payload, _: Envelope) -> None:
    assert isinstance(event, ToolChanged)
    await telemetry.tool_changed(uow, event)


async def on_variables_changed(uow: UnitOfWork, event: Payload, _: Envelope) -> None:
    assert isinstance(event, VariablesChanged)
    await telemetry.variables_changed(uow, event)


async def on_interlock_changed(uow: UnitOfWork, event: Payload, _: Envelope) -> None:
    assert isinstance(event, InterlockChanged)
    await machines.apply_interlock(uow, event)


async def on_sync_requested(uow: UnitOfWork, event: Payload, envelope: Envelope) -> None:
    assert isinstance(event, SyncRequested)
    if envelope.producer != "process":
        await machines.republish(uow, event)


prepare_batch = telemetry.prepare_batch

SUBSCRIPTIONS: Mapping[str, Handler] = {
    PartCompleted.type: on_part_completed,
    ProgramLoaded.type: on_program_loaded,
    ToolChanged.type: on_tool_changed,
    VariablesChanged.type: on_variables_changed,
    InterlockChanged.type: on_interlock_changed,
    SyncRequested.type: on_sync_requested,
}
