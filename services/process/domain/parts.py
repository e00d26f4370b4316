"""Part derivation: what one telemetry report means in parts (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class PartDecision:
    cycles: int
    count: int


def decide_part(increment: int, *, parts_per_cycle: int, report_limit: int) -> PartDecision | None:
    """`increment` machine cycles were reported. None when the report is not a real part:
    nothing rose, or the rise is larger than `report_limit` (0 = no limit), which is a
    counter preset or glitch, not production."""
    if increment < 1:
        return None
    if report_limit and increment > report_limit:
        return None
    return PartDecision(cycles=increment, count=increment * max(parts_per_cycle, 1))


def counter_rise(previous: Any, current: Any) -> int:
    """Cycles implied by a counter variable moving from `previous` to `current`.

    A first reading, a fall (reset) or a non-number is no part."""
    try:
        before, after = float(previous), float(current)
    except (TypeError, ValueError):
        return 0
    return int(after - before) if after > before else 0


def named_variables(cv_map: Mapping[str, Mapping[str, Any]], values: Mapping[str, Any]) -> dict[str, Any]:
    """The process's friendly names with the machine's current values, for the part record."""
    named: dict[str, Any] = {}
    for name, spec in cv_map.items():
        number = spec.get("number") if isinstance(spec, Mapping) else None
        if number is not None and str(number) in values:
            named[name] = values[str(number)]
    return named


def cycle_seconds(previous_finished: float | None, finished: float) -> float | None:
    """Seconds since the machine's previous part, None for its first (or an out-of-order one)."""
    if previous_finished is None or finished <= previous_finished:
        return None
    return finished - previous_finished
