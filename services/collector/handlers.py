"""Event subscriptions of the collector: each handler is one use-case call."""

from __future__ import annotations

from collections.abc import Mapping

from services.collector.usecases import machines
from shared.consumer import Handler
from shared.events import Envelope, InterlockChanged, Payload
from shared.uow import UnitOfWork


async def on_interlock_changed(uow: UnitOfWork, event: Payload, _: Envelope) -> None:
    assert isinstance(event, InterlockChanged)
    await machines.apply_interlock(uow, event)


SUBSCRIPTIONS: Mapping[str, Handler] = {
    InterlockChanged.type: on_interlock_changed,
}
