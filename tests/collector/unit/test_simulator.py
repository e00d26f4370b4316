"""The simulator is deterministic for a seed and produces a plausible machine's telemetry."""

from __future__ import annotations

from collections import Counter

from services.collector.sources.simulator import SimulatedMachine, Simulator


def make(seed: int) -> Simulator:
    machines = [SimulatedMachine(1, ["O1.nc", "O2.nc"], cycle_seconds=60, parts_per_program=5, alarm_probability=0.1),
                SimulatedMachine(2, ["O9.nc"], cycle_seconds=45)]
    return Simulator(machines, seed=seed, start=1000.0)


def test_same_seed_same_events() -> None:
    a, b = make(7).advance(1000.0 + 3600), make(7).advance(1000.0 + 3600)
    assert [(e.machine_id, e.sequence, e.payload) for e in a] == [(e.machine_id, e.sequence, e.payload) for e in b]
    assert [e.payload for e in make(8).advance(4600.0)] != [e.payload for e in a]


def test_advancing_in_steps_equals_advancing_at_once() -> None:
    whole = make(3).advance(1000.0 + 1800)
    stepped = make(3)
    parts = [e for t in range(1010, 2801, 10) for e in stepped.advance(float(t))]
    assert sorted((e.machine_id, e.sequence) for e in parts) == sorted((e.machine_id, e.sequence) for e in whole)


def test_nothing_is_reported_before_it_happens() -> None:
    simulator = make(5)
    for now in (1030.0, 1100.0, 1500.0):
        assert all(e.payload.timestamp <= now for e in simulator.advance(now))


def test_machine_cycles_programs_tools_parts_and_alarms() -> None:
    events = make(1).advance(1000.0 + 8 * 3600)
    kinds = Counter(e.payload.type for e in events if e.machine_id == 1)
    assert kinds["telemetry.part_completed"] > 100
    assert kinds["telemetry.tool_changed"] == 4 * kinds["telemetry.part_completed"]
    assert kinds["telemetry.program_loaded"] >= kinds["telemetry.part_completed"] // 5
    assert kinds["telemetry.alarm_raised"] >= 1
    assert kinds["telemetry.alarm_raised"] - kinds["telemetry.alarm_cleared"] in (0, 1)
    parts = [e.payload for e in events if e.machine_id == 1 and e.payload.type == "telemetry.part_completed"]
    counts = [p.part_count for p in parts]
    assert counts == list(range(1, len(counts) + 1))
    sequences = [e.sequence for e in events if e.machine_id == 1]
    assert sorted(sequences) == list(range(1, len(sequences) + 1))
