"""The embedded default (`taktline run`): every available service in one process.

One transport (in-memory, or RabbitMQ when `amqp_url` is set) is shared by all services;
each keeps its own database (a SQLite file per service under `data_dir` unless URLs are
given). `build_app` includes every service's routers in one app and chains their
lifespans; each slice keeps its own OpenAPI document (docs/decisions/0003).
"""

from __future__ import annotations

import contextlib

from fastapi import FastAPI

from services import registry, transports
from shared.runtime import ServiceRuntime, build_app
from shared.settings import Settings


def create_app(settings: Settings, *, migrate: bool = True) -> FastAPI:
    transport = transports.from_settings(settings)
    runtimes = [ServiceRuntime(registry.load_spec(name), settings, transport) for name in registry.available()]
    extra = None
    if settings.simulate:
        from services import demo

        by_name = {r.name: r for r in runtimes}

        def extra(_: FastAPI) -> contextlib.AbstractAsyncContextManager[None]:
            return demo.simulation(by_name["process"], by_name["collector"], settings.simulate,
                                   maintenance=by_name.get("maintenance"))

    return build_app(runtimes, settings, transport, migrate=migrate, extra_lifespan=extra)
