"""Cached read responses, valid while the service's read revision (shared/read_revision.py) stays.

A dashboard asks for the same lists every few seconds while they change a few times a shift.
Each request still reads the revision (one small query, so another replica's change is seen at
once), then answers from memory when nothing changed, or `304 Not Modified` when the client
already holds that revision (`If-None-Match`). A change anywhere in the watched tables drops
every body: simple, and always right.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from fastapi import Request, Response
from pydantic_core import to_json
from sqlalchemy.ext.asyncio import AsyncSession

from shared import read_revision

# Clients must revalidate before reusing a body (it can change any second), and a shared cache
# must not keep it (the answer depends on the caller's token).
CACHE_CONTROL = "private, no-cache"


def json_body(content: Any) -> bytes:
    return to_json(content, inf_nan_mode="null")


class ReadCache:
    """Bodies by key for one revision at a time, least recently used first out past `max_bytes`."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.revision: str | None = None
        self._bodies: OrderedDict[Hashable, bytes] = OrderedDict()
        self._size = 0

    def get(self, key: Hashable, revision: str) -> bytes | None:
        if revision != self.revision:
            return None
        body = self._bodies.get(key)
        if body is not None:
            self._bodies.move_to_end(key)
        return body

    def put(self, key: Hashable, revision: str, body: bytes) -> None:
        if revision != self.revision:
            # Revisions only grow within an epoch, but two requests can finish in either order:
            # keep whichever arrived last. A body stored under an older revision is never served
            # for a newer one, so the worst case is a miss.
            self.clear()
            self.revision = revision
        if len(body) > self.max_bytes:
            return
        old = self._bodies.pop(key, None)
        if old is not None:
            self._size -= len(old)
        self._bodies[key] = body
        self._size += len(body)
        while self._size > self.max_bytes:
            _, dropped = self._bodies.popitem(last=False)
            self._size -= len(dropped)

    def clear(self) -> None:
        self._bodies.clear()
        self._size = 0

    def __len__(self) -> int:
        return len(self._bodies)


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 13.1.2: weak comparison against a list of tags. `*` is not honoured: it would
    need to know that the resource exists, which only building it tells."""
    if not if_none_match:
        return False
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


async def cached_json(
    request: Request, session: AsyncSession, cache: ReadCache | None, key: Hashable,
    build: Callable[[], Awaitable[Any]],
) -> Response:
    """The JSON body `build` makes, from `cache` when the revision has not moved since it was made."""
    revision = await read_revision.current(session) if cache is not None else None
    if cache is None or revision is None:
        return Response(json_body(await build()), media_type="application/json")
    etag = f'"{revision}"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    body = cache.get(key, revision)
    if body is None:
        body = json_body(await build())  # read after the revision: at least as new as its key
        cache.put(key, revision, body)
    return Response(body, media_type="application/json", headers=headers)
