"""FastAPI dependencies every service's routes use: a unit of work per request, a read
session, the clock, and query parameters bounded so bad values are 400s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import utcnow
from shared.schemas import INT32_MAX, INT32_MIN, UNIX_MAX
from shared.uow import UnitOfWork


async def now() -> datetime:
    """The request's clock (async: a sync dependency would cost a hop to a thread)."""
    return utcnow()


NowDep = Annotated[datetime, Depends(now)]
IdFilter = Annotated[int | None, Query(ge=INT32_MIN, le=INT32_MAX)]
UnixTime = Annotated[float | None, Query(ge=0, le=UNIX_MAX, allow_inf_nan=False)]


def service_dependencies(service: str) -> tuple[Any, Any]:
    """(UowDep, SessionDep) for the routes of `service`, found in `app.state.runtimes`."""

    async def uow(request: Request) -> AsyncIterator[UnitOfWork]:
        async with request.app.state.runtimes[service].uow() as unit:
            yield unit
            await unit.commit()

    async def session(request: Request) -> AsyncIterator[AsyncSession]:
        async with request.app.state.runtimes[service].sessions() as s:
            yield s

    # scope="function": the commit happens before the response is sent, so a client never
    # sees success for a change that did not commit.
    return (Annotated[UnitOfWork, Depends(uow, scope="function")],
            Annotated[AsyncSession, Depends(session, scope="function")])
