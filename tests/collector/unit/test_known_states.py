"""KnownStates: what a replica's pushes last wrote, newest version wins, bounded."""

from __future__ import annotations

from services.collector.repository import StoredState
from services.collector.usecases.known_states import KnownStates


def state(version: int, part_count: int = 0) -> StoredState:
    return StoredState(part_count, None, None, None, {}, None, version)


def test_an_older_version_never_replaces_a_newer_one() -> None:
    known = KnownStates()
    known.keep(1, state(3, part_count=30))
    known.keep(1, state(2, part_count=20))  # committed first, called back last
    assert known.get(1) == state(3, part_count=30)
    known.keep(1, state(4, part_count=40))
    assert known.get(1) == state(4, part_count=40)
    known.forget(1)
    assert known.get(1) is None


def test_the_map_is_bounded_and_drops_the_longest_held() -> None:
    known = KnownStates(max_entries=2)
    for machine in (1, 2, 3):
        known.keep(machine, state(1))
    assert len(known) == 2 and known.get(1) is None and known.get(3) == state(1)
