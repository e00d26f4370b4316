"""Query helpers every service's repository uses."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import NotFound
from shared.schemas import INT32_MAX, INT32_MIN

T = TypeVar("T")


async def get_or_404(session: AsyncSession, model: type[T], id: int, what: str) -> T:
    # An id no INTEGER column can hold exists nowhere (and must not reach the driver).
    found = await session.get(model, id) if INT32_MIN <= id <= INT32_MAX else None
    if found is None:
        raise NotFound(what, id)
    return found
