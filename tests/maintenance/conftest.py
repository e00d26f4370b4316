"""Harness for the maintenance service: its app over HTTP on SQLite or PostgreSQL (migrated once
per session, emptied per test: tests/migrated.py), tokens, published events, and the process
service's events applied through the same handlers the consumer calls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.maintenance import handlers
from services.maintenance.app import spec
from shared.events import Envelope, MachineUpserted, Payload, ProcessUpserted
from tests.migrated import Migrated, served
from tests.process.conftest import BACKENDS, Delivery, Harness, RecordingTransport


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


@pytest.fixture(scope="session")
def _maintenance_migrated() -> Iterator[Migrated]:
    migrated = Migrated("maintenance", spec)
    yield migrated
    migrated.drop()


@pytest.fixture(params=BACKENDS)
async def api(request: pytest.FixtureRequest, tmp_path: Path,
              _maintenance_migrated: Migrated) -> AsyncIterator[MaintenanceHarness]:
    """The maintenance service over HTTP on one backend; each test gets an empty database."""
    transport = RecordingTransport()
    runtime = await _maintenance_migrated.runtime(request, tmp_path, transport)
    async with served(runtime, transport) as client:
        yield MaintenanceHarness(client=client, runtime=runtime, transport=transport)
