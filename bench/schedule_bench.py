"""Benchmark: the schedule of 10,000 mixed maintenance items over 90 days (target: under one second).

Run with `.venv/bin/python bench/schedule_bench.py`. A third of the items per schedule mode; the
calendar third draws its fields from the ranges a shop uses (so rules repeat, as they do in a real
shop), the completions are spread over the previous year. Not a test: it prints the figures.
"""

from __future__ import annotations

import random
import sys
import time as perf
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.maintenance.domain import schedule
from services.maintenance.domain.schedule import ItemState, ScheduleSpec, due_dates

ITEMS = 10_000
ZONE = ZoneInfo("America/Chicago")
START = datetime(2026, 2, 1, tzinfo=UTC)  # the window spans the March DST change
END = START + timedelta(days=90)


def calendar_spec(rng: random.Random) -> ScheduleSpec:
    frequency = rng.choice("YMMMWWWDDH")
    indices: tuple[int, ...] = ()
    if frequency == "M":
        indices = rng.choice([(1,), (1, 14), (-1,), (-2,), (15,), ()])
    elif frequency == "Y":
        indices = rng.choice([(1,), (100,), (-1,)])
    elif frequency == "W":
        indices = rng.choice([(), (1,), (-1,)])
    return ScheduleSpec(
        schedule_mode=2,
        frequency=frequency,
        interval=rng.choice([1, 1, 1, 2, 3]) if frequency != "H" else rng.choice([4, 8, 12]),
        indices=indices,
        months=rng.choice([4095, 4095, 585]),
        weekdays=rng.choice([127, 127, 15, 31, 1]),
        time_of_day=time(rng.choice([0, 6, 7, 14, 22]), rng.choice([0, 30])),
        warning_interval=rng.choice([0, 24]),
    )


def build(rng: random.Random) -> list[tuple[ScheduleSpec, ItemState]]:
    items = []
    for i in range(ITEMS):
        mode = i % 3
        if mode == 2:
            spec = calendar_spec(rng)
        else:
            spec = ScheduleSpec(schedule_mode=mode, timer_interval=rng.choice([8, 24, 40, 168, 500, 2000]),
                                warning_interval=rng.choice([0, 4]), cycle_timer=rng.uniform(0, 3000),
                                has_machine=rng.random() < 0.8)
        last = START - timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
        alarm = START + timedelta(days=rng.randrange(90)) if rng.random() < 0.02 else None
        items.append((spec, ItemState(last_done=last if rng.random() < 0.9 else None,
                                      created_at=last - timedelta(days=30), trigger_alarm_at=alarm)))
    return items


def main() -> None:
    items = build(random.Random(4))
    for cache in (schedule._rule, schedule._calendar_window, schedule._positions_unreachable):
        cache.cache_clear()  # a cold start, as after a deploy
    started = perf.perf_counter()
    dates = sum(len(due_dates(spec, state, ZONE, START, END)) for spec, state in items)
    cold = perf.perf_counter() - started
    started = perf.perf_counter()
    sum(len(due_dates(spec, state, ZONE, START, END)) for spec, state in items)
    warm = perf.perf_counter() - started
    print(f"{ITEMS} items x 90 days: {dates} due dates")
    print(f"cold: {cold:.3f} s ({ITEMS / cold:,.0f} items/s)")
    print(f"warm: {warm:.3f} s ({ITEMS / warm:,.0f} items/s)")


if __name__ == "__main__":
    main()
