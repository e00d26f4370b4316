"""Event subscriptions of the maintenance service: each handler is one use-case call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from services.maintenance.usecases import readmodel
from shared.consumer import Handler
from shared.events import (
    AlarmRaised,
    Envelope,
    MachineDeleted,
    MachineUpserted,
    PartRecorded,
    Payload,
    ProcessChangedOver,
    ProcessDeleted,
    ProcessUpserted,
    SettingsUpdated,
)
from shared.uow import UnitOfWork


def _handler(payload_type: type[Payload], usecase: Callable[[UnitOfWork, Any], Awaitable[None]]) -> Handler:
    async def handle(uow: UnitOfWork, event: Payload, _: Envelope) -> None:
        assert isinstance(event, payload_type)
        await usecase(uow, event)

    handle.__name__ = f"on_{payload_type.type.split('.')[-1]}"
    return handle


prepare_batch = readmodel.prepare_batch

SUBSCRIPTIONS: Mapping[str, Handler] = {
    payload.type: _handler(payload, usecase) for payload, usecase in (
        (MachineUpserted, readmodel.machine_upserted),
        (MachineDeleted, readmodel.machine_deleted),
        (ProcessUpserted, readmodel.process_upserted),
        (ProcessDeleted, readmodel.process_deleted),
        (ProcessChangedOver, readmodel.changed_over),
        (SettingsUpdated, readmodel.settings_updated),
        (PartRecorded, readmodel.part_recorded),
        (AlarmRaised, readmodel.alarm_raised),
    )
}
