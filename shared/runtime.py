"""What every service is made of at run time, and the app that serves one or several.

A service module describes itself with a `ServiceSpec` (tables, routers, subscriptions,
migrations); `ServiceRuntime` gives it an engine, units of work, an outbox relay and a
consumer; `build_app` serves one runtime (`taktline serve`) or several in one process
(`taktline run`), each slice keeping its own OpenAPI document.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from sqlalchemy import MetaData, Table, text

from shared.auth import Authenticator
from shared.consumer import BatchPrepare, Consumer, Handler
from shared.db import dispose, make_engine, make_sessionmaker
from shared.errors import install_error_handlers
from shared.migrations import upgrade
from shared.observability import RequestContextMiddleware, health_router
from shared.outbox import OutboxRelay
from shared.read_cache import CachedReads, CachedReadsMiddleware, ReadCache, ReadKey
from shared.read_revision import RevisionReader
from shared.settings import Settings
from shared.transport.base import Transport
from shared.uow import UnitOfWork

log = logging.getLogger("taktline.runtime")

# Allocations (net of frees) between young-generation collections in a server process.
GC_YOUNG_THRESHOLD = 20_000

Hook = Callable[["ServiceRuntime"], Awaitable[None]]


@dataclass
class ServiceSpec:
    name: str
    metadata: MetaData
    outbox: Table
    inbox: Table
    migrations: Path
    routers: Sequence[APIRouter] = ()
    subscriptions: Mapping[str, Handler] = field(default_factory=dict)
    prepare_batch: BatchPrepare | None = None  # see shared/consumer.py
    on_start: Sequence[Hook] = ()
    background: Sequence[Callable[[ServiceRuntime], Awaitable[None]]] = ()
    # Least time between two relay rounds (s). A service whose outbox many small writes feed (the
    # collector's HTTP pushes) coalesces them; one fed by consumer batches publishes each at once.
    relay_round_interval: Callable[[Settings], float] = lambda _: 0.0
    # GETs answered from the read cache (shared/read_cache.py; needs the read_revision table).
    read_key: ReadKey | None = None
    read_roles: frozenset[str] = frozenset()


class ServiceRuntime:
    def __init__(self, spec: ServiceSpec, settings: Settings, transport: Transport) -> None:
        self.spec = spec
        self.name = spec.name
        self.settings = settings
        self.transport = transport
        self.schema = settings.schema_for(spec.name)
        self.engine = make_engine(settings.database_url_for(spec.name), schema=self.schema,
                                  pre_ping=settings.database_pre_ping, application_name=f"taktline-{spec.name}")
        self.sessions = make_sessionmaker(self.engine)
        self.reads = CachedReads(
            spec.read_key, spec.read_roles, ReadCache(int(settings.read_cache_mb * 2**20)),
            RevisionReader(self.engine, self.schema),
        ) if spec.read_key and settings.read_cache_mb else None
        self.relay = OutboxRelay(
            spec.name, self.sessions, spec.outbox, transport,
            batch_size=settings.relay_batch_size, interval=settings.relay_interval,
            retention=timedelta(hours=settings.outbox_retention_hours), lock_scope=f"{self.schema}.{spec.name}",
            events_per_message=settings.events_per_message, round_interval=spec.relay_round_interval(settings),
        )
        self.consumer = Consumer(
            service=spec.name, queue=f"{settings.queue_prefix}{spec.name}", transport=transport,
            uow_factory=self.uow, inbox=spec.inbox, subscriptions=spec.subscriptions,
            prepare=spec.prepare_batch,
            batch_size=settings.consumer_batch_size,
            batch_wait=settings.consumer_batch_wait_ms / 1000, prefetch=settings.consumer_prefetch,
            inbox_retention=timedelta(hours=settings.inbox_retention_hours),
        ) if spec.subscriptions else None
        self._tasks: list[asyncio.Task[None]] = []

    def uow(self, principal: str | None = None) -> UnitOfWork:
        return UnitOfWork(self.sessions, producer=self.name, outbox=self.spec.outbox,
                          on_commit=self.relay.wake, principal=principal)

    async def migrate(self) -> None:
        await upgrade(self.engine, self.spec.migrations, self.schema)

    async def start(self, *, migrate: bool = True) -> None:
        if migrate:
            await self.migrate()
        for hook in self.spec.on_start:
            await hook(self)
        self._tasks.append(asyncio.create_task(self.relay.run(), name=f"relay:{self.name}"))
        for job in self.spec.background:
            self._tasks.append(asyncio.create_task(job(self), name=f"job:{self.name}"))
        if self.consumer:
            await self.consumer.start()

    async def stop(self) -> None:
        if self.consumer:
            await self.consumer.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.reads:
            await self.reads.reader.close()
        await dispose(self.engine)

    async def database_ready(self) -> bool:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True


def _slice_openapi(app: FastAPI, runtime: ServiceRuntime) -> Callable[[], Awaitable[JSONResponse]]:
    cache: dict[str, Any] = {}

    async def openapi() -> JSONResponse:
        if not cache:
            routes = [r for router in runtime.spec.routers for r in router.routes]
            cache.update(get_openapi(title=f"Taktline {runtime.name} service",
                                     version=app.version, routes=routes))
        return JSONResponse(cache)

    return openapi


def build_app(
    runtimes: Sequence[ServiceRuntime],
    settings: Settings,
    transport: Transport,
    *,
    title: str = "Taktline",
    migrate: bool = True,
    extra_lifespan: Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]] | None = None,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await transport.start()
        started: list[ServiceRuntime] = []
        try:
            for runtime in runtimes:
                await runtime.start(migrate=migrate)
                started.append(runtime)
            if getattr(app.state, "freeze_gc", False):
                # A server process (`taktline serve|run`): what exists now (modules, models,
                # routes, pools) lives as long as the process; keeping it out of the cyclic GC's
                # scans saves a third of the CPU of large reads. Not in tests: frozen garbage stays.
                gc.collect()
                gc.freeze()
                # Requests and batches hold thousands of young objects for a moment (ORM rows,
                # frames, models) that refcounting frees; at the default threshold of 700 the
                # collector scanned them ~35 times a second under load, 6-7% of each service's
                # CPU; at 20,000 about 3% (docs/performance.md).
                gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
            if extra_lifespan:
                async with extra_lifespan(app):
                    yield
            else:
                yield
        finally:
            for runtime in reversed(started):
                await runtime.stop()
            await transport.close()

    app = FastAPI(title=title, version="0.1.0", lifespan=lifespan, docs_url="/api/docs",
                  openapi_url="/api/openapi.json", redoc_url=None)
    app.state.settings = settings
    app.state.authenticator = Authenticator(settings)
    app.state.runtimes = {r.name: r for r in runtimes}
    app.state.transport = transport
    install_error_handlers(app)
    if any(r.reads for r in runtimes):
        app.add_middleware(CachedReadsMiddleware, state=app.state)  # inside the request context
    app.add_middleware(RequestContextMiddleware)

    def checks(_: Request) -> list[tuple[str, Callable[[], Awaitable[bool]]]]:
        found: list[tuple[str, Callable[[], Awaitable[bool]]]] = [
            (f"database:{r.name}", r.database_ready) for r in runtimes
        ]
        found.append(("broker", transport.ready))
        return found

    app.include_router(health_router(checks))
    for runtime in runtimes:
        for router in runtime.spec.routers:
            app.include_router(router)
        app.add_api_route(f"/api/{runtime.name}/openapi.json", _slice_openapi(app, runtime),
                          include_in_schema=False)
    return app
