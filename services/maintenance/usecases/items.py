"""Maintenance items: CRUD, with every reference checked against what this service knows."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.maintenance import repository
from services.maintenance.models import Channel, Equipment, InventoryItem, Item, KnownMachine, KnownProcess
from services.maintenance.schemas import (
    MEASUREMENT_ONLY,
    EntryRead,
    ItemCreate,
    ItemRead,
    MeasurementRead,
    TaskRead,
)
from services.maintenance.usecases import context
from services.maintenance.usecases.entries import entry_to_read, lift_interlock
from shared.db import from_unix, to_unix
from shared.errors import InvalidInput
from shared.uow import UnitOfWork


def to_read(item: Item) -> ItemRead:
    fields: dict[str, Any] = {name: getattr(item, name) for name in TaskRead.model_fields}
    fields["initial_entry"] = to_unix(item.initial_entry)
    fields["indices"] = list(item.indices or [])
    fields["inventory_items"] = dict(item.inventory_items or {})
    fields["trigger_alarms"] = list(item.trigger_alarms or [])
    if item.item_type == "measurement":
        return MeasurementRead(**fields, **{name: getattr(item, name) for name in MEASUREMENT_ONLY})
    return TaskRead(**fields)


def _columns(data: ItemCreate) -> dict[str, Any]:
    values = data.model_dump()
    values["initial_entry"] = from_unix(data.initial_entry) if data.initial_entry is not None else None
    values["inventory_items"] = {str(k): v for k, v in data.inventory_items.items()}
    return values


async def _check_references(session: AsyncSession, data: ItemCreate) -> None:
    """Unknown ids are a 400 naming the field and the id (machines/processes: the read model)."""
    checks: list[tuple[str, type[Any], str, int | None]] = [
        ("machine_id", KnownMachine, "machine", data.machine_id),
        ("equipment_id", Equipment, "equipment", data.equipment_id),
        ("process_id", KnownProcess, "process", data.process_id),
        ("remind_channel_id", Channel, "channel", data.remind_channel_id),
        ("threshold_notify_id", Channel, "channel", data.threshold_notify_id),
    ]
    for field, model, label, id in checks:
        if id is not None and not await repository.existing_ids(session, model, [id]):
            raise InvalidInput(field, f"there is no {label} {id}")
    missing = set(data.inventory_items) - await repository.existing_ids(session, InventoryItem, data.inventory_items)
    if missing:
        raise InvalidInput("inventory_items", f"no inventory item {', '.join(map(str, sorted(missing)))}",
                           ids=sorted(missing))


def validate(data: dict[str, Any]) -> ItemCreate:
    """A merged (patched) item validated like a new one; errors name the field."""
    try:
        return ItemCreate.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or "body"
        raise InvalidInput(field, error["msg"]) from None


async def list_items(session: AsyncSession, *, item_types: list[str], machine_ids: list[int],
                     equipment_ids: list[int]) -> dict[str, ItemRead]:
    items = await repository.list_items(session, item_types=item_types, machine_ids=machine_ids,
                                        equipment_ids=equipment_ids)
    return {str(item.id): to_read(item) for item in items}


async def get_item(session: AsyncSession, item_id: int) -> ItemRead:
    return to_read(await repository.get_item_or_404(session, item_id))


async def create_item(uow: UnitOfWork, data: ItemCreate) -> ItemRead:
    await _check_references(uow.session, data)
    item = Item(**_columns(data))
    uow.session.add(item)
    await uow.flush()
    return to_read(item)


async def update_item(uow: UnitOfWork, item_id: int, changes: dict[str, Any]) -> ItemRead:
    item = await repository.get_item_or_404(uow.session, item_id)
    current = to_read(item).model_dump(exclude={"id", "trigger_alarm_id"})
    data = validate({**current, **changes, "item_type": item.item_type})  # the type never changes
    await _check_references(uow.session, data)
    for key, value in _columns(data).items():
        setattr(item, key, value)
    await uow.flush()
    return to_read(item)


async def delete_item(uow: UnitOfWork, item_id: int) -> None:
    item = await repository.get_item_or_404(uow.session, item_id)
    if item.blocking:  # a deleted item no longer holds its machine
        await lift_interlock(uow, item, (await context.load(uow.session)).machine_of(item))
    await uow.session.delete(item)


async def item_entries(session: AsyncSession, item_id: int, *, limit: int | None, offset: int) -> dict[str, EntryRead]:
    await repository.get_item_or_404(session, item_id)
    entries = await repository.list_entries(session, item_id=item_id, limit=limit, offset=offset)
    return {str(e.id): entry_to_read(e) for e in entries}


async def average_completion_durations(session: AsyncSession, item_ids: list[int]) -> dict[str, float | None]:
    known = await repository.existing_ids(session, Item, item_ids)
    averages = await repository.average_durations(session, known)
    return {str(i): averages.get(i) for i in sorted(known)}
