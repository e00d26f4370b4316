"""Simulated machines: programs, cycles, tool changes and occasional alarms, deterministic for a seed.

`Simulator.advance(now)` returns every payload the simulated machines produced up to `now`,
each with a stable position (machine, sequence) so event ids can be derived from it: the
same seed and clock give the same events, and a restart does not invent new ones.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from shared.events import (
    AlarmCleared,
    AlarmRaised,
    ExecutionChanged,
    PartCompleted,
    Payload,
    ProgramLoaded,
    ToolChanged,
)

ALARMS = (
    ("1010", "SPINDLE OVERLOAD"),
    ("2042", "LOW COOLANT LEVEL"),
    ("3001", "WAY LUBE LOW PRESSURE"),
    ("4417", "AIR PRESSURE LOW"),
)


@dataclass
class SimulatedMachine:
    machine_id: int
    programs: list[str]
    cycle_seconds: float = 90.0
    tools: list[str] = field(default_factory=lambda: ["T1", "T2", "T3", "T4"])
    parts_per_program: int = 25
    alarm_probability: float = 0.02  # per cycle


@dataclass
class _State:
    next_at: float
    sequence: int = 0
    part_count: int = 0
    program_index: int = 0
    parts_on_program: int = 0
    started: bool = False
    alarm: tuple[int, float] | None = None  # (alarm id, clears at)


@dataclass(frozen=True)
class Emitted:
    machine_id: int
    sequence: int
    payload: Payload


class Simulator:
    def __init__(self, machines: list[SimulatedMachine], *, seed: int, start: float) -> None:
        self._machines = machines
        self._random = {m.machine_id: random.Random(f"{seed}:{m.machine_id}") for m in machines}
        self._state = {m.machine_id: _State(next_at=start) for m in machines}
        self._alarm_ids = 0
        self._ahead: list[Emitted] = []  # generated, but stamped after the last `now`

    def advance(self, now: float) -> list[Emitted]:
        """Everything the machines reported up to `now`, in time order; nothing from the future."""
        for machine in self._machines:
            state = self._state[machine.machine_id]
            while state.next_at <= now:
                self._ahead.extend(self._step(machine, state))
        self._ahead.sort(key=lambda e: (e.payload.timestamp, e.machine_id, e.sequence))  # type: ignore[attr-defined]
        cut = next((i for i, e in enumerate(self._ahead) if e.payload.timestamp > now),  # type: ignore[attr-defined]
                   len(self._ahead))
        out, self._ahead = self._ahead[:cut], self._ahead[cut:]
        return out

    @staticmethod
    def _emit(machine: SimulatedMachine, state: _State, *payloads: Payload) -> list[Emitted]:
        emitted = []
        for payload in payloads:
            state.sequence += 1
            emitted.append(Emitted(machine.machine_id, state.sequence, payload))
        return emitted

    def _step(self, machine: SimulatedMachine, state: _State) -> list[Emitted]:
        rng, at, mid = self._random[machine.machine_id], state.next_at, machine.machine_id
        events: list[Emitted] = []
        if state.alarm and state.alarm[1] <= at:
            events += self._emit(machine, state, AlarmCleared(machine_id=mid, timestamp=at, alarm_id=state.alarm[0]),
                                 ExecutionChanged(machine_id=mid, timestamp=at, execution="ACTIVE"))
            state.alarm = None
        if not state.started or state.parts_on_program >= machine.parts_per_program:
            if state.started:
                state.program_index = (state.program_index + 1) % len(machine.programs)
            state.started, state.parts_on_program = True, 0
            program = machine.programs[state.program_index]
            events += self._emit(machine, state, ProgramLoaded(machine_id=mid, timestamp=at, program=program),
                                 ExecutionChanged(machine_id=mid, timestamp=at, execution="ACTIVE"))
        # One cycle: each tool in turn, then the part.
        cycle = machine.cycle_seconds * rng.uniform(0.95, 1.1)
        for i, tool in enumerate(machine.tools):
            events += self._emit(machine, state, ToolChanged(
                machine_id=mid, timestamp=at + cycle * i / (len(machine.tools) + 1), tool=tool))
        state.part_count += 1
        state.parts_on_program += 1
        events += self._emit(machine, state, PartCompleted(
            machine_id=mid, timestamp=at + cycle, increment=1, part_count=state.part_count,
            program=machine.programs[state.program_index]))
        state.next_at = at + cycle
        if state.alarm is None and rng.random() < machine.alarm_probability:
            self._alarm_ids += 1
            code, message = rng.choice(ALARMS)
            raised = state.next_at + 1
            events += self._emit(machine, state, AlarmRaised(
                machine_id=mid, timestamp=raised, alarm_id=self._alarm_ids, native_code=code, severity="FAULT",
                message=message), ExecutionChanged(machine_id=mid, timestamp=raised, execution="INTERRUPTED"))
            down = rng.uniform(60, 300)
            state.alarm = (self._alarm_ids, raised + down)
            state.next_at = raised + down
        return events
