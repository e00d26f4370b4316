"""Dependencies of the collector routes: the unit of work per request and a read session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.collector.models import INT32_MAX, INT32_MIN
from services.collector.sources.http_push import Pusher
from services.collector.usecases.known_states import KnownStates
from services.collector.usecases.push_sources import PushSources
from shared.runtime import ServiceRuntime
from shared.uow import UnitOfWork

SERVICE = "collector"


def _runtime(request: Request) -> ServiceRuntime:
    return request.app.state.runtimes[SERVICE]


async def _uow(request: Request) -> AsyncIterator[UnitOfWork]:
    # Committed before the response is sent: a client never sees success for a change that did not commit.
    async with _runtime(request).uow() as uow:
        yield uow
        await uow.commit()


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with _runtime(request).sessions() as session:
        yield session


async def _push_sources(request: Request) -> PushSources:
    """One cache per app (its state outlives requests; `taktline run` serves all services in one app).
    Async: FastAPI runs a plain `def` dependency on a worker thread, a thread hand-off per push."""
    state = request.app.state
    cache: PushSources | None = getattr(state, "collector_push_sources", None)
    if cache is None:
        cache = state.collector_push_sources = PushSources(_runtime(request).settings.collector_supervise_interval)
    return cache


async def _pusher(request: Request) -> Pusher:
    """What an HTTP push needs, in one dependency: the push is the collector's hottest route, and
    FastAPI resolves each dependency on every request (a generator one through an exit stack)."""
    state = request.app.state
    pusher: Pusher | None = getattr(state, "collector_pusher", None)
    if pusher is None:
        pusher = state.collector_pusher = Pusher(_runtime(request).uow, await _push_sources(request), KnownStates())
    return pusher


UowDep = Annotated[UnitOfWork, Depends(_uow, scope="function")]
SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]
PushSourcesDep = Annotated[PushSources, Depends(_push_sources)]
PusherDep = Annotated[Pusher, Depends(_pusher)]
IdFilter = Annotated[int | None, Query(ge=INT32_MIN, le=INT32_MAX)]
UnixTime = Annotated[float | None, Query(ge=0, le=253_402_300_799, allow_inf_nan=False)]
