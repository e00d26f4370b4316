"""Harness for the maintenance service: its app over HTTP on SQLite or PostgreSQL (migrated once
per session, emptied per test, like tests/process/api), tokens, published events, and the
process service's events applied through the same handlers the consumer calls."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.maintenance import handlers
from services.maintenance.app import spec
from shared.events import Envelope, MachineUpserted, Payload, ProcessUpserted
from shared.runtime import ServiceRuntime, build_app
from shared.settings import Settings
from tests.process.conftest import BACKENDS, SECRET, Delivery, Harness, RecordingTransport, _drop_schema


@dataclass
class MaintenanceHarness(Harness):
    async def apply(self, event: Payload) -> None:
        """Deliver one event the way the consumer does (one unit of work, committed)."""
        envelope = Envelope.wrap(event, "process")
        async with self.runtime.uow() as uow:
            await handlers.SUBSCRIPTIONS[event.type](uow, event, envelope)
            await uow.commit()

    async def apply_batch(self, *events: Payload) -> list[Delivery]:
        """Deliver events as one consumer batch (inbox, prepare_batch, handlers, one commit)."""
        assert self.runtime.consumer is not None
        deliveries = [Delivery.of(event, "process") for event in events]
        await self.runtime.consumer.handle_batch(deliveries)  # type: ignore[arg-type]
        return deliveries

    async def known_machine(self, machine_id: int = 1, **fields: Any) -> None:
        await self.apply(MachineUpserted(machine_id=machine_id, name=f"M{machine_id}",
                                         archived=fields.get("archived", False),
                                         active_process_id=fields.get("active_process_id")))

    async def known_process(self, process_id: int, machine_id: int, time_per_cycle: float | None = 2.0) -> None:
        await self.apply(ProcessUpserted(process_id=process_id, machine_id=machine_id, name=f"P{process_id}",
                                         archived=False, time_per_cycle=time_per_cycle))

    async def item(self, **fields: Any) -> dict[str, Any]:
        body = {"item_type": "task", "name": "Grease ways", **fields}
        return await self.ok("PUT", "/api/maintenance/items/", 201, json=body)  # type: ignore[no-any-return]

    async def entry(self, item_id: int, status: int = 201, role: str = "shop", **fields: Any) -> dict[str, Any]:
        return await self.ok("PUT", "/api/maintenance/entries/", status, role=role,  # type: ignore[no-any-return]
                             json={"item_id": item_id, **fields})


def _settings(url: str, prefix: str, data_dir: Path) -> Settings:
    return Settings(database_url=url, database_schema_prefix=prefix, auth_secret=SECRET, data_dir=data_dir,
                    relay_interval=3600, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def _maintenance_migrated() -> Iterator[dict[str, str]]:
    found: dict[str, str] = {}
    yield found
    for key, prefix in found.items():
        if key.startswith("postgresql"):
            asyncio.run(_drop_schema(key, f"{prefix}maintenance"))


async def _empty(runtime: ServiceRuntime) -> None:
    schema = runtime.schema
    async with runtime.engine.begin() as conn:
        sequences = (await conn.execute(text(
            "SELECT sequence_name FROM information_schema.sequences WHERE sequence_schema = :schema"
        ), {"schema": schema})).scalars().all()
        statements = [f'DELETE FROM "{schema}"."{t.name}";' for t in reversed(runtime.spec.metadata.sorted_tables)]
        statements += [f'ALTER SEQUENCE "{schema}"."{name}" RESTART;' for name in sequences]
        await conn.exec_driver_sql(f"DO $$ BEGIN {' '.join(statements)} END $$")


@pytest.fixture(params=BACKENDS)
async def api(request: pytest.FixtureRequest, tmp_path: Path,
              _maintenance_migrated: dict[str, str]) -> AsyncIterator[MaintenanceHarness]:
    """The maintenance service over HTTP on one backend; each test gets an empty database."""
    migrated = _maintenance_migrated
    transport = RecordingTransport()
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        first = url not in migrated
        prefix = migrated.setdefault(url, f"t{uuid.uuid4().hex[:10]}_")
        runtime = ServiceRuntime(spec(), _settings(url, prefix, tmp_path), transport)
        if not first:
            await _empty(runtime)
    else:
        database = tmp_path / "maintenance.db"
        template = migrated.get("sqlite")
        if template is None:
            template_dir = request.getfixturevalue("tmp_path_factory").mktemp("maintenance-template")
            template = str(template_dir / "maintenance.db")
            migrator = ServiceRuntime(spec(), _settings(f"sqlite:///{template}", "", template_dir), transport)
            await migrator.migrate()
            await migrator.engine.dispose()
            migrated["sqlite"] = template
        shutil.copyfile(template, database)
        runtime = ServiceRuntime(spec(), _settings(f"sqlite:///{database}", "", tmp_path), transport)
    app = build_app([runtime], runtime.settings, transport)
    async with app.router.lifespan_context(app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://taktline.test")
        async with client:
            yield MaintenanceHarness(client=client, runtime=runtime, transport=transport)
