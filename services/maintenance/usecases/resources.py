"""Supporting resources: equipment, inventory items, notification channels, deliveries."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.maintenance import repository
from services.maintenance.models import Channel, Delivery, Equipment, InventoryItem, KnownMachine
from services.maintenance.schemas_support import (
    ChannelCreate,
    ChannelRead,
    ChannelUpdate,
    DeliveryRead,
    EquipmentCreate,
    EquipmentRead,
    EquipmentUpdate,
    InventoryCreate,
    InventoryRead,
    InventoryUpdate,
)
from shared.db import to_unix
from shared.errors import Conflict, InvalidInput
from shared.uow import UnitOfWork


def _apply(row: Any, changes: dict[str, Any], not_null: tuple[str, ...]) -> None:
    for name in not_null:
        if name in changes and changes[name] is None:
            raise InvalidInput(name, "cannot be null")
    for key, value in changes.items():
        setattr(row, key, value)


def _in_use(what: str, id: int, item_ids: list[int]) -> Conflict:
    return Conflict(f"{what} {id} is used by maintenance items {', '.join(map(str, item_ids))}", items=item_ids)


# --- equipment -----------------------------------------------------------------------------

def equipment_read(row: Equipment) -> EquipmentRead:
    return EquipmentRead(id=row.id, name=row.name, description=row.description, machine_id=row.machine_id)


async def _check_machine(session: AsyncSession, machine_id: int | None) -> None:
    if machine_id is not None and not await repository.existing_ids(session, KnownMachine, [machine_id]):
        raise InvalidInput("machine_id", f"there is no machine {machine_id}")


async def list_equipment(session: AsyncSession) -> dict[str, EquipmentRead]:
    return {str(e.id): equipment_read(e) for e in await repository.list_equipment(session)}


async def get_equipment(session: AsyncSession, id: int) -> EquipmentRead:
    return equipment_read(await repository.get_equipment_or_404(session, id))


async def create_equipment(uow: UnitOfWork, data: EquipmentCreate) -> EquipmentRead:
    await _check_machine(uow.session, data.machine_id)
    row = Equipment(**data.model_dump())
    uow.session.add(row)
    await uow.flush()
    return equipment_read(row)


async def update_equipment(uow: UnitOfWork, id: int, changes: EquipmentUpdate) -> EquipmentRead:
    row = await repository.get_equipment_or_404(uow.session, id)
    values = changes.model_dump(exclude_unset=True)
    await _check_machine(uow.session, values.get("machine_id"))
    _apply(row, values, ("name", "description"))
    await uow.flush()
    return equipment_read(row)


async def delete_equipment(uow: UnitOfWork, id: int) -> None:
    row = await repository.get_equipment_or_404(uow.session, id)
    if used := await repository.items_referencing(uow.session, "equipment_id", id):
        raise _in_use("equipment", id, used)
    await uow.session.delete(row)


# --- inventory -----------------------------------------------------------------------------

def inventory_read(row: InventoryItem) -> InventoryRead:
    return InventoryRead(id=row.id, name=row.name, description=row.description, quantity=row.quantity, unit=row.unit)


async def list_inventory(session: AsyncSession) -> dict[str, InventoryRead]:
    return {str(i.id): inventory_read(i) for i in await repository.list_inventory(session)}


async def get_inventory(session: AsyncSession, id: int) -> InventoryRead:
    return inventory_read(await repository.get_inventory_or_404(session, id))


async def create_inventory(uow: UnitOfWork, data: InventoryCreate) -> InventoryRead:
    row = InventoryItem(**data.model_dump())
    uow.session.add(row)
    await uow.flush()
    return inventory_read(row)


async def update_inventory(uow: UnitOfWork, id: int, changes: InventoryUpdate) -> InventoryRead:
    row = await repository.get_inventory_or_404(uow.session, id)
    _apply(row, changes.model_dump(exclude_unset=True), ("name", "description", "quantity", "unit"))
    await uow.flush()
    return inventory_read(row)


async def delete_inventory(uow: UnitOfWork, id: int) -> None:
    row = await repository.get_inventory_or_404(uow.session, id)
    if used := await repository.items_using_inventory(uow.session, id):
        raise _in_use("inventory item", id, used)
    await uow.session.delete(row)


# --- channels and deliveries ---------------------------------------------------------------

def channel_read(row: Channel) -> ChannelRead:
    return ChannelRead(id=row.id, name=row.name, kind=row.kind, url=row.url)


async def list_channels(session: AsyncSession) -> dict[str, ChannelRead]:
    return {str(c.id): channel_read(c) for c in await repository.list_channels(session)}


async def get_channel(session: AsyncSession, id: int) -> ChannelRead:
    return channel_read(await repository.get_channel_or_404(session, id))


async def create_channel(uow: UnitOfWork, data: ChannelCreate) -> ChannelRead:
    row = Channel(**data.model_dump())
    uow.session.add(row)
    await uow.flush()
    return channel_read(row)


async def update_channel(uow: UnitOfWork, id: int, changes: ChannelUpdate) -> ChannelRead:
    row = await repository.get_channel_or_404(uow.session, id)
    _apply(row, changes.model_dump(exclude_unset=True), ("name", "kind", "url"))
    await uow.flush()
    return channel_read(row)


async def delete_channel(uow: UnitOfWork, id: int) -> None:
    row = await repository.get_channel_or_404(uow.session, id)
    used = sorted(set(await repository.items_referencing(uow.session, "remind_channel_id", id))
                  | set(await repository.items_referencing(uow.session, "threshold_notify_id", id)))
    if used:
        raise _in_use("notification channel", id, used)
    await uow.session.delete(row)


def delivery_read(row: Delivery) -> DeliveryRead:
    return DeliveryRead(id=row.id, channel_id=row.channel_id, payload=dict(row.payload), status=row.status,
                        attempts=row.attempts, next_attempt_at=row.next_attempt_at.timestamp(),
                        last_error=row.last_error, created=row.created_at.timestamp(), sent_at=to_unix(row.sent_at))


async def list_deliveries(session: AsyncSession, *, status: list[str], limit: int | None,
                          offset: int) -> dict[str, DeliveryRead]:
    rows = await repository.list_deliveries(session, status=status, limit=limit, offset=offset)
    return {str(d.id): delivery_read(d) for d in rows}
