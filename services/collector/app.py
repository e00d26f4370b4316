"""Composition root of the collector: its spec, and an app for `taktline serve collector`."""

from __future__ import annotations

from pathlib import Path

from services.collector import handlers, models
from services.collector.api import routers
from services.collector.sources.supervisor import supervise
from shared.runtime import ServiceSpec

NAME = "collector"


def spec() -> ServiceSpec:
    return ServiceSpec(
        name=NAME,
        metadata=models.Base.metadata,
        outbox=models.outbox,
        inbox=models.inbox,
        migrations=Path(__file__).parent / "migrations",
        routers=routers(),
        subscriptions=handlers.SUBSCRIPTIONS,
        background=(supervise,),
        relay_round_interval=lambda settings: settings.collector_relay_round_ms / 1000,
    )
