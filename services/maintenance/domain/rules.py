"""Pure rules of items and entries (no I/O): when an item counts, stock, thresholds, schedule inputs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time

from services.maintenance.domain.schedule import ItemState, ScheduleSpec


@dataclass(frozen=True, slots=True)
class MachineFacts:
    archived: bool
    active_process_id: int | None


def is_enabled(*, machine: MachineFacts | None, has_machine: bool, process_id: int | None,
               active_processes: frozenset[int], needed_when_archived: bool,
               needed_when_not_archived: bool) -> bool:
    """Whether an item can come due at all right now.

    `process_id`: only while that process is active on some machine. The archived flags
    apply only to items on a machine (directly or through their equipment); a machine the
    read model does not know yet counts as not archived.
    """
    if process_id is not None and process_id not in active_processes:
        return False
    if not has_machine:
        return True
    archived = machine.archived if machine else False
    return needed_when_archived if archived else needed_when_not_archived


def parse_time_of_day(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def schedule_spec(fields: Mapping[str, object], *, has_machine: bool) -> ScheduleSpec:
    """The engine's view of an item's (or a preview request's) scheduling fields."""
    return ScheduleSpec(
        schedule_mode=int(fields.get("schedule_mode", 0)),  # type: ignore[call-overload]
        timer_interval=float(fields.get("timer_interval", 0.0)),  # type: ignore[arg-type]
        warning_interval=float(fields.get("warning_interval", 0.0)),  # type: ignore[arg-type]
        cycle_timer=float(fields.get("cycle_timer", 0.0)),  # type: ignore[arg-type]
        frequency=str(fields.get("frequency", "D")),
        interval=int(fields.get("interval", 1)),  # type: ignore[call-overload]
        indices=tuple(fields.get("indices") or ()),  # type: ignore[arg-type]
        months=int(fields.get("months", 4095)),  # type: ignore[call-overload]
        weekdays=int(fields.get("weekdays", 127)),  # type: ignore[call-overload]
        time_of_day=parse_time_of_day(str(fields.get("time_of_day", "00:00"))),
        has_machine=has_machine,
    )


def item_state(*, last_done: datetime | None, initial_entry: datetime | None, created_at: datetime,
               trigger_alarm_at: datetime | None, enabled: bool) -> ItemState:
    """`initial_entry` stands in for the last completion until an entry exists (seed)."""
    return ItemState(last_done=last_done or initial_entry, created_at=created_at,
                     trigger_alarm_at=trigger_alarm_at, enabled=enabled)


@dataclass(frozen=True, slots=True)
class Shortage:
    inventory_id: int
    needed: int
    on_hand: int | None  # None: no such inventory item


def stock_shortages(needed: Mapping[int, int], on_hand: Mapping[int, int]) -> list[Shortage]:
    """What an entry cannot take from inventory. Quantity 0 means "must be present" (on hand
    at least one), not consumed."""
    short = []
    for inventory_id, quantity in sorted(needed.items()):
        have = on_hand.get(inventory_id)
        if have is None or have < max(quantity, 1):
            short.append(Shortage(inventory_id, quantity, have))
    return short


def consumption(needed: Mapping[int, int]) -> dict[int, int]:
    """How much of each inventory item an entry takes (present-only items take nothing)."""
    return {inventory_id: qty for inventory_id, qty in needed.items() if qty > 0}


def threshold_breach(value: float, lower: float | None, upper: float | None) -> str | None:
    """'below' / 'above' when a measurement is outside its thresholds (bounds themselves are fine)."""
    if lower is not None and value < lower:
        return "below"
    if upper is not None and value > upper:
        return "above"
    return None
