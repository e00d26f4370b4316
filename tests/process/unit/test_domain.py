"""Pure rules of the process service, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from services.process.domain import calendar
from services.process.domain.changeover import check_changeover, current_process
from services.process.domain.efficiency import PartTotals, efficiency
from services.process.domain.parts import PartDecision, counter_rise, cycle_seconds, decide_part, named_variables
from services.process.domain.tools import record_unassigned_use, unused_tool_locations
from shared.errors import Conflict, PreconditionFailed


class TestDecidePart:
    @pytest.mark.parametrize(
        ("increment", "per_cycle", "limit", "expected"),
        [
            (1, 1, 100, PartDecision(cycles=1, count=1)),
            (1, 4, 100, PartDecision(cycles=1, count=4)),
            (3, 2, 100, PartDecision(cycles=3, count=6)),
            (100, 1, 100, PartDecision(cycles=100, count=100)),
            (101, 1, 100, None),  # a counter preset, not production
            (5000, 1, 0, PartDecision(cycles=5000, count=5000)),  # 0 = no limit
            (0, 1, 100, None),
        ],
    )
    def test_decision(self, increment: int, per_cycle: int, limit: int, expected: PartDecision | None) -> None:
        assert decide_part(increment, parts_per_cycle=per_cycle, report_limit=limit) == expected


class TestCounterRise:
    @pytest.mark.parametrize(
        ("before", "after", "rise"),
        [(10, 11, 1), (10.0, 13.0, 3), ("7", "9", 2), (11, 10, 0), (11, 0, 0), (None, 5, 0), (5, "x", 0), (4, 4, 0)],
    )
    def test_rise(self, before: object, after: object, rise: int) -> None:
        assert counter_rise(before, after) == rise


def test_named_variables_map_numbers_to_friendly_names() -> None:
    cv_map = {"Serial number": {"number": 5}, "Lot": {"number": 7}, "Broken": {}}
    assert named_variables(cv_map, {"5": 1234, "6": 1}) == {"Serial number": 1234}


@pytest.mark.parametrize(("previous", "finished", "seconds"), [(None, 10.0, None), (100.0, 160.0, 60.0),
                                                               (100.0, 100.0, None), (100.0, 90.0, None)])
def test_cycle_seconds(previous: float | None, finished: float, seconds: float | None) -> None:
    assert cycle_seconds(previous, finished) == seconds


class TestChangeoverRule:
    def test_current_process_prefers_the_loaded_programs_process(self) -> None:
        assert current_process(active_process_id=1, loaded_program_process_id=2) == 2
        assert current_process(active_process_id=1, loaded_program_process_id=None) == 1

    def test_different_machines_conflict(self) -> None:
        with pytest.raises(Conflict):
            check_changeover(from_machine_id=1, to_machine_id=2, to_id=5, current_process_id=5, planned=True)

    def test_412_unless_running_the_new_process(self) -> None:
        with pytest.raises(PreconditionFailed):
            check_changeover(from_machine_id=1, to_machine_id=1, to_id=5, current_process_id=4, planned=False)
        check_changeover(from_machine_id=1, to_machine_id=1, to_id=5, current_process_id=5, planned=False)

    def test_planned_ignores_what_the_machine_runs(self) -> None:
        check_changeover(from_machine_id=1, to_machine_id=1, to_id=5, current_process_id=None, planned=True)


class TestTools:
    def test_unused_locations_over_the_window(self) -> None:
        recent = [["T1", "T2"], ["T1"], ["T3"]]  # newest first
        assert unused_tool_locations(["T1", "T2", "T3", "T10", None], recent, window=2) == ["T3", "T10"]

    def test_no_evidence_means_nothing_unused(self) -> None:
        assert unused_tool_locations(["T1"], [], window=5) == []
        assert unused_tool_locations(["T1"], [["T2"]], window=0) == []

    def test_unassigned_use_is_recorded_only_for_unfilled_locations(self) -> None:
        assert record_unassigned_use({}, "T9", 50.0, ["T1"]) == {"T9": 50.0}
        assert record_unassigned_use({"T9": 1.0}, "T9", 50.0, ["T1"]) == {"T9": 50.0}
        assert record_unassigned_use({}, "T1", 50.0, ["T1"]) is None


class TestEfficiency:
    def test_expected_over_actual_and_money(self) -> None:
        totals = PartTotals(parts=20, cycles=10, measured_cycles=10, measured_seconds=10 * 300)
        result = efficiency(totals, time_per_cycle=4.0, part_sell_price=12.5, part_material_cost=2.5,
                            window_start=0, window_end=1)
        assert result["average_cycle_time"] == 5.0
        assert result["efficiency"] == 0.8
        assert result["revenue"] == 250.0
        assert result["material_cost"] == 50.0
        assert result["margin"] == 200.0
        assert result["margin_per_hour"] == 240.0  # 200 over 50 minutes of cycles

    def test_nothing_measured_gives_nulls(self) -> None:
        result = efficiency(PartTotals(0, 0, 0, 0.0), time_per_cycle=None, part_sell_price=1, part_material_cost=0,
                            window_start=0, window_end=1)
        assert result["average_cycle_time"] is None and result["efficiency"] is None
        assert result["margin_per_hour"] is None


class TestCalendar:
    def test_overview_groups_by_shop_local_day(self) -> None:
        chicago = ZoneInfo("America/Chicago")
        parts = [
            (datetime(2026, 3, 2, 5, 59, tzinfo=UTC), 1),  # 23:59 on the 1st in Chicago
            (datetime(2026, 3, 2, 6, 1, tzinfo=UTC), 2),  # 00:01 on the 2nd
            (datetime(2026, 3, 2, 12, 0, tzinfo=UTC), 1),
        ]
        assert calendar.overview(chicago, parts) == {"2026": {"2026-03-01": 1, "2026-03-02": 3}}

    def test_local_month_range_crosses_dst(self) -> None:
        chicago = ZoneInfo("America/Chicago")
        start, end = calendar.local_range(chicago, 2026, 3)
        assert start == datetime(2026, 3, 1, 6, tzinfo=UTC)  # CST
        assert end == datetime(2026, 4, 1, 5, tzinfo=UTC)  # CDT
        start, end = calendar.local_range(chicago, 2026, 12)
        assert end == datetime(2027, 1, 1, 6, tzinfo=UTC)

    def test_local_day_bounds(self) -> None:
        tokyo = ZoneInfo("Asia/Tokyo")
        now = datetime(2026, 6, 1, 16, 0, tzinfo=UTC)  # 01:00 on June 2 in Tokyo
        assert calendar.start_of_local_day(tokyo, now) == datetime(2026, 6, 1, 15, tzinfo=UTC)
        assert calendar.start_of_next_local_day(tokyo, now) == datetime(2026, 6, 2, 15, tzinfo=UTC)
