"""Production efficiency of a process over a window (pure; docs/efficiency.md defines it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class PartTotals:
    parts: int
    cycles: int
    measured_cycles: int  # cycles that have a measured cycle time
    measured_seconds: float  # their summed cycle time


def efficiency(
    totals: PartTotals,
    *,
    time_per_cycle: float | None,
    part_sell_price: float,
    part_material_cost: float,
    window_start: float,
    window_end: float,
) -> dict[str, Any]:
    average = totals.measured_seconds / totals.measured_cycles / 60 if totals.measured_cycles else None
    ratio = time_per_cycle / average if time_per_cycle and average else None
    revenue = totals.parts * part_sell_price
    material = totals.parts * part_material_cost
    run_hours = totals.measured_seconds / 3600
    return {
        "window_start": window_start,
        "window_end": window_end,
        "parts": totals.parts,
        "cycles": totals.cycles,
        "expected_cycle_time": time_per_cycle,
        "average_cycle_time": round(average, 4) if average is not None else None,
        "efficiency": round(ratio, 4) if ratio is not None else None,
        "revenue": round(revenue, 2),
        "material_cost": round(material, 2),
        "margin": round(revenue - material, 2),
        "margin_per_hour": round((revenue - material) / run_hours, 2) if run_hours else None,
        "totals": asdict(totals),
    }
