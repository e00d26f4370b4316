"""Dependencies of the maintenance routes: the unit of work per request and a read session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.maintenance.models import INT32_MAX, INT32_MIN
from shared.db import utcnow
from shared.runtime import ServiceRuntime
from shared.uow import UnitOfWork

SERVICE = "maintenance"


def _runtime(request: Request) -> ServiceRuntime:
    return request.app.state.runtimes[SERVICE]


async def _uow(request: Request) -> AsyncIterator[UnitOfWork]:
    # scope="function" below: the commit happens before the response is sent, so a
    # client never sees success for a change that did not commit.
    async with _runtime(request).uow() as uow:
        yield uow
        await uow.commit()


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with _runtime(request).sessions() as session:
        yield session


UowDep = Annotated[UnitOfWork, Depends(_uow, scope="function")]
SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]
NowDep = Annotated[datetime, Depends(utcnow)]
# Query filters: an id filter that fits an INTEGER column; a UNIX time a datetime can hold
# (1970 up to the end of 9999). Anything else is a 400 naming the parameter, never a 500.
IdFilter = Annotated[int | None, Query(ge=INT32_MIN, le=INT32_MAX)]
UnixTime = Annotated[float | None, Query(ge=0, le=253_402_300_799, allow_inf_nan=False)]
IdList = Annotated[list[Annotated[int, Query(ge=INT32_MIN, le=INT32_MAX)]], Query()]
Limit = Annotated[int | None, Query(ge=0, le=INT32_MAX)]
Offset = Annotated[int, Query(ge=0, le=INT32_MAX)]
