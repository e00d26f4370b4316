"""Service runtimes on a database migrated once per test session, for the HTTP API tests.

Migrating a fresh database for every test (a new SQLite file, a new PostgreSQL schema) was most
of the API tests' run time, so each backend is migrated once: SQLite tests start from a copy of a
migrated template file, PostgreSQL tests share one schema that is emptied (rows deleted, id
sequences restarted) before each test. Every test still starts from an empty, migrated database,
and the service still runs its start-up (migrations up to date, default settings) as in
production. Used by tests/process/api and tests/maintenance.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from shared.runtime import ServiceRuntime, ServiceSpec, build_app
from shared.settings import Settings
from shared.transport.base import Transport
from tests.process.conftest import SECRET, _drop_schema


def _settings(url: str, prefix: str, data_dir: Path) -> Settings:
    return Settings(database_url=url, database_schema_prefix=prefix, auth_secret=SECRET, data_dir=data_dir,
                    relay_interval=3600, _env_file=None)  # type: ignore[call-arg]


class Migrated:
    """One service's migrated starting points: backend key -> template file or schema prefix."""

    def __init__(self, service: str, spec: Callable[[], ServiceSpec]) -> None:
        self.service = service
        self.spec = spec
        self.found: dict[str, str] = {}

    def drop(self) -> None:
        for key, prefix in self.found.items():
            if key.startswith("postgresql"):
                asyncio.run(_drop_schema(key, f"{prefix}{self.service}"))

    async def runtime(self, request: pytest.FixtureRequest, tmp_path: Path, transport: Transport) -> ServiceRuntime:
        """A runtime on an empty, migrated database of the backend `request.param` names."""
        if request.param == "postgres":
            url = request.getfixturevalue("postgres_url")
            first = url not in self.found  # the first test's start-up creates the schema
            prefix = self.found.setdefault(url, f"t{uuid.uuid4().hex[:10]}_")
            runtime = ServiceRuntime(self.spec(), _settings(url, prefix, tmp_path), transport)
            if not first:
                await _empty(runtime)
            return runtime
        database = tmp_path / f"{self.service}.db"
        template = self.found.get("sqlite")
        if template is None:
            template_dir = request.getfixturevalue("tmp_path_factory").mktemp(f"{self.service}-template")
            template = str(template_dir / f"{self.service}.db")
            migrator = ServiceRuntime(self.spec(), _settings(f"sqlite:///{template}", "", template_dir), transport)
            await migrator.migrate()
            await migrator.engine.dispose()
            self.found["sqlite"] = template
        shutil.copyfile(template, database)
        return ServiceRuntime(self.spec(), _settings(f"sqlite:///{database}", "", tmp_path), transport)


async def _empty(runtime: ServiceRuntime) -> None:
    """Delete every row and restart the id sequences (one round trip; faster than TRUNCATE here)."""
    schema = runtime.schema
    async with runtime.engine.begin() as conn:
        sequences = (await conn.execute(text(
            "SELECT sequence_name FROM information_schema.sequences WHERE sequence_schema = :schema"
        ), {"schema": schema})).scalars().all()
        # A read revision's row stays (a fresh migration has it; the deletes bump it).
        statements = [f'DELETE FROM "{schema}"."{t.name}";' for t in reversed(runtime.spec.metadata.sorted_tables)
                      if t.name != "read_revision"]
        statements += [f'ALTER SEQUENCE "{schema}"."{name}" RESTART;' for name in sequences]
        await conn.exec_driver_sql(f"DO $$ BEGIN {' '.join(statements)} END $$")


@asynccontextmanager
async def served(runtime: ServiceRuntime, transport: Transport) -> AsyncIterator[httpx.AsyncClient]:
    """The runtime's app started (lifespan) with an in-process HTTP client on it."""
    app = build_app([runtime], runtime.settings, transport)
    async with app.router.lifespan_context(app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://taktline.test")
        async with client:
            yield client
