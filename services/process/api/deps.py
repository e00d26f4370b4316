"""Dependencies of the process routes: the unit of work per request and a read session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import utcnow
from shared.runtime import ServiceRuntime
from shared.uow import UnitOfWork

SERVICE = "process"


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
