"""Every query of the maintenance service. `get_*_or_404` raise NotFound."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.maintenance.models import (
    Alert,
    Channel,
    Delivery,
    Entry,
    Equipment,
    InventoryItem,
    Item,
    KnownMachine,
    KnownProcess,
    ShopSetting,
)
from shared.db import among
from shared.repository import get_or_404
from shared.schemas import INT32_MAX, INT32_MIN


async def get_item_or_404(session: AsyncSession, id: int) -> Item:
    return await get_or_404(session, Item, id, "maintenance item")


async def get_entry_or_404(session: AsyncSession, id: int) -> Entry:
    return await get_or_404(session, Entry, id, "maintenance entry")


async def get_equipment_or_404(session: AsyncSession, id: int) -> Equipment:
    return await get_or_404(session, Equipment, id, "equipment")


async def get_inventory_or_404(session: AsyncSession, id: int) -> InventoryItem:
    return await get_or_404(session, InventoryItem, id, "inventory item")


async def get_channel_or_404(session: AsyncSession, id: int) -> Channel:
    return await get_or_404(session, Channel, id, "notification channel")


async def get_alert_or_404(session: AsyncSession, id: int) -> Alert:
    return await get_or_404(session, Alert, id, "alert")


async def existing_ids(session: AsyncSession, model: type[Any], ids: Iterable[int]) -> set[int]:
    wanted = {i for i in ids if INT32_MIN <= i <= INT32_MAX}
    if not wanted:
        return set()
    return set((await session.execute(select(model.id).where(model.id.in_(wanted)))).scalars())


def _id_filter(column: Any, ids: Sequence[int]) -> Any:
    """`0` stands for "none assigned"."""
    real = [i for i in ids if i != 0]
    clauses = [column.in_(real)] if real else []
    if 0 in ids:
        clauses.append(column.is_(None))
    return or_(*clauses)


async def list_items(session: AsyncSession, *, item_types: Sequence[str] = (), machine_ids: Sequence[int] = (),
                     equipment_ids: Sequence[int] = ()) -> Sequence[Item]:
    query: Select[tuple[Item]] = select(Item).order_by(Item.id)
    if item_types:
        query = query.where(Item.item_type.in_(item_types))
    if machine_ids:
        query = query.where(_id_filter(Item.machine_id, machine_ids))
    if equipment_ids:
        query = query.where(_id_filter(Item.equipment_id, equipment_ids))
    return (await session.execute(query)).scalars().all()


# What scheduling needs of an item: read as plain rows, since the schedule of every item in the
# shop is one request and ORM objects for ten thousand rows cost more than the schedule itself.
SCHEDULE_COLUMNS = (
    Item.id, Item.machine_id, Item.equipment_id, Item.process_id, Item.schedule_mode, Item.timer_interval,
    Item.warning_interval, Item.cycle_timer, Item.frequency, Item.interval, Item.indices, Item.months,
    Item.weekdays, Item.time_of_day, Item.initial_entry, Item.created_at, Item.last_done, Item.trigger_alarm_at,
    Item.run_time_due_at, Item.needed_when_archived, Item.needed_when_not_archived,
)


async def schedule_rows(session: AsyncSession) -> Sequence[Any]:
    return (await session.execute(select(*SCHEDULE_COLUMNS).order_by(Item.id))).all()


async def items_on_machine(session: AsyncSession, machine_id: int, *, mode: int | None = None) -> Sequence[Item]:
    """Items on a machine directly or through its equipment."""
    return (await items_on_machines(session, [machine_id], mode=mode))[machine_id]


async def items_on_machines(session: AsyncSession, machine_ids: Sequence[int], *,
                            mode: int | None = None) -> dict[int, list[Item]]:
    """items_on_machine for several machines in one statement: machine id -> its items by id."""
    dialect = session.bind.dialect.name
    query = (select(Item, Equipment.machine_id).outerjoin(Equipment, Item.equipment_id == Equipment.id)
             .where(or_(among(Item.machine_id, machine_ids, dialect),
                        among(Equipment.machine_id, machine_ids, dialect))))
    if mode is not None:
        query = query.where(Item.schedule_mode == mode)
    found: dict[int, list[Item]] = {machine_id: [] for machine_id in machine_ids}
    for item, through_equipment in (await session.execute(query.order_by(Item.id))).all():
        for machine_id in {item.machine_id, through_equipment} & found.keys():
            found[machine_id].append(item)
    return found


async def items_referencing(session: AsyncSession, column: str, id: int) -> list[int]:
    query = select(Item.id).where(getattr(Item, column) == id).order_by(Item.id)
    return list((await session.execute(query)).scalars())


async def items_using_inventory(session: AsyncSession, inventory_id: int) -> list[int]:
    rows = await session.execute(select(Item.id, Item.inventory_items).order_by(Item.id))
    return [item_id for item_id, used in rows if str(inventory_id) in (used or {})]


async def list_entries(session: AsyncSession, *, item_id: int | None = None, limit: int | None = None,
                       offset: int = 0) -> Sequence[Entry]:
    query = select(Entry).order_by(Entry.time.desc(), Entry.id.desc()).offset(offset).limit(limit)
    if item_id is not None:
        query = query.where(Entry.item_id == item_id)
    return (await session.execute(query)).scalars().all()


async def last_completion(session: AsyncSession, item_id: int) -> Entry | None:
    """The latest entry that completed an occurrence (a failed task does not)."""
    query = (select(Entry).where(Entry.item_id == item_id, or_(Entry.success.is_(None), Entry.success.is_(True)))
             .order_by(Entry.time.desc(), Entry.id.desc()).limit(1))
    return (await session.execute(query)).scalar_one_or_none()


async def last_entry(session: AsyncSession, item_id: int) -> Entry | None:
    query = select(Entry).where(Entry.item_id == item_id).order_by(Entry.time.desc(), Entry.id.desc()).limit(1)
    return (await session.execute(query)).scalar_one_or_none()


async def average_durations(session: AsyncSession, item_ids: Iterable[int]) -> dict[int, float]:
    ids = {i for i in item_ids if INT32_MIN <= i <= INT32_MAX}
    if not ids:
        return {}
    query = (select(Entry.item_id, func.avg(Entry.duration))
             .where(Entry.item_id.in_(ids), Entry.success.is_(True), Entry.duration.is_not(None))
             .group_by(Entry.item_id))
    return {item_id: float(avg) for item_id, avg in await session.execute(query)}


async def inventory_by_id(session: AsyncSession, ids: Iterable[int]) -> dict[int, InventoryItem]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = await session.execute(select(InventoryItem).where(InventoryItem.id.in_(wanted)))
    return {row.id: row for row in rows.scalars()}


async def list_equipment(session: AsyncSession) -> Sequence[Equipment]:
    return (await session.execute(select(Equipment).order_by(Equipment.id))).scalars().all()


async def list_inventory(session: AsyncSession) -> Sequence[InventoryItem]:
    return (await session.execute(select(InventoryItem).order_by(InventoryItem.id))).scalars().all()


async def list_channels(session: AsyncSession) -> Sequence[Channel]:
    return (await session.execute(select(Channel).order_by(Channel.id))).scalars().all()


async def list_alerts(session: AsyncSession, *, item_ids: Sequence[int] = (), kinds: Sequence[str] = (),
                      dismissed: bool | None = None, limit: int | None = None, offset: int = 0) -> Sequence[Alert]:
    query = select(Alert).order_by(Alert.created_at.desc(), Alert.id.desc()).offset(offset).limit(limit)
    if item_ids:
        query = query.where(Alert.item_id.in_(item_ids))
    if kinds:
        query = query.where(Alert.kind.in_(kinds))
    if dismissed is not None:
        query = query.where(Alert.dismissed.is_(dismissed))
    return (await session.execute(query)).scalars().all()


async def list_deliveries(session: AsyncSession, *, status: Sequence[str] = (), limit: int | None = None,
                          offset: int = 0) -> Sequence[Delivery]:
    query = select(Delivery).order_by(Delivery.id.desc()).offset(offset).limit(limit)
    if status:
        query = query.where(Delivery.status.in_(status))
    return (await session.execute(query)).scalars().all()


# --- read model ----------------------------------------------------------------------------


async def known_machines(session: AsyncSession) -> dict[int, KnownMachine]:
    return {m.id: m for m in (await session.execute(select(KnownMachine))).scalars()}


async def known_processes(session: AsyncSession) -> dict[int, KnownProcess]:
    return {p.id: p for p in (await session.execute(select(KnownProcess))).scalars()}


async def get_known_machine(session: AsyncSession, id: int) -> KnownMachine | None:
    return await session.get(KnownMachine, id)


async def get_known_process(session: AsyncSession, id: int) -> KnownProcess | None:
    return await session.get(KnownProcess, id)


async def delete_known_machine(session: AsyncSession, id: int) -> None:
    await session.execute(delete(KnownMachine).where(KnownMachine.id == id))


async def delete_known_process(session: AsyncSession, id: int) -> None:
    await session.execute(delete(KnownProcess).where(KnownProcess.id == id))


async def read_model_is_empty(session: AsyncSession) -> bool:
    machines = (await session.execute(select(func.count()).select_from(KnownMachine))).scalar_one()
    return machines == 0


async def get_setting(session: AsyncSession, key: str) -> str | None:
    row = await session.get(ShopSetting, key)
    return row.value if row else None


async def put_setting(session: AsyncSession, key: str, value: str) -> None:
    row = await session.get(ShopSetting, key)
    if row is None:
        session.add(ShopSetting(key=key, value=value))
    else:
        row.value = value


async def claim_deliveries(session: AsyncSession, now: Any, lease_until: Any, limit: int) -> list[tuple[int, Any]]:
    """Pending deliveries whose time has come, leased until `lease_until` so no other sender
    (replica) takes them meanwhile; rows locked by another sender are skipped."""
    query = (select(Delivery).where(Delivery.status == "pending", Delivery.next_attempt_at <= now)
             .order_by(Delivery.id).limit(limit).with_for_update(skip_locked=True))
    rows = (await session.execute(query)).scalars().all()
    channels = {c.id: c for c in (await session.execute(
        select(Channel).where(Channel.id.in_({r.channel_id for r in rows})))).scalars()} if rows else {}
    for row in rows:
        row.next_attempt_at = lease_until
    return [(row.id, (channels[row.channel_id].kind, channels[row.channel_id].url, dict(row.payload))) for row in rows]


async def get_delivery(session: AsyncSession, id: int) -> Delivery | None:
    return await session.get(Delivery, id)
