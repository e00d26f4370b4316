"""Rows -> API models."""

from __future__ import annotations

from collections.abc import Sequence

from services.collector.models import Alarm, Interlock, MachineState, Source
from services.collector.schemas import AlarmRead, InterlockRead, MachineStateRead, SourceRead, SourceStatus
from shared.db import to_unix


def source_read(source: Source) -> SourceRead:
    return SourceRead(
        id=source.id, machine_id=source.machine_id, kind=source.kind, address=source.address,  # type: ignore[arg-type]
        device=source.device, mapping=source.mapping or {}, enabled=source.enabled, position=source.position,
        status=SourceStatus(connected=source.connected, last_data=to_unix(source.last_data_at),
                            last_error=source.last_error, last_error_at=to_unix(source.last_error_at)))


def alarm_read(alarm: Alarm) -> AlarmRead:
    return AlarmRead(id=alarm.id, machine_id=alarm.machine_id, source_id=alarm.source_id, item=alarm.item,
                     level=alarm.level, native_code=alarm.native_code, severity=alarm.severity, message=alarm.message,
                     raised_at=to_unix(alarm.raised_at) or 0.0, cleared_at=to_unix(alarm.cleared_at),
                     active=alarm.cleared_at is None)


def state_read(machine_id: int, state: MachineState | None, alarms: Sequence[Alarm]) -> MachineStateRead:
    return MachineStateRead(
        machine_id=machine_id, execution=state.execution if state else None, program=state.program if state else None,
        part_count=state.part_count if state else None, tool=state.tool if state else None,
        variables=(state.variables or {}) if state else {}, active_alarms=[alarm_read(a) for a in alarms],
        last_seen=to_unix(state.last_seen) if state else None)


def interlock_read(machine_id: int, interlock: Interlock | None) -> InterlockRead:
    if interlock is None:
        return InterlockRead(machine_id=machine_id, blocked=False, item_ids=[], changed_at=None)
    return InterlockRead(machine_id=machine_id, blocked=interlock.blocked, item_ids=list(interlock.item_ids or []),
                         changed_at=to_unix(interlock.changed_at))
