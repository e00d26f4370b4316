"""Helpers for the process API tests: telemetry applied through the use cases, a clock, problems.

Parts exist only through telemetry, so tests feed reports into the use cases directly (the
same calls the event handlers make) and then look at the result over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx

from services.process.usecases import machines as machine_usecases
from services.process.usecases import telemetry
from shared.api import now
from shared.events import InterlockChanged, PartCompleted, Payload, ProgramLoaded, ToolChanged, VariablesChanged

# A fixed point in time most tests build on: Monday 2024-06-03 12:00 UTC.
T0 = datetime(2024, 6, 3, 12, 0, tzinfo=UTC).timestamp()


def ts(text: str) -> float:
    """UNIX seconds of an ISO timestamp with an explicit offset, e.g. '2024-03-10T05:59:00+00:00'."""
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None, "give an explicit offset"
    return value.timestamp()


async def _apply(api: Any, event: Payload) -> None:
    handler = {
        PartCompleted: telemetry.part_completed,
        ProgramLoaded: telemetry.program_loaded,
        ToolChanged: telemetry.tool_changed,
        VariablesChanged: telemetry.variables_changed,
        InterlockChanged: machine_usecases.apply_interlock,
    }[type(event)]
    async with api.runtime.uow() as uow:
        await handler(uow, event)  # type: ignore[operator]
        await uow.commit()


async def load(api: Any, machine_id: int, program: str | None, at: float = T0) -> None:
    """The machine reports its loaded program (a filename, or None for none)."""
    await _apply(api, ProgramLoaded(machine_id=machine_id, timestamp=at, program=program))


async def part(api: Any, machine_id: int, at: float, program: str | None = None, increment: int = 1) -> None:
    """The machine reports `increment` finished cycles at `at`."""
    await _apply(api, PartCompleted(machine_id=machine_id, timestamp=at, increment=increment, program=program))


async def tool(api: Any, machine_id: int, location: str, at: float = T0) -> None:
    """The machine reports the tool location now in its spindle."""
    await _apply(api, ToolChanged(machine_id=machine_id, timestamp=at, tool=location))


async def variables(api: Any, machine_id: int, values: dict[str, Any], at: float = T0) -> None:
    await _apply(api, VariablesChanged(machine_id=machine_id, timestamp=at, variables=values))


async def interlock(api: Any, machine_id: int, blocked: bool, item_ids: list[int]) -> None:
    await _apply(api, InterlockChanged(machine_id=machine_id, blocked=blocked, item_ids=item_ids))


@contextmanager
def clock(api: Any, at: float) -> Iterator[None]:
    """Make the routes' `now` the given UNIX time."""
    app = api.client._transport.app
    app.dependency_overrides[now] = lambda: datetime.fromtimestamp(at, UTC)
    try:
        yield
    finally:
        app.dependency_overrides.pop(now, None)


def assert_problem(response: httpx.Response, status: int, *mentions: str) -> dict[str, Any]:
    """An RFC 9457 problem with that status whose detail mentions every given word."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["status"] == status
    for word in mentions:
        assert word in body["detail"], f"{word!r} not in {body['detail']!r}"
    return body


async def problem(api: Any, method: str, url: str, status: int, *mentions: str, role: str = "admin",
                  **kwargs: Any) -> dict[str, Any]:
    return assert_problem(await api.call(method, url, role, **kwargs), status, *mentions)


async def payloads(api: Any, type: str) -> list[dict[str, Any]]:
    """The `data` of every published event of that type, oldest first."""
    return [e.data for e in await api.events(type)]
