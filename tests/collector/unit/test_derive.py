"""Derivation rules on small data, then on the real SHDR recordings (events the recording holds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.collector.domain.derive import ClearAlarm, MachineView, Output, RaiseAlarm, derive
from services.collector.domain.mapping import Mapping
from services.collector.domain.observations import Condition, Observation
from services.collector.domain.shdr import ShdrError, ShdrParser
from shared.events import ExecutionChanged, PartCompleted, ProgramLoaded, ToolChanged, VariablesChanged
from tests.collector.fixtures import AGIE, DMTCD, NIST_TRUNCATED, OKUMA, fixture


def obs(key: str, value: str | None, t: float = 1.0) -> Observation:
    return Observation(t, key, value, position=str(t))


def items(outputs: list[Output]) -> list[object]:
    return [o.item for o in outputs]


def test_part_count_rises_resets_and_unavailable() -> None:
    view, mapping = MachineView(), Mapping()
    counts = [("10", 1), ("11", 2), ("14", 3), ("0", 4), ("1", 5), (None, 6), ("5", 7), ("6", 8)]
    got = items(derive(view, mapping, 7, [obs("program", "O1")] + [obs("PartCountAct", v, t) for v, t in counts]))
    parts = [p for p in got if isinstance(p, PartCompleted)]
    assert [(p.increment, p.part_count, p.timestamp) for p in parts] == [(1, 11, 2), (3, 14, 3), (1, 1, 5), (1, 6, 8)]
    assert all(p.program == "O1" and p.machine_id == 7 for p in parts)


def test_availability_announcement_rebaselines() -> None:
    view = MachineView(part_count=1)
    got = items(derive(view, Mapping(), 1, [obs("avail", "AVAILABLE"), obs("ppartcount", "2"), obs("ppartcount", "3")]))
    assert [p.part_count for p in got if isinstance(p, PartCompleted)] == [3]


def test_program_execution_tool_and_variables() -> None:
    view, mapping = MachineView(), Mapping(variables={"macro_500": "500"})
    got = items(derive(view, mapping, 1, [
        obs("program", "O1"), obs("program", "O1"), obs("program", None), obs("program", "O2"),
        obs("execution", "ACTIVE"), obs("execution", "ACTIVE"), obs("execution", None),
        obs("Tool_number", "5"), obs("Tool_number", ""), obs("Tool_number", "5"), obs("Tool_number", "6"),
        obs("macro_500", "1.5"), obs("macro_500", "1.5"), obs("macro_500", "2")]))
    assert [g.program for g in got if isinstance(g, ProgramLoaded)] == ["O1", "O2"]
    assert [g.execution for g in got if isinstance(g, ExecutionChanged)] == ["ACTIVE", "UNAVAILABLE"]
    assert [g.tool for g in got if isinstance(g, ToolChanged)] == ["5", "5", "6"]
    assert [g.variables for g in got if isinstance(g, VariablesChanged)] == [{"500": 1.5}, {"500": 2}]


def cond(key: str, level: str, code: str = "", message: str = "", t: float = 1.0) -> Observation:
    return Observation(t, key, condition=Condition(level, code, "", "", message), position=str(t))


def test_conditions_raise_and_clear() -> None:
    view = MachineView()
    got = items(derive(view, Mapping(), 1, [
        cond("system", "FAULT", "1", "A"), cond("system", "FAULT", "1", "A"), cond("system", "WARNING", "2", "B"),
        cond("system", "NORMAL", "1"), cond("logic", "FAULT", "9", "C"), cond("system", "NORMAL"),
        cond("logic", "UNAVAILABLE")]))
    assert [(type(g).__name__, g.key) for g in got if isinstance(g, RaiseAlarm | ClearAlarm)] == [
        ("RaiseAlarm", "system|1"), ("RaiseAlarm", "system|2"), ("ClearAlarm", "system|1"),
        ("RaiseAlarm", "logic|9"), ("ClearAlarm", "system|2"), ("ClearAlarm", "logic|9")]
    assert view.alarms == {}
    # A mapping listing conditions ignores the others.
    assert derive(MachineView(), Mapping(conditions=["logic"]), 1, [cond("system", "FAULT", "1")]) == []


def test_outputs_carry_distinct_positions() -> None:
    outputs = derive(MachineView(), Mapping(), 1, [obs("program", "O1"), obs("execution", "ACTIVE")])
    assert len({o.position for o in outputs}) == 2


def replay(path: Path) -> list[object]:
    parser, view, out = ShdrParser(), MachineView(), []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines):
            try:
                out += derive(view, Mapping(), 1, parser.feed(line, str(number)).observations)
            except ShdrError:
                continue
    return items(out)


def test_okuma_recording_four_parts_four_programs() -> None:
    got = replay(fixture(OKUMA))
    # PROVENANCE: 4 sessions, each one part (0->1, 0->1, 2->3, 0->1) on its own program.
    assert [(p.increment, p.part_count, p.program) for p in got if isinstance(p, PartCompleted)] == [
        (1, 1, "IMTS-2022-2-HOB.MIN"), (1, 1, "IMTS-2022-1E-mm.MIN"), (1, 3, "IMTS-2022-4B-mm.MIN"),
        (1, 1, "IMTS-2022-3-TRAN.MIN")]
    assert [p.program for p in got if isinstance(p, ProgramLoaded)] == [
        "IMTS-2022-2-HOB.MIN", "IMTS-2022-1E-mm.MIN", "IMTS-2022-4B-mm.MIN", "IMTS-2022-3-TRAN.MIN"]
    assert {e.execution for e in got if isinstance(e, ExecutionChanged)} >= {"READY", "ACTIVE", "PROGRAM_COMPLETED"}
    assert not [a for a in got if isinstance(a, RaiseAlarm)]  # its 40 conditions are all NORMAL


def test_agie_recording_two_faults_raised_and_cleared() -> None:
    got = [g for g in replay(fixture(AGIE)) if isinstance(g, RaiseAlarm | ClearAlarm)]
    assert [(type(g).__name__, g.native_code) for g in got] == [
        ("RaiseAlarm", "454A"), ("ClearAlarm", "454A"), ("RaiseAlarm", "3AA"), ("ClearAlarm", "3AA")]
    assert [g.message for g in got if isinstance(g, RaiseAlarm)] == ["Limit switch Y+", "Key non-functional"]


def test_dmtcd_recording_warning_tools_no_part() -> None:
    got = replay(fixture(DMTCD))
    assert [(type(g).__name__, g.level if isinstance(g, RaiseAlarm) else "", g.native_code) for g in got
            if isinstance(g, RaiseAlarm | ClearAlarm)] == [("RaiseAlarm", "WARNING", "136"), ("ClearAlarm", "", "136")]
    assert [t.tool for t in got if isinstance(t, ToolChanged)] == ["5", "6", "7"]
    assert not [p for p in got if isinstance(p, PartCompleted)]  # PartCountAct stays 13


@pytest.mark.parametrize("name", [NIST_TRUNCATED])
def test_nist_recording_four_feed_override_faults(name: str) -> None:
    got = [g for g in replay(fixture(name)) if isinstance(g, RaiseAlarm | ClearAlarm)]
    assert [type(g).__name__ for g in got] == ["RaiseAlarm", "ClearAlarm"] * 4
    assert {g.native_code for g in got} == {"81000046"}
