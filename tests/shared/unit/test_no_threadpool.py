"""No route runs on FastAPI's worker threads.

FastAPI calls a plain `def` endpoint or dependency through `run_in_threadpool`: a hand-off to a
worker thread and back on every request. On the collector's push route that hand-off was a
measurable share of the service's CPU (docs/performance.md), so every endpoint and dependency
the services declare is a coroutine (or an async generator)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from services import registry


def _runs_in_threadpool(call: Any) -> bool:
    if inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call):
        return False
    dunder = getattr(call, "__call__", None)  # noqa: B004 (an instance used as a dependency)
    return not (inspect.iscoroutinefunction(dunder) or inspect.isasyncgenfunction(dunder))


def _threaded(dependant: Dependant) -> set[str]:
    found: set[str] = set()
    for sub in dependant.dependencies:
        if sub.call is not None and _runs_in_threadpool(sub.call):
            found.add(getattr(sub.call, "__qualname__", repr(sub.call)))
        found |= _threaded(sub)
    return found


def test_a_plain_def_dependency_is_detected() -> None:
    def sync_dep() -> int:
        return 1

    async def async_dep() -> int:
        return 1

    assert _runs_in_threadpool(sync_dep)
    assert not _runs_in_threadpool(async_dep)


@pytest.mark.parametrize("service", registry.available())
def test_no_endpoint_or_dependency_runs_on_a_worker_thread(service: str) -> None:
    threaded: dict[str, set[str]] = {}
    for router in registry.load_spec(service).routers:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                continue
            names = _threaded(route.dependant)
            if _runs_in_threadpool(route.endpoint):
                names.add(route.endpoint.__qualname__)
            if names:
                threaded[route.path] = names
    assert threaded == {}, "make these `async def`"
