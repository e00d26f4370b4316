"""HTTP push: an edge adapter POSTs a JSON batch of observations for its machine.

Each item is validated on its own: the valid ones are applied, the others come back with
their index and the reason. Events go through the unit of work's outbox (published with
confirms after commit); their ids derive from the machine and the item's id (or time and
key), so a batch resent after a lost response is dropped by consumers' inboxes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from services.collector.domain.mapping import Mapping
from services.collector.domain.observations import Condition, Observation
from services.collector.schemas import PushItem, PushRejected, PushResult
from services.collector.usecases.known_states import KnownStates
from services.collector.usecases.push_sources import PushSources
from services.collector.usecases.telemetry import ingest, ingest_unlocked
from shared.db import pg_driver, utcnow
from shared.uow import UnitOfWork

STATUS_EVERY = timedelta(seconds=1)
DEFAULT_MAPPING = Mapping()  # for a machine without an http source (read only: derive never changes it)


def _observation(item: PushItem, index: int) -> Observation:
    position = item.id or f"{item.timestamp!r}:{item.key}"
    if item.condition is not None:
        c = item.condition
        return Observation(item.timestamp, item.key, condition=Condition(c.level, c.native_code, c.severity,
                                                                          c.qualifier, c.message), position=position)
    value = None if item.value is None else str(item.value)
    if value is not None and value.upper() == "UNAVAILABLE":
        value = None
    return Observation(item.timestamp, item.key, value, position=position)


async def push(uow: UnitOfWork, sources: PushSources, states: KnownStates, machine_id: int,
               items: list[Any]) -> PushResult:
    observations: list[Observation] = []
    rejected: list[PushRejected] = []
    for index, raw in enumerate(items):
        try:
            observations.append(_observation(PushItem.model_validate(raw), index))
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"]) or "item"
            rejected.append(PushRejected(index=index, detail=f"{where}: {error['msg']}"))
    # Apply in time order, as a machine reports them.
    observations.sort(key=lambda o: o.timestamp)
    source = await sources.get(uow.session, machine_id)
    stream, mapping = f"push:{machine_id}", source.mapping if source else DEFAULT_MAPPING
    now = utcnow()
    # A busy edge pushes many times a second: the status row moves at most once a second,
    # so concurrent pushes of one machine do not queue on its row lock.
    seen = (source is not None and bool(observations)
            and (not source.connected or source.last_data_at is None or now - source.last_data_at >= STATUS_EVERY))
    # A resent batch derives the same events with the same ids: the outbox queues each id once.
    if observations and uow.session.bind.dialect.name == "postgresql" and not any(o.condition for o in observations):
        async with pg_driver(uow.session) as driver:
            done = await ingest_unlocked(driver, machine_id=machine_id, stream=stream, mapping=mapping,
                                         observations=observations, seen_source=source.id if seen else None,
                                         known=states.get(machine_id))
        if done is not None:
            queued, state = done
            if queued:
                uow.wrote_outbox()
            if seen:
                sources.keep_seen(uow, machine_id, source, now)  # type: ignore[arg-type]  # seen: not None
            uow.after_commit(lambda: states.keep(machine_id, state))
            return PushResult(accepted=len(observations), rejected=rejected, events=len(queued))
    states.forget(machine_id)
    envelopes = await ingest(uow.session, machine_id=machine_id, source_id=source.id if source else None,
                             stream=stream, mapping=mapping, observations=observations)
    for envelope in envelopes:
        uow.emit(envelope.payload(), id=envelope.id, occurred_at=envelope.occurred_at)
    queued = await uow.write_events()
    if seen:
        await sources.mark_seen(uow, machine_id, source, now)  # type: ignore[arg-type]
    return PushResult(accepted=len(observations), rejected=rejected, events=len(queued))


@dataclass(frozen=True, slots=True)
class Pusher:
    """A push in its own unit of work, committed before the caller answers: a client never sees
    success for a change that did not commit."""

    uow: Callable[[], UnitOfWork]
    sources: PushSources
    states: KnownStates

    async def push(self, machine_id: int, items: list[Any]) -> PushResult:
        async with self.uow() as uow:
            result = await push(uow, self.sources, self.states, machine_id, items)
            await uow.commit()
        return result
