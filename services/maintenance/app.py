"""Composition root of the maintenance service: its spec, and an app for `taktline serve maintenance`."""

from __future__ import annotations

from pathlib import Path

from services.maintenance import handlers, models
from services.maintenance.api import routers
from services.maintenance.usecases import notifier, readmodel, scheduler
from shared.runtime import ServiceSpec

NAME = "maintenance"


def spec() -> ServiceSpec:
    return ServiceSpec(
        name=NAME,
        metadata=models.Base.metadata,
        outbox=models.outbox,
        inbox=models.inbox,
        migrations=Path(__file__).parent / "migrations",
        routers=routers(),
        subscriptions=handlers.SUBSCRIPTIONS,
        prepare_batch=handlers.prepare_batch,
        on_start=(readmodel.request_sync_if_empty,),
        background=(scheduler.run, notifier.run),
    )
