"""Entries: each one completes an occurrence of its item (timers, alarm trigger, stock,
thresholds, interlock) in the same transaction as the entry itself."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.maintenance import repository
from services.maintenance.domain import rules
from services.maintenance.models import Entry, Item
from services.maintenance.schemas import EntryCreate, EntryRead, EntryUpdate
from services.maintenance.usecases import alerts, context
from shared.db import from_unix
from shared.errors import Conflict, InvalidInput, NotFound
from shared.events import EntryRecorded, InterlockChanged, ThresholdExceeded
from shared.uow import UnitOfWork


def entry_to_read(entry: Entry) -> EntryRead:
    return EntryRead(id=entry.id, item_id=entry.item_id, time=entry.time.timestamp(), user=entry.user,
                     success=entry.success, value=entry.value, duration=entry.duration, notes=entry.notes)


def _check_kind(item: Item, success: bool | None, value: float | None, *, creating: bool) -> None:
    if item.item_type == "measurement":
        if success is not None:
            raise InvalidInput("success", "measurement entries have a value, not success")
        if creating and value is None:
            raise InvalidInput("value", "a measurement entry needs a value")
    elif value is not None:
        raise InvalidInput("value", "task entries have success, not a value")


async def _consume_inventory(uow: UnitOfWork, item: Item) -> None:
    needed = {int(k): v for k, v in (item.inventory_items or {}).items()}
    stock = await repository.inventory_by_id(uow.session, needed)
    short = rules.stock_shortages(needed, {i: s.quantity for i, s in stock.items()})
    if short:
        first = short[0]
        name = stock[first.inventory_id].name if first.inventory_id in stock else "(deleted)"
        raise Conflict(f"not enough of inventory item {first.inventory_id} ({name}): needs "
                       f"{max(first.needed, 1)}, {first.on_hand or 0} on hand",
                       inventory_id=first.inventory_id)
    for inventory_id, quantity in rules.consumption(needed).items():
        stock[inventory_id].quantity -= quantity


async def lift_interlock(uow: UnitOfWork, item: Item, machine_id: int | None) -> None:
    """The item no longer blocks its machine; publish what still does (if anything)."""
    if not item.blocking:
        return
    item.blocking = False
    if machine_id is None:
        return
    still = [i.id for i in await repository.items_on_machine(uow.session, machine_id) if i.blocking and i.id != item.id]
    uow.emit(InterlockChanged(machine_id=machine_id, blocked=bool(still), item_ids=still))


async def _complete(uow: UnitOfWork, item: Item, entry: Entry, machine_id: int | None) -> None:
    await _consume_inventory(uow, item)
    if item.last_done is None or entry.time >= item.last_done:
        item.last_done = entry.time
    item.cycle_timer = 0.0
    item.run_time_due_at = None
    item.trigger_alarm_id = None
    item.trigger_alarm_at = None
    item.warned_for = item.due_raised_for = None
    await lift_interlock(uow, item, machine_id)


async def _check_threshold(uow: UnitOfWork, item: Item, entry: Entry, machine_id: int | None, now: datetime) -> None:
    assert entry.value is not None
    side = rules.threshold_breach(entry.value, item.threshold_lower, item.threshold_upper)
    if side is None:
        return
    limit = item.threshold_lower if side == "below" else item.threshold_upper
    message = f"{item.name}: {entry.value:g} {item.unit} is {side} the threshold {limit:g}".replace("  ", " ")
    await alerts.raise_alert(uow, item, kind="threshold", message=message, now=now, machine_id=machine_id,
                             channel_id=item.threshold_notify_id,
                             extra={"value": entry.value, "entry_id": entry.id})
    uow.emit(ThresholdExceeded(item_id=item.id, entry_id=entry.id, machine_id=machine_id, value=entry.value,
                               threshold_lower=item.threshold_lower, threshold_upper=item.threshold_upper))


async def create_entry(uow: UnitOfWork, data: EntryCreate, *, user: str, now: datetime) -> EntryRead:
    try:
        item = await repository.get_item_or_404(uow.session, data.item_id)
    except NotFound:
        raise InvalidInput("item_id", f"there is no maintenance item {data.item_id}") from None
    _check_kind(item, data.success, data.value, creating=True)
    success = None if item.item_type == "measurement" else data.success is not False  # tasks default to done
    entry = Entry(item_id=item.id, time=from_unix(data.time) if data.time is not None else now, user=user,
                  success=success, value=data.value,
                  duration=data.duration, notes=data.notes)
    uow.session.add(entry)
    await uow.flush()
    machine_id = (await context.load(uow.session)).machine_of(item)
    if entry.success is not False:  # a failed task is recorded but completes nothing
        await _complete(uow, item, entry, machine_id)
    if entry.value is not None:
        await _check_threshold(uow, item, entry, machine_id, now)
    await uow.flush()
    uow.emit(EntryRecorded(entry_id=entry.id, item_id=item.id, machine_id=machine_id,
                           time=entry.time.timestamp(), success=entry.success, value=entry.value))
    return entry_to_read(entry)


async def list_entries(session: AsyncSession, *, item_id: int | None, limit: int | None,
                       offset: int) -> dict[str, EntryRead]:
    entries = await repository.list_entries(session, item_id=item_id, limit=limit, offset=offset)
    return {str(e.id): entry_to_read(e) for e in entries}


async def get_entry(session: AsyncSession, entry_id: int) -> EntryRead:
    return entry_to_read(await repository.get_entry_or_404(session, entry_id))


async def _recompute_last_done(uow: UnitOfWork, item_id: int) -> None:
    item = await repository.get_item_or_404(uow.session, item_id)
    last = await repository.last_completion(uow.session, item_id)
    item.last_done = last.time if last else None


async def update_entry(uow: UnitOfWork, entry_id: int, changes: EntryUpdate) -> EntryRead:
    """Corrections only (time, result, duration, notes): stock and alerts are not replayed."""
    entry = await repository.get_entry_or_404(uow.session, entry_id)
    item = await repository.get_item_or_404(uow.session, entry.item_id)
    values = changes.model_dump(exclude_unset=True)
    for name in ("time", "notes"):
        if name in values and values[name] is None:
            raise InvalidInput(name, "cannot be null")
    _check_kind(item, values.get("success"), values.get("value"), creating=False)
    if item.item_type == "measurement" and "value" in values and values["value"] is None:
        raise InvalidInput("value", "cannot be null")
    if "time" in values:
        values["time"] = from_unix(values["time"])
    for key, value in values.items():
        setattr(entry, key, value)
    await uow.flush()
    await _recompute_last_done(uow, item.id)
    return entry_to_read(entry)


async def delete_entry(uow: UnitOfWork, entry_id: int) -> None:
    entry = await repository.get_entry_or_404(uow.session, entry_id)
    item_id = entry.item_id
    await uow.session.delete(entry)
    await uow.flush()
    await _recompute_last_done(uow, item_id)
