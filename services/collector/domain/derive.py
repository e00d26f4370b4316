"""Observations -> telemetry: the rules, pure (state passed in and updated, no I/O, no clock).

- a part count that rises is a part (the increment is the rise); a lower value is a reset
  and UNAVAILABLE loses the baseline: neither is a part, the next value is a new baseline.
  An adapter announcing itself (availability AVAILABLE, sent in every connect snapshot)
  also re-baselines, so counts made while it was away are not attributed to the wrong time.
- program, execution, tool: an event when the value changes (an empty tool is "between tools").
- conditions (and legacy alarms): FAULT / WARNING raise one alarm per (item, native code);
  NORMAL with a code clears that code, NORMAL without a code or UNAVAILABLE clears the item.
- mapped variables: an event when a value changes.
Alarms get their integer ids from storage, so this returns RaiseAlarm / ClearAlarm intents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.collector.domain.mapping import Mapping
from services.collector.domain.observations import Observation
from shared.events import ExecutionChanged, PartCompleted, Payload, ProgramLoaded, ToolChanged, VariablesChanged


@dataclass
class ActiveAlarm:
    item: str
    native_code: str
    level: str
    message: str


@dataclass
class MachineView:
    """What the collector remembers per machine to derive the next events."""

    part_count: int | None = None
    program: str | None = None
    execution: str | None = None
    tool: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    alarms: dict[str, ActiveAlarm] = field(default_factory=dict)  # alarm key -> active alarm
    last_seen: float | None = None


@dataclass(frozen=True)
class RaiseAlarm:
    key: str
    item: str
    level: str
    native_code: str
    severity: str
    message: str
    timestamp: float


@dataclass(frozen=True)
class ClearAlarm:
    key: str
    native_code: str
    timestamp: float


Derived = Payload | RaiseAlarm | ClearAlarm


@dataclass(frozen=True)
class Output:
    """One derived item and where it came from (for a deterministic event id)."""

    position: str
    item: Derived


def alarm_key(item: str, native_code: str) -> str:
    return f"{item}|{native_code}"


def _number(text: str) -> float | int | str:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def derive(view: MachineView, mapping: Mapping, machine_id: int, observations: list[Observation]) -> list[Output]:
    out: list[Output] = []
    for obs in observations:
        before = len(out)
        for item in _derive_one(view, mapping, machine_id, obs):
            out.append(Output(f"{obs.position}:{obs.key}:{len(out) - before}", item))
        if view.last_seen is None or obs.timestamp > view.last_seen:
            view.last_seen = obs.timestamp
    return out


def _derive_one(view: MachineView, mapping: Mapping, mid: int, obs: Observation) -> list[Derived]:
    if obs.condition is not None:
        if mapping.conditions is not None and obs.key not in mapping.conditions and obs.key not in mapping.alarms:
            return []
        return _condition(view, obs)
    if obs.key in mapping.variables:
        name, value = mapping.variables[obs.key], None if obs.value is None else _number(obs.value)
        if view.variables.get(name, ...) == value:
            return []
        view.variables = {**view.variables, name: value}
        return [VariablesChanged(machine_id=mid, timestamp=obs.timestamp, variables={name: value})]
    role = mapping.role_of(obs.key)
    ts = obs.timestamp
    if role == "part_count":
        return _part_count(view, mid, obs)
    if role == "availability":
        if obs.value is not None and obs.value.upper() == "AVAILABLE":
            view.part_count = None
        return []
    if role == "program":
        if obs.value is None or (obs.value or None) == view.program:
            return []
        view.program = obs.value or None
        return [ProgramLoaded(machine_id=mid, timestamp=ts, program=view.program)]
    if role == "execution":
        execution = obs.value.upper() if obs.value else "UNAVAILABLE"
        if execution == view.execution:
            return []
        view.execution = execution
        return [ExecutionChanged(machine_id=mid, timestamp=ts, execution=execution)]
    if role == "tool":
        if obs.value is None:
            return []
        tool = obs.value or None
        if tool == view.tool:
            return []
        view.tool = tool
        return [ToolChanged(machine_id=mid, timestamp=ts, tool=tool)] if tool else []
    return []


def _part_count(view: MachineView, mid: int, obs: Observation) -> list[Derived]:
    count: int | None = None
    if obs.value is not None:
        try:
            count = int(float(obs.value))
        except ValueError:
            return []  # not a number: ignored, the baseline stays
    previous, view.part_count = view.part_count, count
    if previous is None or count is None or count <= previous:
        return []
    return [PartCompleted(machine_id=mid, timestamp=obs.timestamp, increment=count - previous, part_count=count,
                          program=view.program)]


def _condition(view: MachineView, obs: Observation) -> list[Derived]:
    assert obs.condition is not None
    cond, item, ts = obs.condition, obs.key, obs.timestamp
    if cond.level in ("FAULT", "WARNING"):
        key = alarm_key(item, cond.native_code)
        if key in view.alarms:
            return []
        view.alarms = {**view.alarms, key: ActiveAlarm(item, cond.native_code, cond.level, cond.message)}
        return [RaiseAlarm(key, item, cond.level, cond.native_code, cond.severity, cond.message, ts)]
    # NORMAL with a code clears that code; NORMAL without one, or UNAVAILABLE, clears the item.
    if cond.level == "NORMAL" and cond.native_code:
        keys = [alarm_key(item, cond.native_code)] if alarm_key(item, cond.native_code) in view.alarms else []
    else:
        keys = [k for k, a in view.alarms.items() if a.item == item]
    if not keys:
        return []
    cleared = [ClearAlarm(k, view.alarms[k].native_code, ts) for k in keys]
    view.alarms = {k: a for k, a in view.alarms.items() if k not in keys}
    return list(cleared)
