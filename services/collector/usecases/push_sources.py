"""Each machine's HTTP push source (its id, mapping and status), kept between pushes.

A busy edge adapter pushes many times a second, and reading its source row was the costliest
statement of a push. An entry lives `ttl` seconds (TAKTLINE_COLLECTOR_SUPERVISE_INTERVAL, the
same delay with which live sources pick up a changed row); a source written through this
replica's API drops every entry once that write has committed, so only another replica's
writes take up to `ttl` to show.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from services.collector import repository
from services.collector.domain.mapping import Mapping
from services.collector.models import Source
from shared.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class PushSource:
    id: int
    mapping: Mapping
    connected: bool
    last_data_at: datetime | None


class PushSources:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self._clock = clock
        self.max_entries = max_entries  # machine ids come from the URL: the cache must not grow with them
        self._entries: dict[int, tuple[float, PushSource | None]] = {}
        self._generation = 0  # moved by forget_all: a read begun before it is not kept

    async def get(self, session: AsyncSession, machine_id: int) -> PushSource | None:
        """The machine's http source (the first by id), or None: push then uses the default mapping."""
        entry = self._entries.get(machine_id)
        if entry is not None and self._clock() < entry[0]:
            return entry[1]
        generation = self._generation
        sources = await repository.list_sources(session, machine_id, "http")
        found = None if not sources else PushSource(sources[0].id, Mapping().merged(sources[0].mapping),
                                                    sources[0].connected, sources[0].last_data_at)
        if generation == self._generation:
            if machine_id not in self._entries and len(self._entries) >= self.max_entries:
                del self._entries[next(iter(self._entries))]  # the longest-held entry
            self._entries[machine_id] = (self._clock() + self.ttl, found)
        return found

    def __len__(self) -> int:
        return len(self._entries)

    async def mark_seen(self, uow: UnitOfWork, machine_id: int, source: PushSource, now: datetime) -> None:
        """Connected, with data at `now`: one UPDATE in the push's transaction, kept here once it commits."""
        await uow.session.execute(update(Source).where(Source.id == source.id)
                                  .values(connected=True, last_data_at=now))
        self.keep_seen(uow, machine_id, source, now)

    def keep_seen(self, uow: UnitOfWork, machine_id: int, source: PushSource, now: datetime) -> None:
        """The cached entry shows the source seen at `now` once `uow` commits (the row is written already)."""

        def keep() -> None:
            entry = self._entries.get(machine_id)
            if entry is not None and entry[1] is not None and entry[1].id == source.id:
                self._entries[machine_id] = (entry[0], replace(entry[1], connected=True, last_data_at=now))

        uow.after_commit(keep)

    def forget_all(self) -> None:
        self._entries.clear()
        self._generation += 1
