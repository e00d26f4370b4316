"""The machine state each push of this replica committed last, so the next push need not read it.

A push writes only if the row's version is still the one it derived from (decision 0010), so an
entry that another writer (a live source, a push with conditions, another replica) has since
moved costs one failed write and a read, never a wrong count.
"""

from __future__ import annotations

from services.collector.repository import StoredState


class KnownStates:
    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries  # machine ids come from the URL: the map must not grow with them
        self._states: dict[int, StoredState] = {}

    def get(self, machine_id: int) -> StoredState | None:
        return self._states.get(machine_id)

    def keep(self, machine_id: int, state: StoredState) -> None:
        """Call once the write of `state` has committed; an older version never replaces a newer one
        (two pushes of one machine may commit in one order and call this in the other)."""
        held = self._states.get(machine_id)
        if held is not None and held.version >= state.version:
            return
        if held is None and len(self._states) >= self.max_entries:
            del self._states[next(iter(self._states))]  # the longest-held entry
        self._states[machine_id] = state

    def forget(self, machine_id: int) -> None:
        self._states.pop(machine_id, None)

    def __len__(self) -> int:
        return len(self._states)
