"""A faster `api` for the HTTP API tests: the same Harness, a database migrated once per session.

tests/process/conftest.py migrates a fresh database for every test (new SQLite file, new
PostgreSQL schema dropped afterwards). With a couple of hundred API tests that setup is most of
the run time, so here each backend is migrated once: SQLite tests start from a copy of a
migrated template file, PostgreSQL tests share one schema that is emptied (rows deleted,
id sequences restarted) before each test. Every test still starts from an empty, migrated database, and the
service still runs its start-up (migrations up to date, default settings) as in production.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from services.process.app import spec
from shared.runtime import ServiceRuntime, build_app
from shared.settings import Settings
from tests.process.conftest import BACKENDS, SECRET, Harness, RecordingTransport, _drop_schema


def _settings(url: str, prefix: str, data_dir: Path) -> Settings:
    return Settings(database_url=url, database_schema_prefix=prefix, auth_secret=SECRET, data_dir=data_dir,
                    relay_interval=3600, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def _migrated() -> Iterator[dict[str, str]]:
    """backend key -> what its tests start from (template file or schema prefix); dropped at the end."""
    found: dict[str, str] = {}
    yield found
    for key, prefix in found.items():
        if key.startswith("postgresql"):
            asyncio.run(_drop_schema(key, f"{prefix}process"))


async def _empty(runtime: ServiceRuntime) -> None:
    """Delete every row and restart the id sequences (one round trip; faster than TRUNCATE here)."""
    schema = runtime.schema
    async with runtime.engine.begin() as conn:
        sequences = (await conn.execute(text(
            "SELECT sequence_name FROM information_schema.sequences WHERE sequence_schema = :schema"
        ), {"schema": schema})).scalars().all()
        # The read revision's row stays (a fresh migration has it; the deletes bump it).
        statements = [f'DELETE FROM "{schema}"."{t.name}";' for t in reversed(runtime.spec.metadata.sorted_tables)
                      if t.name != "read_revision"]
        statements += [f'ALTER SEQUENCE "{schema}"."{name}" RESTART;' for name in sequences]
        await conn.exec_driver_sql(f"DO $$ BEGIN {' '.join(statements)} END $$")


@pytest.fixture(params=BACKENDS)
async def api(request: pytest.FixtureRequest, tmp_path: Path, _migrated: dict[str, str]) -> AsyncIterator[Harness]:
    """The process service over HTTP on one backend; each test gets an empty database."""
    transport = RecordingTransport()
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        first = url not in _migrated  # the first test's start-up creates the schema
        prefix = _migrated.setdefault(url, f"t{uuid.uuid4().hex[:10]}_")
        runtime = ServiceRuntime(spec(), _settings(url, prefix, tmp_path), transport)
        if not first:
            await _empty(runtime)
    else:
        database = tmp_path / "process.db"
        template = _migrated.get("sqlite")
        if template is None:
            template_dir = request.getfixturevalue("tmp_path_factory").mktemp("process-template")
            template = str(template_dir / "process.db")
            migrator = ServiceRuntime(spec(), _settings(f"sqlite:///{template}", "", template_dir), transport)
            await migrator.migrate()
            await migrator.engine.dispose()
            _migrated["sqlite"] = template
        shutil.copyfile(template, database)
        runtime = ServiceRuntime(spec(), _settings(f"sqlite:///{database}", "", tmp_path), transport)
    app = build_app([runtime], runtime.settings, transport)
    async with app.router.lifespan_context(app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://taktline.test")
        async with client:
            yield Harness(client=client, runtime=runtime, transport=transport)
