"""Dependencies of the maintenance routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from shared.api import IdFilter, NowDep, UnixTime, service_dependencies
from shared.schemas import INT32_MAX, INT32_MIN

UowDep, SessionDep = service_dependencies("maintenance")
IdList = Annotated[list[Annotated[int, Query(ge=INT32_MIN, le=INT32_MAX)]], Query()]
Limit = Annotated[int | None, Query(ge=0, le=INT32_MAX)]
Offset = Annotated[int, Query(ge=0, le=INT32_MAX)]

__all__ = ["IdFilter", "IdList", "Limit", "NowDep", "Offset", "SessionDep", "UnixTime", "UowDep"]
