"""What the maintenance service keeps from other services' events, and what events do to items."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.maintenance import repository
from services.maintenance.models import Item, KnownMachine, KnownProcess
from services.maintenance.usecases.context import TIME_ZONE
from shared.db import from_unix
from shared.events import (
    AlarmRaised,
    MachineDeleted,
    MachineUpserted,
    PartRecorded,
    Payload,
    ProcessChangedOver,
    ProcessDeleted,
    ProcessUpserted,
    SettingsUpdated,
    SyncRequested,
)
from shared.uow import UnitOfWork

if TYPE_CHECKING:
    from collections.abc import Sequence

    from shared.runtime import ServiceRuntime


async def machine_upserted(uow: UnitOfWork, event: MachineUpserted) -> None:
    row = await repository.get_known_machine(uow.session, event.machine_id)
    if row is None:
        row = KnownMachine(id=event.machine_id)
        uow.session.add(row)
    row.name, row.archived = event.name, event.archived
    row.active_process_id, row.blocked = event.active_process_id, event.blocked


async def machine_deleted(uow: UnitOfWork, event: MachineDeleted) -> None:
    await repository.delete_known_machine(uow.session, event.machine_id)


async def process_upserted(uow: UnitOfWork, event: ProcessUpserted) -> None:
    row = await repository.get_known_process(uow.session, event.process_id)
    if row is None:
        row = KnownProcess(id=event.process_id, machine_id=event.machine_id)
        uow.session.add(row)
    row.machine_id, row.name = event.machine_id, event.name
    row.time_per_cycle, row.parts_per_cycle = event.time_per_cycle, event.parts_per_cycle


async def process_deleted(uow: UnitOfWork, event: ProcessDeleted) -> None:
    await repository.delete_known_process(uow.session, event.process_id)


async def changed_over(uow: UnitOfWork, event: ProcessChangedOver) -> None:
    row = await repository.get_known_machine(uow.session, event.machine_id)
    if row is None:  # the machine.upserted that follows fills in the rest
        row = KnownMachine(id=event.machine_id)
        uow.session.add(row)
    row.active_process_id = event.to_process_id


async def settings_updated(uow: UnitOfWork, event: SettingsUpdated) -> None:
    await repository.put_setting(uow.session, TIME_ZONE, event.time_zone)


# Memoised for the transaction: a consumer batch holds many parts of a few machines, and a
# query per part would also flush the previous part's timer update (autoflush).
_RUN_TIME_ITEMS = "taktline.run_time_items"


async def prepare_batch(uow: UnitOfWork, events: Sequence[Payload]) -> None:
    """Before a consumer batch: the run-time items of every machine it has parts of, in one
    statement (not one per machine, each flushing the timer updates before it)."""
    memo: dict[int, Sequence[Item]] = uow.session.info.setdefault(_RUN_TIME_ITEMS, {})
    ids = sorted({event.machine_id for event in events if isinstance(event, PartRecorded)} - memo.keys())
    if ids:
        memo.update(await repository.items_on_machines(uow.session, ids, mode=1))


async def part_recorded(uow: UnitOfWork, event: PartRecorded) -> None:
    """Run-time items on the machine gain the process's cycle time for each cycle.

    An item tied to a process only counts that process's run time. The moment the timer
    reaches `timer_interval` is kept: the engine cannot know it from the timer alone."""
    per_cycle = event.time_per_cycle
    if per_cycle is None and event.process_id is not None:
        process = await repository.get_known_process(uow.session, event.process_id)
        per_cycle = process.time_per_cycle if process else None
    if not per_cycle or per_cycle <= 0:
        return
    minutes = per_cycle * max(event.cycles, 0)
    memo: dict[int, Sequence[Item]] = uow.session.info.setdefault(_RUN_TIME_ITEMS, {})
    if event.machine_id not in memo:
        memo[event.machine_id] = await repository.items_on_machine(uow.session, event.machine_id, mode=1)
    for item in memo[event.machine_id]:
        if item.process_id is not None and item.process_id != event.process_id:
            continue
        item.cycle_timer = (item.cycle_timer or 0.0) + minutes
        if (item.timer_interval > 0 and item.run_time_due_at is None
                and item.cycle_timer >= item.timer_interval * 60):
            item.run_time_due_at = from_unix(event.finished)


async def alarm_raised(uow: UnitOfWork, event: AlarmRaised) -> None:
    """Items on the machine (or its equipment) listing the alarm's message come due at its time.

    An item already triggered keeps its first alarm until an entry resets it."""
    if not event.message:
        return
    for item in await repository.items_on_machine(uow.session, event.machine_id):
        if event.message in (item.trigger_alarms or []) and item.trigger_alarm_id is None:
            item.trigger_alarm_id = event.alarm_id
            item.trigger_alarm_at = from_unix(event.timestamp)


async def request_sync_if_empty(runtime: ServiceRuntime) -> None:
    """On start: store the default zone once; an empty read model asks the process service to
    republish (through the outbox, so the request survives a broker outage)."""
    async with runtime.uow() as uow:
        if await repository.get_setting(uow.session, TIME_ZONE) is None:
            await repository.put_setting(uow.session, TIME_ZONE, runtime.settings.time_zone)
        if await repository.read_model_is_empty(uow.session):
            uow.emit(SyncRequested(requester=runtime.name, domains=["machine", "process", "settings"]))
        await uow.commit()
