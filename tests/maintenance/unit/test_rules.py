"""Pure rules of items and entries: when an item counts, stock, thresholds, schedule inputs."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from services.maintenance.domain import rules
from services.maintenance.schemas import ItemCreate

T = datetime(2024, 6, 3, 12, tzinfo=UTC)


class TestIsEnabled:
    @pytest.mark.parametrize(("archived", "when_archived", "when_not", "expected"), [
        (False, False, True, True), (True, False, True, False), (True, True, False, True), (False, True, False, False),
    ])
    def test_machine_items_follow_the_archived_flags(self, archived: bool, when_archived: bool, when_not: bool,
                                                     expected: bool) -> None:
        assert rules.is_enabled(machine=rules.MachineFacts(archived, None), has_machine=True, process_id=None,
                                active_processes=frozenset(), needed_when_archived=when_archived,
                                needed_when_not_archived=when_not) is expected

    def test_the_flags_do_nothing_without_a_machine(self) -> None:
        assert rules.is_enabled(machine=None, has_machine=False, process_id=None, active_processes=frozenset(),
                                needed_when_archived=False, needed_when_not_archived=False)

    def test_a_process_item_counts_only_while_its_process_is_active(self) -> None:
        kwargs = {"machine": None, "has_machine": False, "needed_when_archived": False,
                  "needed_when_not_archived": True}
        assert not rules.is_enabled(process_id=5, active_processes=frozenset({6}), **kwargs)  # type: ignore[arg-type]
        assert rules.is_enabled(process_id=5, active_processes=frozenset({5}), **kwargs)  # type: ignore[arg-type]


class TestStock:
    def test_shortages_include_missing_and_absent_present_only_items(self) -> None:
        short = rules.stock_shortages({1: 2, 2: 0, 3: 1, 4: 0}, {1: 1, 2: 0, 4: 1})
        assert short == [rules.Shortage(1, 2, 1), rules.Shortage(2, 0, 0), rules.Shortage(3, 1, None)]

    def test_exactly_enough_is_no_shortage_and_present_only_items_are_not_consumed(self) -> None:
        assert rules.stock_shortages({1: 2, 2: 0}, {1: 2, 2: 1}) == []
        assert rules.consumption({1: 2, 2: 0}) == {1: 2}


class TestThresholds:
    @pytest.mark.parametrize(("value", "lower", "upper", "expected"), [
        (5.0, 5.0, 9.0, None), (9.0, 5.0, 9.0, None), (4.99, 5.0, 9.0, "below"), (9.01, 5.0, 9.0, "above"),
        (100.0, None, None, None), (-1.0, 0.0, None, "below"), (1.0, None, 0.5, "above"),
    ])
    def test_breach(self, value: float, lower: float | None, upper: float | None, expected: str | None) -> None:
        assert rules.threshold_breach(value, lower, upper) == expected


class TestScheduleInputs:
    def test_spec_from_item_fields(self) -> None:
        spec = rules.schedule_spec({"schedule_mode": 2, "frequency": "M", "indices": [1, -2], "months": 585,
                                    "time_of_day": "06:30"}, has_machine=False)
        assert (spec.schedule_mode, spec.indices, spec.months, spec.time_of_day, spec.has_machine) == (
            2, (1, -2), 585, time(6, 30), False)

    def test_initial_entry_stands_in_until_an_entry_exists(self) -> None:
        later = datetime(2024, 7, 1, tzinfo=UTC)
        assert rules.item_state(last_done=None, initial_entry=T, created_at=later, trigger_alarm_at=None,
                                enabled=True).last_done == T
        assert rules.item_state(last_done=later, initial_entry=T, created_at=T, trigger_alarm_at=None,
                                enabled=True).last_done == later


class TestItemValidation:
    @pytest.mark.parametrize("fields", [
        {"months": 585}, {"months": 0}, {"weekdays": 15}, {"weekdays": 0}, {"frequency": "H"}, {"difficulty": 4},
        {"indices": [-2]}, {"time_of_day": "23:59"},
    ])
    def test_accepts_seed_values(self, fields: dict[str, object]) -> None:
        ItemCreate.model_validate({"item_type": "task", "name": "x", **fields})

    @pytest.mark.parametrize("fields", [
        {"months": 4096}, {"weekdays": 128}, {"frequency": "y"}, {"difficulty": 5}, {"indices": [0]},
        {"indices": [367]}, {"time_of_day": "7:00"}, {"machine_id": 1, "equipment_id": 2},
        {"threshold_lower": 2, "threshold_upper": 1, "item_type": "measurement"}, {"timer_interval": float("nan")},
    ])
    def test_rejects(self, fields: dict[str, object]) -> None:
        with pytest.raises(ValueError):
            ItemCreate.model_validate({"item_type": "task", "name": "x", **fields})
