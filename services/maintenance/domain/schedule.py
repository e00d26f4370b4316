"""The schedule engine: when a maintenance item is due, and when it warns (pure, time passed in).

CONTRACT (the maintenance service codes against these names; the implementation may add
helpers but keeps these signatures):

- Modes: 0 clock time (due `timer_interval` hours after the last completion), 1 run time
  (due when `cycle_timer` minutes reach `timer_interval` hours; an item without a machine
  falls back to clock time), 2 calendar (`frequency` Y/M/W/D/H, `interval`, `indices`,
  `months` and `weekdays` bitfields, `time_of_day`, in the shop's zone, DST-correct,
  python-dateutil rrule underneath).
- `months == 0` or `weekdays == 0`: a calendar item never runs. `timer_interval == 0` in
  modes 0/1: never due by time.
- An alarm trigger (`ItemState.trigger_alarm_at`) makes the item due at the alarm's time.
- `ItemState.enabled == False` (process not active, machine archived rules): never due.
- Every datetime in and out is timezone-aware UTC; `zone` is the shop's IANA zone.

How `indices`, `interval` and `time_of_day` read per frequency: docs/schedule.md.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import takewhile
from typing import Literal
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, FR, HOURLY, MO, MONTHLY, SA, SU, TH, TU, WE, WEEKLY, YEARLY, rrule, weekday

FREQUENCIES = ("Y", "M", "W", "D", "H")
ALL_MONTHS = 4095  # bit 0 = January … bit 11 = December
ALL_WEEKDAYS = 127  # bit 0 = Monday … bit 6 = Sunday


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    schedule_mode: int = 0
    timer_interval: float = 0.0  # hours (modes 0 and 1)
    warning_interval: float = 0.0  # hours before due
    cycle_timer: float = 0.0  # minutes of run time accumulated since the last completion (mode 1)
    frequency: str = "D"
    interval: int = 1
    indices: tuple[int, ...] = ()
    months: int = ALL_MONTHS
    weekdays: int = ALL_WEEKDAYS
    time_of_day: time = time(0, 0)
    has_machine: bool = True


@dataclass(frozen=True, slots=True)
class ItemState:
    last_done: datetime | None  # the last entry's time, else initial_entry, else None
    created_at: datetime
    trigger_alarm_at: datetime | None = None
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Status:
    state: Literal["ok", "warning", "due", "never"]
    due_at: datetime | None
    warning_at: datetime | None


_RRULE_FREQ = {"Y": YEARLY, "M": MONTHLY, "W": WEEKLY, "D": DAILY, "H": HOURLY}
_WEEKDAYS: tuple[weekday, ...] = (MO, TU, WE, TH, FR, SA, SU)
_MAX_INDEX = 366  # rrule's bysetpos range
_TICK = timedelta(microseconds=1)  # turns an inclusive window start into a strict "after"

State = Literal["ok", "warning", "due", "never"]


@dataclass(frozen=True, slots=True)
class _Calendar:
    """The hashable calendar part of a spec, normalised (cache key for rrule construction)."""

    frequency: str
    interval: int
    setpos: tuple[int, ...]  # empty: every selected day of the period
    months: tuple[int, ...]  # 1..12
    weekdays: tuple[int, ...]  # 0 = Monday … 6 = Sunday
    at: time


# --- validation -------------------------------------------------------------------------------


def validate_spec(spec: ScheduleSpec) -> list[str]:
    """Problems with a spec as `"field: reason"` strings (empty when valid), for the service's 400s."""
    problems: list[str] = []
    if spec.schedule_mode not in (0, 1, 2):
        problems.append("schedule_mode: must be 0, 1 or 2")
    if spec.timer_interval < 0:
        problems.append("timer_interval: must not be negative")
    if spec.warning_interval < 0:
        problems.append("warning_interval: must not be negative")
    if spec.frequency not in FREQUENCIES:
        problems.append(f"frequency: must be one of {', '.join(FREQUENCIES)}")
    if spec.interval < 1:
        problems.append("interval: must be at least 1")
    if any(i == 0 or abs(i) > _MAX_INDEX for i in spec.indices):
        problems.append(f"indices: each must be 1..{_MAX_INDEX} or -{_MAX_INDEX}..-1")
    if not 0 <= spec.months < 1 << 16:
        problems.append("months: must be a 16-bit bitfield")
    if not 0 <= spec.weekdays < 1 << 16:
        problems.append("weekdays: must be a 16-bit bitfield")
    return problems


def _calendar(spec: ScheduleSpec) -> _Calendar | None:
    """Normalise the calendar fields; None when the schedule can never run (months/weekdays 0)."""
    if spec.frequency not in FREQUENCIES:
        raise ValueError(f"unknown frequency {spec.frequency!r}")
    if spec.interval < 1:
        raise ValueError(f"interval must be at least 1, got {spec.interval}")
    months = tuple(m + 1 for m in range(12) if spec.months >> m & 1)
    days = tuple(d for d in range(7) if spec.weekdays >> d & 1)
    if not months or not days:
        return None
    # Invalid indices (0, beyond a leap year) are dropped rather than crashing the scheduler loop;
    # validate_spec reports them at the API edge.
    setpos = tuple(sorted({i for i in spec.indices if i != 0 and abs(i) <= _MAX_INDEX}))
    if spec.frequency in ("D", "H"):
        setpos = ()
    elif not setpos and spec.frequency in ("Y", "M"):
        setpos = (1,)  # once per period: the first selected day
    at = spec.time_of_day.replace(tzinfo=None, microsecond=0)
    return _Calendar(spec.frequency, spec.interval, setpos, months, days, at)


# --- local wall time ----------------------------------------------------------------------------


def _to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """A naive local wall time in `zone` as UTC.

    fold=0 gives both DST rules we want: a time skipped by spring-forward is read with the
    offset before the change (02:30 CST = 03:30 CDT, i.e. it moves forward by the gap), and an
    ambiguous fall-back time takes its first occurrence (the daylight-time one)."""
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _local_date(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


# --- calendar periods (Y/M/W/D via rrule) -------------------------------------------------------


def _period_start(cal: _Calendar, day: date) -> datetime:
    """Local wall-clock start of the frequency period containing `day` (H: `time_of_day` that day)."""
    if cal.frequency == "Y":
        day = date(day.year, 1, 1)
    elif cal.frequency == "M":
        day = date(day.year, day.month, 1)
    elif cal.frequency == "W":
        day = day - timedelta(days=day.weekday())
    elif cal.frequency == "H":
        return datetime.combine(day, cal.at)
    return datetime(day.year, day.month, day.day)


def _aligned_start(cal: _Calendar, anchor: date, lower: date) -> datetime:
    """The start of the latest on-grid period (anchor's period + k·interval) at or before `lower`.

    Only moves rrule's dtstart forward so a query does not replay years of history; the
    calendar itself (month lengths, set positions, filters) stays rrule's job."""
    first = _period_start(cal, anchor)
    here = _period_start(cal, lower)
    if cal.frequency == "H":
        here = datetime(lower.year, lower.month, lower.day)
    if here <= first:
        return first
    n = cal.interval
    if cal.frequency == "Y":
        return first.replace(year=first.year + (here.year - first.year) // n * n)
    if cal.frequency == "M":
        months = (here.year - first.year) * 12 + here.month - first.month
        total = first.year * 12 + first.month - 1 + months // n * n
        return first.replace(year=total // 12, month=total % 12 + 1)
    # W, D, H: fixed-length steps of naive wall-clock time, as rrule counts them.
    step = {"W": timedelta(days=7), "D": timedelta(days=1), "H": timedelta(hours=1)}[cal.frequency]
    return first + (here - first) // step // n * n * step


@lru_cache(maxsize=8192)
def _rule(cal: _Calendar, dtstart: datetime) -> rrule:
    return rrule(
        _RRULE_FREQ[cal.frequency],
        dtstart=dtstart,
        interval=cal.interval,
        wkst=MO,
        bymonth=cal.months,
        byweekday=tuple(_WEEKDAYS[d] for d in cal.weekdays),  # always set: the day set is the filtered days
        bysetpos=cal.setpos or None,
        byhour=None if cal.frequency == "H" else cal.at.hour,
        byminute=cal.at.minute,
        bysecond=cal.at.second,
        cache=False,
    )


_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # the longest each month gets


def _never(cal: _Calendar, dtstart: datetime) -> bool:
    """True when the grid can never produce a run although months and weekdays are non-empty.

    rrule only stops at `until` on a matching candidate, so a rule that never matches again
    iterates to year 9999 (seconds for D, far longer for H). These are the ways that happens
    with our fields; each is cheap to detect."""
    n, freq = cal.interval, cal.frequency
    if freq == "H" and n % 24 == 0:
        freq, n = "D", n // 24  # whole days: same weekday logic as D
    if freq == "D" and n % 7 == 0 and dtstart.weekday() not in cal.weekdays:
        return True  # every 7k days is always the anchor's weekday
    if freq == "M" and n % 12 and not {(dtstart.month - 1 + j * n) % 12 + 1 for j in range(12)} & set(cal.months):
        return True  # the visited months are all deselected
    if freq == "M" and n % 12 == 0 and dtstart.month not in cal.months:
        return True
    return _positions_unreachable(cal)


@lru_cache(maxsize=1024)
def _positions_unreachable(cal: _Calendar) -> bool:
    """No period ever has as many selected days as the smallest index asks for."""
    if not cal.setpos:
        return False
    needed = min(abs(p) for p in cal.setpos)
    per_month = [max(sum((start + d) % 7 in cal.weekdays for d in range(_MONTH_DAYS[m - 1])) for start in range(7))
                 for m in cal.months]
    most = {"Y": sum(per_month), "M": max(per_month), "W": len(cal.weekdays)}[cal.frequency]
    return most < needed  # e.g. M [-30] with only February, or W [5] with Monday-Thursday


def _dedupe(moments: Iterator[datetime]) -> Iterator[datetime]:
    """Drop repeats: a wall time skipped by spring-forward lands on the next wall time (hourly)."""
    last: datetime | None = None
    for moment in moments:
        if moment != last:
            yield moment
        last = moment


@lru_cache(maxsize=8192)
def _calendar_window(cal: _Calendar, zone: ZoneInfo, dtstart: datetime, lo: date, hi: date) -> tuple[datetime, ...]:
    """UTC occurrences of the rule on local days lo..hi (inclusive), sorted; shared by every item
    with the same rule and grid, which is what makes a 10,000-item schedule cheap."""
    low = datetime(lo.year, lo.month, lo.day)
    high = datetime(hi.year, hi.month, hi.day, 23, 59, 59)
    local = _rule(cal, dtstart).between(low, high, inc=True)
    return tuple(_dedupe(_to_utc(t, zone) for t in local))


# --- public API -------------------------------------------------------------------------------


def occurrences(spec: ScheduleSpec, zone: ZoneInfo, after: datetime, *, until: datetime | None = None,
                count: int | None = None, anchor: datetime | None = None) -> list[datetime]:
    """Calendar (mode 2) run times strictly after `after`, up to `until` (exclusive) or `count`.

    `anchor` (keyword, default `after`) fixes the `interval` grid: the frequency period that
    contains the anchor's local date is period 0, and every `interval`-th period from it runs.
    With neither `until` nor `count`, the search stops after a bounded horizon (five years or more)."""
    cal = _calendar(spec)
    if cal is None or (count is not None and count <= 0):
        return []
    anchor_day = _local_date(anchor or after, zone)
    if until is not None:
        out = _between(cal, zone, anchor_day, after, until)
        return out[:count] if count is not None else out
    found: list[datetime] = []
    for t in _iter_after(cal, zone, anchor_day, after):
        found.append(t)
        if count is not None and len(found) >= count:
            break
    return found


def _between(cal: _Calendar, zone: ZoneInfo, anchor_day: date, after: datetime, until: datetime,
             window_from: datetime | None = None) -> list[datetime]:
    """Occurrences in (after, until), cut from a cached window that starts at `window_from`
    (default `after`); callers pass one `window_from` for many items so they share the window."""
    if until <= after:
        return []
    lo = _local_date(min(window_from or after, after), zone)
    hi = _local_date(until, zone)
    dtstart = _aligned_start(cal, anchor_day, lo)
    if _never(cal, dtstart):
        return []
    grid = _calendar_window(cal, zone, dtstart, lo, hi)
    return list(grid[bisect_right(grid, after):bisect_left(grid, until)])


def _iter_after(cal: _Calendar, zone: ZoneInfo, anchor_day: date, after: datetime) -> Iterator[datetime]:
    """Occurrences strictly after `after`, lazily, within a bounded horizon (a schedule whose
    filters and interval never meet, e.g. every 7 days on a weekday the grid never lands on,
    must not spin until year 9999)."""
    lower = _local_date(after, zone)
    dtstart = _aligned_start(cal, anchor_day, lower)
    if _never(cal, dtstart):
        return
    years = max(5, 2 * cal.interval if cal.frequency == "Y" else 2 * cal.interval // 12 + 2)
    end = datetime(min(lower.year + years, 9998), 12, 31, 23, 59, 59)
    local = _rule(cal, dtstart).xafter(datetime(lower.year, lower.month, lower.day), inc=True)
    for moment in _dedupe(_to_utc(t, zone) for t in takewhile(lambda t: t <= end, local)):
        if moment > after:
            yield moment


def _hours(value: float) -> timedelta:
    return timedelta(hours=value)


def _regular_due(spec: ScheduleSpec, base: datetime, zone: ZoneInfo) -> datetime | None:
    """Due time from the schedule alone (no alarm), counted from `base` (the last completion)."""
    if spec.schedule_mode == 2:
        found = occurrences(spec, zone, base, count=1)
        return found[0] if found else None
    if spec.schedule_mode == 1 and spec.has_machine:
        return None  # run time: the service records the crossing (run_time_state)
    if spec.schedule_mode in (0, 1):
        return base + _hours(spec.timer_interval) if spec.timer_interval > 0 else None
    raise ValueError(f"unknown schedule_mode {spec.schedule_mode}")


def next_due(spec: ScheduleSpec, state: ItemState, zone: ZoneInfo) -> datetime | None:
    """When the current occurrence is (or was: overdue) due; None if it never comes due by time.

    Mode 1 with a machine: None until `cycle_timer` reaches the interval, then the service
    records the crossing itself (see run_time_state). An alarm trigger makes the item due at
    the alarm's time if that is earlier than the regular due."""
    if not state.enabled:
        return None
    regular = _regular_due(spec, state.last_done or state.created_at, zone)
    alarm = state.trigger_alarm_at
    if alarm is None:
        return regular
    return alarm if regular is None else min(alarm, regular)


def run_time_state(spec: ScheduleSpec) -> State:
    """Mode 1: where `cycle_timer` stands against `timer_interval` (and `warning_interval`).

    Minutes against hours·60; "never" when `timer_interval` is 0. Only meaningful for
    run-time items with a machine (others are scheduled by clock)."""
    if spec.timer_interval <= 0:
        return "never"
    if spec.cycle_timer >= spec.timer_interval * 60:
        return "due"
    if spec.warning_interval > 0 and spec.cycle_timer >= (spec.timer_interval - spec.warning_interval) * 60:
        return "warning"
    return "ok"


def status(spec: ScheduleSpec, state: ItemState, zone: ZoneInfo, now: datetime) -> Status:
    """Due/warning state at `now`, with the times the current occurrence is due and warns.

    Run-time items with a machine: state from run_time_state (an alarm at or before `now`
    makes them due), with no times. A due time set by an alarm has no warning time."""
    if not state.enabled:
        return Status("never", None, None)
    alarm = state.trigger_alarm_at
    if spec.schedule_mode == 1 and spec.has_machine:
        if alarm is not None and alarm <= now:
            return Status("due", alarm, None)
        return Status(run_time_state(spec), alarm, None)
    regular = _regular_due(spec, state.last_done or state.created_at, zone)
    if alarm is not None and (regular is None or alarm < regular):
        return Status("due" if now >= alarm else "ok", alarm, None)
    if regular is None:
        return Status("never", None, None)
    warning = regular - _hours(spec.warning_interval) if spec.warning_interval > 0 else None
    if now >= regular:
        return Status("due", regular, warning)
    if warning is not None and now >= warning:
        return Status("warning", regular, warning)
    return Status("ok", regular, warning)


def due_dates(spec: ScheduleSpec, state: ItemState, zone: ZoneInfo, start: datetime,
              end: datetime) -> list[datetime]:
    """Every due date in [start, end): the next due and, for clock and calendar items, the
    later occurrences as if each were completed on time. Run-time items: their next due only
    when known."""
    first = next_due(spec, state, zone)
    if first is None or first >= end:
        return []
    if spec.schedule_mode == 1 and spec.has_machine:
        return [first] if first >= start else []
    out = [first] if first >= start else []
    if spec.schedule_mode == 2:
        # Completing on time keeps the grid; completing at an earlier alarm re-anchors on it.
        by_alarm = state.trigger_alarm_at is not None and first == state.trigger_alarm_at
        anchor = first if by_alarm else state.last_done or state.created_at
        cal = _calendar(spec)
        if cal is None:
            return out
        anchor_day = _local_date(anchor, zone)
        return out + _between(cal, zone, anchor_day, max(first, start - _TICK), end, window_from=start - _TICK)
    if spec.timer_interval <= 0:
        return out
    step = _hours(spec.timer_interval)
    k = max(1, -(-(start - first) // step))  # first multiple at or after start
    t = first + k * step
    while t < end:
        out.append(t)
        t += step
    return out


def preview(spec: ScheduleSpec, zone: ZoneInfo, start: datetime, count: int) -> list[datetime]:
    """The next `count` times the schedule would run after `start` (previewSchedule).

    `start` is the last entry, else initial_entry, else the service passes local midnight
    today. Clock items (and run-time items without a machine) repeat every `timer_interval`;
    run-time items with a machine have no clock times."""
    if count <= 0:
        return []
    if spec.schedule_mode == 2:
        return occurrences(spec, zone, start, count=count)
    if spec.schedule_mode == 1 and spec.has_machine:
        return []
    if spec.schedule_mode not in (0, 1):
        raise ValueError(f"unknown schedule_mode {spec.schedule_mode}")
    if spec.timer_interval <= 0:
        return []
    step = _hours(spec.timer_interval)
    return [start + k * step for k in range(1, count + 1)]
