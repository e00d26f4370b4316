"""Harness for the collector: its app on SQLite or PostgreSQL, tokens, published events."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.collector.app import spec
from shared.runtime import ServiceRuntime, build_app
from shared.settings import Settings
from shared.transport.base import Transport
from tests.process.conftest import BACKENDS, SECRET, Harness, RecordingTransport, _drop_schema

# Short timers so live-source tests react within a fraction of a second.
FAST = {"collector_supervise_interval": 0.05, "collector_poll_interval": 0.05, "collector_backoff_max": 0.5,
        "collector_heartbeat": 2.0, "collector_timeout": 2.0, "relay_interval": 0.05}


def collector_settings(url: str, prefix: str, data_dir: Path, **overrides: Any) -> Settings:
    return Settings(database_url=url, database_schema_prefix=prefix, auth_secret=SECRET, data_dir=data_dir,
                    **{**FAST, **overrides}, _env_file=None)  # type: ignore[arg-type]


HarnessFactory = Callable[..., Awaitable[Harness]]


@pytest.fixture(params=BACKENDS)
async def collector(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    """The collector over HTTP on one backend, with the in-memory transport recording what it publishes."""
    prefix = ""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        prefix = f"t{uuid.uuid4().hex[:10]}_"
    else:
        url = f"sqlite:///{tmp_path / 'collector.db'}"
    transport = RecordingTransport()
    try:
        async with serve(collector_settings(url, prefix, tmp_path), transport) as harness:
            yield harness
    finally:
        if prefix:
            await _drop_schema(url, f"{prefix}collector")


class serve:  # used as `async with serve(...)`, like a function
    """The collector app started (lifespan, background supervisor) with an HTTP client on it."""

    def __init__(self, settings: Settings, transport: Transport) -> None:
        self.runtime = ServiceRuntime(spec(), settings, transport)
        self.app = build_app([self.runtime], settings, transport)
        self.transport = transport
        self._lifespan: Any = None
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Harness:
        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://taktline.test")
        return Harness(client=self._client, runtime=self.runtime, transport=self.transport)  # type: ignore[arg-type]

    async def __aexit__(self, *exc: object) -> None:
        assert self._client is not None
        await self._client.aclose()
        await self._lifespan.__aexit__(None, None, None)
