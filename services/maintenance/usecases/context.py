"""What scheduling an item needs besides the item: the shop's zone and the read model."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession

from services.maintenance import repository
from services.maintenance.domain import rules
from services.maintenance.domain.schedule import ItemState, ScheduleSpec
from services.maintenance.models import Item

TIME_ZONE = "time_zone"


async def shop_zone(session: AsyncSession) -> ZoneInfo:
    name = await repository.get_setting(session, TIME_ZONE) or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@dataclass(frozen=True)
class ScheduleContext:
    zone: ZoneInfo
    machines: dict[int, rules.MachineFacts]
    active_processes: frozenset[int]
    equipment_machine: dict[int, int | None]

    def machine_of(self, item: Item) -> int | None:
        """The item's machine, directly or through its equipment."""
        if item.machine_id is not None:
            return item.machine_id
        if item.equipment_id is not None:
            return self.equipment_machine.get(item.equipment_id)
        return None

    def spec(self, item: Item) -> ScheduleSpec:
        # An ORM item or a plain row of repository.SCHEDULE_COLUMNS.
        fields = item._mapping if hasattr(item, "_mapping") else item.__dict__
        return rules.schedule_spec(fields, has_machine=self.machine_of(item) is not None)

    def state(self, item: Item) -> ItemState:
        machine_id = self.machine_of(item)
        enabled = rules.is_enabled(
            machine=self.machines.get(machine_id) if machine_id is not None else None,
            has_machine=machine_id is not None, process_id=item.process_id,
            active_processes=self.active_processes, needed_when_archived=item.needed_when_archived,
            needed_when_not_archived=item.needed_when_not_archived)
        return rules.item_state(last_done=item.last_done, initial_entry=item.initial_entry,
                                created_at=item.created_at, trigger_alarm_at=item.trigger_alarm_at,
                                enabled=enabled)

    def run_time_due(self, item: Item) -> datetime | None:
        """Mode 1 on a machine: when the accumulated run time reached the interval, if it did."""
        if item.schedule_mode == 1 and self.machine_of(item) is not None:
            return item.run_time_due_at
        return None


async def load(session: AsyncSession) -> ScheduleContext:
    machines = await repository.known_machines(session)
    equipment = await repository.list_equipment(session)
    return ScheduleContext(
        zone=await shop_zone(session),
        machines={m.id: rules.MachineFacts(m.archived, m.active_process_id) for m in machines.values()},
        active_processes=frozenset(m.active_process_id for m in machines.values() if m.active_process_id),
        equipment_machine={e.id: e.machine_id for e in equipment},
    )
