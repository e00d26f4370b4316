"""Tool-location rules (pure)."""

from __future__ import annotations

from collections.abc import Iterable


def unused_tool_locations(
    assembly_locations: Iterable[str | None], recent_parts_tools: Iterable[Iterable[str]], window: int
) -> list[str]:
    """Locations holding an assembly of the process that none of the last `window` parts used.

    `recent_parts_tools` are the tool locations of the process's most recent parts, newest
    first. With the check disabled (window 0) or no parts yet there is no evidence: []."""
    recent = list(recent_parts_tools)[:window] if window > 0 else []
    if not recent:
        return []
    used = {loc for tools in recent for loc in tools}
    return sorted({loc for loc in assembly_locations if loc} - used, key=_location_key)


def _location_key(location: str) -> tuple[int, str]:
    digits = "".join(ch for ch in location if ch.isdigit())
    return (int(digits) if digits else 1 << 30, location)


def record_unassigned_use(
    used: dict[str, float], location: str, at: float, assigned_locations: Iterable[str | None]
) -> dict[str, float] | None:
    """The new `unassigned_tools_used` map, or None when the location is filled by the process."""
    if location in set(assigned_locations):
        return None
    return {**used, location: at}
