"""Composition root of the process service: its spec, and an app for `taktline serve process`."""

from __future__ import annotations

from pathlib import Path

from services.process import handlers, models
from services.process.api import processes as processes_api
from services.process.api import routers
from services.process.usecases import settings as settings_usecases
from shared.auth import EVERYONE
from shared.runtime import ServiceSpec

NAME = "process"


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
        on_start=(settings_usecases.ensure_defaults,),
        read_key=processes_api.read_key,
        read_roles=frozenset(EVERYONE),
    )

