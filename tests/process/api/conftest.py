"""A faster `api` for the HTTP API tests: the same Harness on a database migrated once per
session (tests/migrated.py), where tests/process/conftest.py migrates a fresh one per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.process.app import spec
from tests.migrated import Migrated, served
from tests.process.conftest import BACKENDS, Harness, RecordingTransport


@pytest.fixture(scope="session")
def _migrated() -> Iterator[Migrated]:
    migrated = Migrated("process", spec)
    yield migrated
    migrated.drop()


@pytest.fixture(params=BACKENDS)
async def api(request: pytest.FixtureRequest, tmp_path: Path, _migrated: Migrated) -> AsyncIterator[Harness]:
    """The process service over HTTP on one backend; each test gets an empty database."""
    transport = RecordingTransport()
    runtime = await _migrated.runtime(request, tmp_path, transport)
    async with served(runtime, transport) as client:
        yield Harness(client=client, runtime=runtime, transport=transport)
