"""Cached read responses, valid while the service's read revision (shared/read_revision.py) stays.

A dashboard asks for the same lists every few seconds while they change a few times a shift.
Each request still reads the revision (one small query, so another replica's change is seen at
once), then answers from memory when nothing changed, or `304 Not Modified` when the client
already holds that revision (`If-None-Match`). A change anywhere in the watched tables drops
every body: simple, and always right.
"""

from __future__ import annotations

import gzip
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from fastapi import Request, Response
from pydantic_core import to_json
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.auth import AuthError
from shared.read_revision import RevisionReader

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


GZIP_MIN = 1024  # smaller bodies go as they are: compressing them saves less than it costs


def _matches(if_none_match: str | None, revision: str) -> str | None:
    """The client's tag that is current (RFC 9110 13.1.2: weak comparison against a list of
    tags, of either encoding), or None. `*` is not honoured: it would need to know that the
    resource exists, which only building it tells."""
    plain = f'"{revision}"'
    for tag in (if_none_match or "").split(","):
        tag = tag.strip().removeprefix("W/")
        if tag in (plain, f'"{revision}-gzip"'):
            return tag
    return None


def _wants_gzip(accept_encoding: str | None) -> bool:
    for coding in (accept_encoding or "").split(","):
        name, _, params = coding.partition(";")
        if name.strip().lower() == "gzip":
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _answer(cache: ReadCache, key: Hashable, revision: str, request_headers: dict[str, str],
            identity: bytes | None) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
    """Status, headers and body for `key` at `revision`: 304 when the client's tag is current,
    else the cached body (gzip when the client takes it), or None when nothing is cached and
    `identity` (a freshly built body) is not given."""
    held = _matches(request_headers.get("if-none-match"), revision)
    if held is not None:
        status, body, gzipped = 304, b"", held.endswith('-gzip"')
    else:
        if identity is None:
            identity = cache.get(key, revision)
            if identity is None:
                return None
        else:
            cache.put(key, revision, identity)
        status, body, gzipped = 200, identity, False
        if len(identity) >= GZIP_MIN and _wants_gzip(request_headers.get("accept-encoding")):
            packed = cache.get((key, "gzip"), revision)
            if packed is None:
                packed = gzip.compress(identity, compresslevel=6, mtime=0)
                cache.put((key, "gzip"), revision, packed)
            body, gzipped = packed, True
    etag = f'"{revision}-gzip"' if gzipped else f'"{revision}"'
    headers = [(b"etag", etag.encode()), (b"cache-control", CACHE_CONTROL.encode()),
               (b"vary", b"accept-encoding")]
    if status == 200:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if gzipped:
            headers.append((b"content-encoding", b"gzip"))
    return status, headers, body


class CachedReads:
    """A service's cached reads: which requests (`key`), who may make them, the bodies, the revision."""

    def __init__(self, key: ReadKey, roles: frozenset[str], cache: ReadCache, reader: RevisionReader) -> None:
        self.key, self.roles, self.cache, self.reader = key, roles, cache, reader


# (path, query string) -> the cache key of a cacheable GET, or None. The key's first element is
# the route's path template (for metrics).
ReadKey = Callable[[str, bytes], "tuple[Any, ...] | None"]


async def cached_json(request: Request, reads: CachedReads | None, build: Callable[[], Awaitable[Any]]) -> Response:
    """The JSON body `build` makes, from the cache when the revision has not moved since it was made.
    The route's side: it validates the request first; CachedReadsMiddleware answers hits before."""
    key = reads.key(request.scope["path"], request.scope["query_string"]) if reads is not None else None
    revision = await reads.reader.get() if reads is not None and key is not None else None
    if reads is None or key is None or revision is None:
        return Response(json_body(await build()), media_type="application/json")
    headers = {"if-none-match": request.headers.get("if-none-match", ""),
               "accept-encoding": request.headers.get("accept-encoding", "")}
    answer = _answer(reads.cache, key, revision, headers, None)
    if answer is None:  # built after reading the revision: at least as new as its key
        answer = _answer(reads.cache, key, revision, headers, json_body(await build()))
    assert answer is not None
    status, raw_headers, body = answer
    response = Response(body, status_code=status)
    response.raw_headers = raw_headers
    return response


class _Route:
    """What RequestContextMiddleware reads from scope["route"] for its metrics."""

    def __init__(self, path: str) -> None:
        self.path = path


class CachedReadsMiddleware:
    """Answers a cache hit (or a 304) before routing, with the same checks as the route: a valid
    bearer token with an allowed role and a revision read after the request arrived. Anything
    else (a miss, no or a bad token, a database error, a request the key does not cover) goes on
    to the route, which gives the full answer or error. Routing, dependency injection and the
    request objects are most of the CPU of a cached answer; this skips them."""

    def __init__(self, app: ASGIApp, *, state: Any) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            for runtime in self.state.runtimes.values():
                reads: CachedReads | None = runtime.reads
                if reads is None:
                    continue
                key = reads.key(scope["path"], scope["query_string"])
                if key is not None:
                    if await self._answer(scope, send, reads, key):
                        return
                    break
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, send: Send, reads: CachedReads, key: tuple[Any, ...]) -> bool:
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name in (b"authorization", b"if-none-match", b"accept-encoding"):
                headers[name.decode()] = value.decode("latin-1")
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        try:
            principal = self.state.authenticator.verified(token.strip())
        except AuthError:
            return False
        if principal is None or not principal.roles & reads.roles:
            return False
        try:
            revision = await reads.reader.get()
        except Exception:
            return False  # the route reports it (503 when the database is down)
        answer = _answer(reads.cache, key, revision, headers, None) if revision is not None else None
        if answer is None:
            return False
        status, response_headers, body = answer
        scope["route"] = _Route(key[0])
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})
        return True
