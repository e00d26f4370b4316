"""What a live source does with a batch: derive, publish with confirms, then save its position.

The position (and the machine state and alarms derived with it) commits only after the
broker confirmed every event of the batch. If publishing fails the transaction rolls back
and the batch is read again from the old position: events that did reach the broker are
sent again with the same ids (uuid5 of source stream and position), which consumers' inboxes drop.
"""

from __future__ import annotations

import logging

from services.collector import repository
from services.collector.domain.mapping import Mapping
from services.collector.domain.observations import Observation
from services.collector.usecases.telemetry import ingest
from shared.db import utcnow
from shared.runtime import ServiceRuntime
from shared.transport.base import pack

log = logging.getLogger("taktline.collector")


class SourceGone(Exception):
    """The source was deleted or disabled while its runner was reading."""


async def commit_batch(runtime: ServiceRuntime, source_id: int, *, stream: str, mapping: Mapping,
                       observations: list[Observation], position: str | None) -> int:
    """Returns the number of events published; raises PublishError (nothing saved) or SourceGone."""
    async with runtime.uow() as uow:
        source = await repository.get_source(uow.session, source_id)
        if source is None or not source.enabled:
            raise SourceGone(source_id)
        envelopes = await ingest(uow.session, machine_id=source.machine_id, source_id=source.id, stream=stream,
                                 mapping=mapping, observations=observations)
        if envelopes:
            await runtime.transport.publish(pack(((e.type, str(e.id), e.to_bytes()) for e in envelopes),
                                                 per_message=runtime.settings.events_per_message,
                                                 producer=runtime.name))
        if position is not None:
            source.position = position
        source.connected = True
        if observations:
            source.last_data_at = utcnow()
        await uow.commit()
        return len(envelopes)


async def set_status(runtime: ServiceRuntime, source_id: int, *, connected: bool | None = None,
                     error: str | None = None, clear_error: bool = False) -> None:
    async with runtime.uow() as uow:
        source = await repository.get_source(uow.session, source_id)
        if source is None:
            return
        if connected is not None:
            source.connected = connected
        if error is not None:
            source.last_error, source.last_error_at = error[:2000], utcnow()
        elif clear_error:
            source.last_error = None
        await uow.commit()


async def position_of(runtime: ServiceRuntime, source_id: int) -> str | None:
    async with runtime.sessions() as session:
        source = await repository.get_source(session, source_id)
        if source is None:
            raise SourceGone(source_id)
        return source.position
