"""The maintenance schedule engine (pure), table-driven: every seed example, DST days, each mode."""

from __future__ import annotations

import time as perf
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import MONTHLY, WEEKLY, rrule

from services.maintenance.domain.schedule import (
    ItemState,
    ScheduleSpec,
    Status,
    due_dates,
    next_due,
    occurrences,
    preview,
    run_time_state,
    status,
    validate_spec,
)

CHICAGO = ZoneInfo("America/Chicago")
BERLIN = ZoneInfo("Europe/Berlin")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def cal(frequency: str, *, at: time = time(8), **fields: object) -> ScheduleSpec:
    return ScheduleSpec(schedule_mode=2, frequency=frequency, time_of_day=at, **fields)  # type: ignore[arg-type]


def clock(hours: float, warning: float = 0.0) -> ScheduleSpec:
    return ScheduleSpec(schedule_mode=0, timer_interval=hours, warning_interval=warning)


class TestSeedExamples:
    """The seed's own examples, pinned to exact instants (shop zone America/Chicago)."""

    @pytest.mark.parametrize(
        ("spec", "after", "expected"),
        [
            pytest.param(  # frequency=M, indices=[1, 14]: the 1st and 14th (CST, then CDT from March)
                cal("M", indices=(1, 14)), utc(2026, 1, 20),
                [utc(2026, 2, 1, 14), utc(2026, 2, 14, 14), utc(2026, 3, 1, 14), utc(2026, 3, 14, 13)],
                id="M-1st-and-14th",
            ),
            pytest.param(  # frequency=M, indices=[-2]: second to last day; February has 28 days in 2026
                cal("M", indices=(-2,)), utc(2026, 2, 1),
                [utc(2026, 2, 27, 14), utc(2026, 3, 30, 13), utc(2026, 4, 29, 13)],
                id="M-minus-2-february",
            ),
            pytest.param(  # … and 29 in a leap year
                cal("M", indices=(-2,)), utc(2028, 2, 1),
                [utc(2028, 2, 28, 14)],
                id="M-minus-2-leap-february",
            ),
            pytest.param(  # months=585: January, April, July, October (start of each quarter)
                cal("M", indices=(1,), months=585, at=time(6)), utc(2026, 1, 15),
                [utc(2026, 4, 1, 11), utc(2026, 7, 1, 11), utc(2026, 10, 1, 11), utc(2027, 1, 1, 12)],
                id="months-585-quarters",
            ),
            pytest.param(  # weekdays=15: Monday to Thursday; 2026-01-02 is a Friday
                cal("W", weekdays=15, at=time(7)), utc(2026, 1, 2, 12),
                [utc(2026, 1, 5, 13), utc(2026, 1, 6, 13), utc(2026, 1, 7, 13), utc(2026, 1, 8, 13),
                 utc(2026, 1, 12, 13)],
                id="weekdays-15-mon-thu",
            ),
            pytest.param(  # frequency=W, interval=3: every 3 weeks, Mondays, anchored in the week of 2026-01-05
                cal("W", interval=3, weekdays=1, at=time(7)), utc(2026, 1, 7, 12),
                [utc(2026, 1, 26, 13), utc(2026, 2, 16, 13), utc(2026, 3, 9, 12), utc(2026, 3, 30, 12)],
                id="W-every-3-weeks",
            ),
            pytest.param(  # frequency=D, interval=1: every day
                cal("D", at=time(9)), utc(2026, 6, 1, 15),
                [utc(2026, 6, 2, 14), utc(2026, 6, 3, 14)],
                id="D-every-day",
            ),
        ],
    )
    def test_runs(self, spec: ScheduleSpec, after: datetime, expected: list[datetime]) -> None:
        assert occurrences(spec, CHICAGO, after, count=len(expected)) == expected


class TestIndices:
    """How `indices` reads per frequency (docs/schedule.md)."""

    @pytest.mark.parametrize(
        ("spec", "after", "expected"),
        [
            pytest.param(cal("M"), utc(2026, 1, 20), [utc(2026, 2, 1, 14), utc(2026, 3, 1, 14)], id="M-empty-is-1st"),
            pytest.param(  # positions among the selected weekdays: the last Friday of each month
                cal("M", indices=(-1,), weekdays=16), utc(2026, 1, 1),
                [utc(2026, 1, 30, 14), utc(2026, 2, 27, 14), utc(2026, 3, 27, 13)],
                id="M-last-friday",
            ),
            pytest.param(  # the first Monday of each month
                cal("M", indices=(1,), weekdays=1), utc(2026, 1, 1),
                [utc(2026, 1, 5, 14), utc(2026, 2, 2, 14)],
                id="M-first-monday",
            ),
            pytest.param(  # a day the month lacks is skipped, not moved
                cal("M", indices=(31,)), utc(2026, 1, 1),
                [utc(2026, 1, 31, 14), utc(2026, 3, 31, 13), utc(2026, 5, 31, 13)],
                id="M-31st-skips-short-months",
            ),
            pytest.param(cal("M", interval=2, indices=(15,)), utc(2026, 1, 10),
                         [utc(2026, 1, 15, 14), utc(2026, 3, 15, 13), utc(2026, 5, 15, 13)], id="M-every-2-months"),
            pytest.param(cal("Y", indices=(100,)), utc(2026, 1, 1),
                         [utc(2026, 4, 10, 13), utc(2027, 4, 10, 13)], id="Y-day-100"),
            pytest.param(cal("Y", indices=(-1,)), utc(2026, 1, 1), [utc(2026, 12, 31, 14)], id="Y-last-day"),
            pytest.param(cal("Y", indices=(100,)), utc(2028, 1, 1), [utc(2028, 4, 9, 13)], id="Y-day-100-leap-year"),
            pytest.param(cal("Y"), utc(2026, 1, 2), [utc(2027, 1, 1, 14)], id="Y-empty-is-first-day"),
            pytest.param(  # filters compose: the first Monday of the year
                cal("Y", indices=(1,), weekdays=1), utc(2026, 1, 6), [utc(2027, 1, 4, 14)], id="Y-first-monday",
            ),
            pytest.param(  # … and the first selected day of each quarter's first month (months=585)
                cal("Y", indices=(1, -1), months=585), utc(2026, 1, 2), [utc(2026, 10, 31, 13)], id="Y-last-in-months",
            ),
            pytest.param(cal("W", indices=(-1,)), utc(2026, 1, 1), [utc(2026, 1, 4, 14)], id="W-last-is-sunday"),
            pytest.param(  # position 2 among Mon/Wed/Fri is Wednesday
                cal("W", indices=(2,), weekdays=1 | 4 | 16), utc(2026, 1, 1),
                [utc(2026, 1, 7, 14), utc(2026, 1, 14, 14)],
                id="W-second-selected-day",
            ),
            pytest.param(cal("D", indices=(5,), at=time(9)), utc(2026, 1, 1),
                         [utc(2026, 1, 1, 15), utc(2026, 1, 2, 15)], id="D-ignores-indices"),
            pytest.param(cal("D", weekdays=15), utc(2026, 1, 2), [utc(2026, 1, 5, 14)], id="D-weekday-filter"),
            pytest.param(
                cal("H", interval=8, at=time(6, 15), indices=(3,)), utc(2026, 1, 1, 13),
                [utc(2026, 1, 1, 20, 15), utc(2026, 1, 2, 4, 15), utc(2026, 1, 2, 12, 15)],
                id="H-every-8-hours-at-0615-ignores-indices",
            ),
        ],
    )
    def test_runs(self, spec: ScheduleSpec, after: datetime, expected: list[datetime]) -> None:
        assert occurrences(spec, CHICAGO, after, count=len(expected)) == expected

    @pytest.mark.parametrize(
        "spec",
        [
            pytest.param(cal("M", months=0), id="months-0"),
            pytest.param(cal("D", weekdays=0), id="weekdays-0"),
            pytest.param(cal("H", weekdays=0), id="hourly-weekdays-0"),
            pytest.param(cal("D", months=1 << 12), id="only-bits-above-december"),
            # grids that never land on a selected day must answer at once, not iterate to year 9999
            pytest.param(cal("D", interval=7, weekdays=2), id="every-7-days-on-another-weekday"),
            pytest.param(cal("H", interval=168, weekdays=2), id="every-168-hours-on-another-weekday"),
            pytest.param(cal("M", interval=12, months=2), id="every-12-months-never-february"),
            pytest.param(cal("M", indices=(30,), months=2), id="february-30th"),
            pytest.param(cal("W", indices=(5,), weekdays=15), id="5th-of-4-weekdays"),
        ],
    )
    def test_never_runs(self, spec: ScheduleSpec) -> None:
        after = utc(2026, 1, 5, 12)  # a Monday
        started = perf.perf_counter()
        assert occurrences(spec, CHICAGO, after, count=3) == []
        assert occurrences(spec, CHICAGO, after, until=after + timedelta(days=400)) == []
        assert next_due(spec, ItemState(last_done=after, created_at=after), CHICAGO) is None
        assert perf.perf_counter() - started < 0.2

    @pytest.mark.parametrize(
        ("spec", "freq"),
        [
            pytest.param(cal("W", interval=3, weekdays=1 | 8), WEEKLY, id="W3"),
            pytest.param(cal("M", interval=5, indices=(-1, 10)), MONTHLY, id="M5"),
        ],
    )
    def test_a_far_anchor_keeps_the_interval_grid(self, spec: ScheduleSpec, freq: int) -> None:
        # Moving dtstart forward must not shift the grid: compare with rrule replayed from the anchor.
        anchor = datetime(2023, 5, 17)
        weekdays = [d for d in range(7) if spec.weekdays >> d & 1]
        direct = rrule(freq, dtstart=anchor.replace(day=1 if freq == MONTHLY else anchor.day), interval=spec.interval,
                       byweekday=weekdays, bysetpos=spec.indices or None, byhour=8, byminute=0, bysecond=0)
        if freq == WEEKLY:
            direct = direct.replace(dtstart=anchor - timedelta(days=anchor.weekday()))
        window = (datetime(2026, 2, 1), datetime(2027, 9, 1))
        expected = [t.replace(tzinfo=CHICAGO).astimezone(UTC) for t in direct.between(*window)]
        start, until = (t.replace(tzinfo=CHICAGO).astimezone(UTC) for t in window)
        found = occurrences(spec, CHICAGO, start, until=until, anchor=anchor.replace(tzinfo=UTC) + timedelta(hours=12))
        assert found == expected
        assert len(found) > 5


class TestDaylightSaving:
    @pytest.mark.parametrize(
        ("zone", "at", "after", "expected"),
        [
            pytest.param(  # spring forward 2026-03-08: 02:30 does not exist and moves on to 03:30 CDT
                CHICAGO, time(2, 30), utc(2026, 3, 7),
                [utc(2026, 3, 7, 8, 30), utc(2026, 3, 8, 8, 30), utc(2026, 3, 9, 7, 30)],
                id="chicago-spring-gap",
            ),
            pytest.param(  # the same wall time on each side of the change: 06:00 CST, then 06:00 CDT
                CHICAGO, time(6), utc(2026, 3, 7), [utc(2026, 3, 7, 12), utc(2026, 3, 8, 11)],
                id="chicago-spring-wall-time",
            ),
            pytest.param(  # fall back 2026-11-01: 01:30 happens twice; the first (CDT) counts
                CHICAGO, time(1, 30), utc(2026, 10, 31),
                [utc(2026, 10, 31, 6, 30), utc(2026, 11, 1, 6, 30), utc(2026, 11, 2, 7, 30)],
                id="chicago-fall-ambiguous",
            ),
            pytest.param(  # Berlin springs forward 2026-03-29: 02:30 CET does not exist, 03:30 CEST
                BERLIN, time(2, 30), utc(2026, 3, 28),
                [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)],
                id="berlin-spring-gap",
            ),
            pytest.param(  # Berlin falls back 2026-10-25: 02:30 twice, the first (CEST) counts
                BERLIN, time(2, 30), utc(2026, 10, 24),
                [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],
                id="berlin-fall-ambiguous",
            ),
        ],
    )
    def test_daily(self, zone: ZoneInfo, at: time, after: datetime, expected: list[datetime]) -> None:
        assert occurrences(cal("D", at=at), zone, after, count=len(expected)) == expected

    def test_spring_gap_reads_as_0330_local(self) -> None:
        (run,) = occurrences(cal("D", at=time(2, 30)), CHICAGO, utc(2026, 3, 8), count=1)
        assert run.astimezone(CHICAGO).replace(tzinfo=None) == datetime(2026, 3, 8, 3, 30)

    def test_hourly_skips_the_missing_hour_without_duplicates(self) -> None:
        runs = occurrences(cal("H", at=time(0, 15)), CHICAGO, utc(2026, 3, 8, 6), until=utc(2026, 3, 8, 10))
        assert runs == [utc(2026, 3, 8, 6, 15), utc(2026, 3, 8, 7, 15), utc(2026, 3, 8, 8, 15), utc(2026, 3, 8, 9, 15)]

    def test_hourly_runs_the_repeated_hour_once(self) -> None:
        runs = occurrences(cal("H", at=time(0, 15)), CHICAGO, utc(2026, 11, 1, 5), count=3)
        assert runs == [utc(2026, 11, 1, 5, 15), utc(2026, 11, 1, 6, 15), utc(2026, 11, 1, 8, 15)]


class TestClockMode:
    @pytest.mark.parametrize(
        ("now", "expected"),
        [
            (utc(2026, 1, 1, 21, 59), Status("ok", utc(2026, 1, 2), utc(2026, 1, 1, 22))),
            (utc(2026, 1, 1, 22), Status("warning", utc(2026, 1, 2), utc(2026, 1, 1, 22))),
            (utc(2026, 1, 2), Status("due", utc(2026, 1, 2), utc(2026, 1, 1, 22))),
            (utc(2026, 2, 1), Status("due", utc(2026, 1, 2), utc(2026, 1, 1, 22))),  # overdue stays due
        ],
    )
    def test_status_with_warning(self, now: datetime, expected: Status) -> None:
        state = ItemState(last_done=utc(2026, 1, 1), created_at=utc(2025, 1, 1))
        assert status(clock(24, warning=2), state, CHICAGO, now) == expected

    @pytest.mark.parametrize(
        ("spec", "last_done", "expected"),
        [
            (clock(24), utc(2026, 1, 1), utc(2026, 1, 2)),
            (clock(1.5), utc(2026, 1, 1), utc(2026, 1, 1, 1, 30)),
            (clock(24), None, utc(2025, 6, 2)),  # never done: counted from creation
            (clock(0), utc(2026, 1, 1), None),  # timer_interval 0: never due by time
            (ScheduleSpec(schedule_mode=1, timer_interval=10, has_machine=False), utc(2026, 1, 1), utc(2026, 1, 1, 10)),
            (ScheduleSpec(schedule_mode=1, timer_interval=10, cycle_timer=9999), utc(2026, 1, 1), None),
        ],
        ids=["24h", "fractional-hours", "from-created-at", "zero-never", "run-time-without-machine", "run-time"],
    )
    def test_next_due(self, spec: ScheduleSpec, last_done: datetime | None, expected: datetime | None) -> None:
        assert next_due(spec, ItemState(last_done=last_done, created_at=utc(2025, 6, 1)), CHICAGO) == expected

    def test_clock_time_ignores_dst(self) -> None:
        # 24 h of elapsed time across spring-forward is 01:00 local the next day, not midnight.
        state = ItemState(last_done=utc(2026, 3, 8, 6), created_at=utc(2026, 1, 1))  # 00:00 CST
        assert next_due(clock(24), state, CHICAGO) == utc(2026, 3, 9, 6)

    def test_zero_interval_status_is_never(self) -> None:
        state = ItemState(last_done=utc(2026, 1, 1), created_at=utc(2026, 1, 1))
        assert status(clock(0), state, CHICAGO, utc(2027, 1, 1)) == Status("never", None, None)


class TestRunTimeMode:
    @pytest.mark.parametrize(
        ("timer", "warning", "cycle", "expected"),
        [
            (10, 2, 0, "ok"),
            (10, 2, 479.9, "ok"),
            (10, 2, 480, "warning"),  # (10 - 2) h = 480 min
            (10, 2, 599.9, "warning"),
            (10, 2, 600, "due"),  # 10 h = 600 min
            (10, 2, 5000, "due"),
            (10, 0, 599, "ok"),  # no warning interval, no warning
            (0, 0, 5000, "never"),
            (1.5, 0.5, 60, "warning"),
        ],
    )
    def test_run_time_state(self, timer: float, warning: float, cycle: float, expected: str) -> None:
        spec = ScheduleSpec(schedule_mode=1, timer_interval=timer, warning_interval=warning, cycle_timer=cycle)
        assert run_time_state(spec) == expected

    @pytest.mark.parametrize(("cycle", "state"), [(100, "ok"), (500, "warning"), (600, "due")])
    def test_status_has_no_clock_times(self, cycle: float, state: str) -> None:
        spec = ScheduleSpec(schedule_mode=1, timer_interval=10, warning_interval=2, cycle_timer=cycle)
        item = ItemState(last_done=utc(2020, 1, 1), created_at=utc(2020, 1, 1))
        assert status(spec, item, CHICAGO, utc(2026, 1, 1)) == Status(state, None, None)  # type: ignore[arg-type]

    def test_without_machine_falls_back_to_clock(self) -> None:
        spec = ScheduleSpec(schedule_mode=1, timer_interval=10, warning_interval=2, cycle_timer=0, has_machine=False)
        item = ItemState(last_done=utc(2026, 1, 1), created_at=utc(2020, 1, 1))
        assert status(spec, item, CHICAGO, utc(2026, 1, 1, 9)) == Status(
            "warning", utc(2026, 1, 1, 10), utc(2026, 1, 1, 8))


class TestCalendarStatus:
    @pytest.mark.parametrize(
        ("now", "state"),
        [(utc(2026, 2, 28, 13, 59), "ok"), (utc(2026, 2, 28, 14), "warning"), (utc(2026, 3, 1, 14), "due"),
         (utc(2026, 4, 2), "due")],
    )
    def test_due_is_the_first_run_after_the_last_completion(self, now: datetime, state: str) -> None:
        spec = cal("M", indices=(1,), warning_interval=24)
        item = ItemState(last_done=utc(2026, 2, 1, 15), created_at=utc(2025, 1, 1))  # done after the Feb 1 run
        assert status(spec, item, CHICAGO, now) == Status(state, utc(2026, 3, 1, 14), utc(2026, 2, 28, 14))  # type: ignore[arg-type]

    def test_never_done_counts_from_creation(self) -> None:
        item = ItemState(last_done=None, created_at=utc(2026, 1, 20))
        assert next_due(cal("M", indices=(14,)), item, CHICAGO) == utc(2026, 2, 14, 14)

    def test_months_zero_is_never(self) -> None:
        item = ItemState(last_done=None, created_at=utc(2026, 1, 20))
        assert status(cal("M", months=0), item, CHICAGO, utc(2027, 1, 1)) == Status("never", None, None)


class TestAlarmAndEnabled:
    @pytest.mark.parametrize(
        ("spec", "alarm", "now", "expected"),
        [
            pytest.param(clock(24), utc(2026, 1, 1, 5), utc(2026, 1, 1, 6),
                         Status("due", utc(2026, 1, 1, 5), None), id="clock-alarm-first"),
            pytest.param(clock(24, warning=2), utc(2026, 1, 3), utc(2026, 1, 1, 23),
                         Status("warning", utc(2026, 1, 2), utc(2026, 1, 1, 22)), id="clock-regular-first"),
            pytest.param(clock(0), utc(2026, 1, 1, 5), utc(2026, 1, 1, 6),
                         Status("due", utc(2026, 1, 1, 5), None), id="zero-interval-alarm"),
            pytest.param(ScheduleSpec(schedule_mode=1, timer_interval=10, cycle_timer=1), utc(2026, 1, 1, 5),
                         utc(2026, 1, 1, 6), Status("due", utc(2026, 1, 1, 5), None), id="run-time-alarm"),
            pytest.param(cal("M", indices=(15,)), utc(2026, 1, 10), utc(2026, 1, 10),  # before the 15th's run
                         Status("due", utc(2026, 1, 10), None), id="calendar-alarm"),
            pytest.param(cal("D", months=0), utc(2026, 1, 10), utc(2026, 1, 9),
                         Status("ok", utc(2026, 1, 10), None), id="never-running-calendar-alarm-ahead"),
        ],
    )
    def test_alarm_makes_due(self, spec: ScheduleSpec, alarm: datetime, now: datetime, expected: Status) -> None:
        item = ItemState(last_done=utc(2026, 1, 1), created_at=utc(2025, 1, 1), trigger_alarm_at=alarm)
        assert status(spec, item, CHICAGO, now) == expected
        assert next_due(spec, item, CHICAGO) == expected.due_at

    @pytest.mark.parametrize(
        "spec",
        [clock(24), cal("D"), ScheduleSpec(schedule_mode=1, timer_interval=1, cycle_timer=500)],
        ids=["clock", "calendar", "run-time"],
    )
    def test_disabled_is_never(self, spec: ScheduleSpec) -> None:
        item = ItemState(last_done=utc(2026, 1, 1), created_at=utc(2025, 1, 1), trigger_alarm_at=utc(2026, 1, 1, 1),
                         enabled=False)
        assert status(spec, item, CHICAGO, utc(2026, 6, 1)) == Status("never", None, None)
        assert next_due(spec, item, CHICAGO) is None
        assert due_dates(spec, item, CHICAGO, utc(2026, 1, 1), utc(2026, 6, 1)) == []


class TestDueDates:
    @pytest.mark.parametrize(
        ("spec", "state", "window", "expected"),
        [
            pytest.param(clock(8), ItemState(utc(2026, 1, 1), utc(2025, 1, 1)),
                         (utc(2026, 1, 1, 12), utc(2026, 1, 2, 12)),
                         [utc(2026, 1, 1, 16), utc(2026, 1, 2), utc(2026, 1, 2, 8)], id="clock-series"),
            pytest.param(  # overdue since Jan 2; later dues as if done on time; the end is exclusive
                clock(24), ItemState(utc(2026, 1, 1), utc(2025, 1, 1)), (utc(2026, 1, 5), utc(2026, 1, 7)),
                [utc(2026, 1, 5), utc(2026, 1, 6)], id="clock-overdue-before-window",
            ),
            pytest.param(clock(0), ItemState(utc(2026, 1, 1), utc(2025, 1, 1)), (utc(2026, 1, 1), utc(2027, 1, 1)),
                         [], id="clock-zero"),
            pytest.param(  # alarm first: the clock restarts from the alarm
                clock(24), ItemState(utc(2026, 1, 1), utc(2025, 1, 1), trigger_alarm_at=utc(2026, 1, 1, 6)),
                (utc(2026, 1, 1), utc(2026, 1, 3)), [utc(2026, 1, 1, 6), utc(2026, 1, 2, 6)], id="clock-alarm",
            ),
            pytest.param(cal("D", at=time(6)), ItemState(utc(2026, 3, 6, 13), utc(2025, 1, 1)),
                         (utc(2026, 3, 6), utc(2026, 3, 9, 11)),  # end exclusive: Mar 9 06:00 CDT is 11:00Z
                         [utc(2026, 3, 7, 12), utc(2026, 3, 8, 11)], id="calendar-daily-across-dst"),
            pytest.param(  # overdue calendar item: the missed run is before the window, the grid continues
                cal("M", interval=2, indices=(15,)), ItemState(utc(2026, 1, 10), utc(2025, 1, 1)),
                (utc(2026, 2, 1), utc(2026, 9, 1)), [utc(2026, 3, 15, 13), utc(2026, 5, 15, 13), utc(2026, 7, 15, 13)],
                id="calendar-every-2-months",
            ),
            pytest.param(  # the next due is inside the window and included
                cal("W", weekdays=1 | 16, at=time(7)), ItemState(utc(2026, 1, 6), utc(2025, 1, 1)),
                (utc(2026, 1, 1), utc(2026, 1, 13)), [utc(2026, 1, 9, 13), utc(2026, 1, 12, 13)],
                id="calendar-window-start-before-due",
            ),
            pytest.param(cal("D", weekdays=0), ItemState(utc(2026, 1, 1), utc(2025, 1, 1)),
                         (utc(2026, 1, 1), utc(2027, 1, 1)), [], id="calendar-never"),
            pytest.param(ScheduleSpec(schedule_mode=1, timer_interval=10, cycle_timer=900),
                         ItemState(utc(2026, 1, 1), utc(2025, 1, 1)), (utc(2026, 1, 1), utc(2027, 1, 1)), [],
                         id="run-time-unknown"),
            pytest.param(ScheduleSpec(schedule_mode=1, timer_interval=10),
                         ItemState(utc(2026, 1, 1), utc(2025, 1, 1), trigger_alarm_at=utc(2026, 1, 2)),
                         (utc(2026, 1, 1), utc(2027, 1, 1)), [utc(2026, 1, 2)], id="run-time-alarm"),
        ],
    )
    def test_window(self, spec: ScheduleSpec, state: ItemState, window: tuple[datetime, datetime],
                    expected: list[datetime]) -> None:
        assert due_dates(spec, state, CHICAGO, *window) == expected

    def test_ninety_days_of_a_daily_item(self) -> None:
        found = due_dates(cal("D"), ItemState(utc(2026, 1, 1), utc(2025, 1, 1)), CHICAGO, utc(2026, 2, 1),
                          utc(2026, 5, 2))
        assert len(found) == 90
        assert found[0] == utc(2026, 2, 1, 14)
        assert all(t.astimezone(CHICAGO).hour == 8 for t in found)

    def test_matches_occurrences(self) -> None:
        # The window path (cached) and the iterator path give the same runs.
        spec = cal("M", indices=(1, -1), weekdays=31, at=time(2, 30))
        state = ItemState(utc(2026, 1, 1), utc(2025, 1, 1))
        found = due_dates(spec, state, BERLIN, utc(2026, 1, 1), utc(2027, 1, 1))
        assert found == occurrences(spec, BERLIN, utc(2026, 1, 1), count=len(found))
        assert len(found) == 24


class TestPreview:
    @pytest.mark.parametrize(
        ("spec", "count", "expected"),
        [
            pytest.param(clock(12), 3, [utc(2026, 1, 1, 12), utc(2026, 1, 2), utc(2026, 1, 2, 12)], id="clock"),
            pytest.param(cal("D", at=time(6)), 2, [utc(2026, 1, 1, 12), utc(2026, 1, 2, 12)], id="calendar"),
            pytest.param(ScheduleSpec(schedule_mode=1, timer_interval=5), 3, [], id="run-time"),
            pytest.param(ScheduleSpec(schedule_mode=1, timer_interval=5, has_machine=False), 1, [utc(2026, 1, 1, 5)],
                         id="run-time-without-machine"),
            pytest.param(clock(12), 0, [], id="count-0"),
            pytest.param(clock(0), 3, [], id="clock-zero"),
            pytest.param(cal("D", months=0), 3, [], id="months-0"),
        ],
    )
    def test_preview(self, spec: ScheduleSpec, count: int, expected: list[datetime]) -> None:
        assert preview(spec, CHICAGO, utc(2026, 1, 1), count) == expected

    @pytest.mark.parametrize("count", [1, 5, 40])
    def test_count(self, count: int) -> None:
        runs = preview(cal("W", weekdays=15), CHICAGO, utc(2026, 1, 1), count)
        assert len(runs) == count
        assert runs == sorted(set(runs))


class TestValidateSpec:
    @pytest.mark.parametrize(
        ("spec", "fields"),
        [
            (cal("M", indices=(1, 14)), []),
            (cal("Q"), ["frequency"]),
            (cal("W", interval=0), ["interval"]),
            (cal("M", indices=(0, 367)), ["indices"]),
            (ScheduleSpec(schedule_mode=3, timer_interval=-1), ["schedule_mode", "timer_interval"]),
            (cal("D", months=1 << 16, weekdays=-1), ["months", "weekdays"]),
        ],
    )
    def test_problems_name_the_field(self, spec: ScheduleSpec, fields: list[str]) -> None:
        assert [p.split(":")[0] for p in validate_spec(spec)] == fields

    def test_engine_rejects_an_unknown_frequency(self) -> None:
        with pytest.raises(ValueError, match="frequency"):
            occurrences(cal("Q"), CHICAGO, utc(2026, 1, 1), count=1)
