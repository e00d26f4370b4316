"""Health, readiness, metrics and the request-id middleware."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.logs import request_id_var
from shared.metrics import HTTP_LATENCY, HTTP_REQUESTS

Check = Callable[[], Awaitable[bool]]


class RequestContextMiddleware:
    """Gives every request an id (X-Request-ID in and out) and records its metrics.

    Per request this is on every service's hot path (an edge pushes many times a second), so the
    id is a random per-process prefix and a counter (unique, no `os.urandom` call per request),
    and each route's metric children are looked up once (`labels()` takes a lock and hashes)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._prefix = uuid.uuid4().hex[:16]
        self._counter = itertools.count()
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _metrics(self, method: str, path: str, status: int) -> tuple[Any, Any]:
        key = (method, path, status)
        children = self._children.get(key)
        if children is None:
            if len(self._children) >= 10_000:  # routes and methods are few; stay bounded regardless
                self._children.clear()
            children = self._children[key] = (HTTP_REQUESTS.labels(method, path, str(status)),
                                              HTTP_LATENCY.labels(method, path))
        return children

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v for k, v in scope.get("headers") or () if k == b"x-request-id"), b"").decode("latin-1")[:64]
        request_id = incoming or f"{self._prefix}{next(self._counter):016x}"
        token = request_id_var.set(request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            requests, latency = self._metrics(scope["method"], getattr(route, "path", "unmatched"), status)
            requests.inc()
            latency.observe(time.perf_counter() - started)
            request_id_var.reset(token)


def health_router(checks: Callable[[Request], Sequence[tuple[str, Check]]]) -> APIRouter:
    """`/healthz` (the process answers), `/readyz` (every dependency answers), `/metrics`."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        results: dict[str, bool] = {}
        for name, check in checks(request):
            try:
                results[name] = await check()
            except Exception:
                results[name] = False
        ok = all(results.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": results},
                            status_code=200 if ok else 503)

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
