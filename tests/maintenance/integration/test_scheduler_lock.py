"""On PostgreSQL only one replica's scheduler pass runs at a time (advisory lock)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.maintenance.usecases import scheduler
from tests.maintenance.conftest import MaintenanceHarness

T0 = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("api", ["postgres"], indirect=True)
async def test_a_second_pass_skips_while_another_holds_the_lock(api: MaintenanceHarness) -> None:
    await api.item(timer_interval=1, initial_entry=T0.timestamp())
    async with api.runtime.uow() as first, api.runtime.uow() as second:
        assert await scheduler.scan(first, datetime(2025, 1, 1, tzinfo=UTC)) == 1
        assert await scheduler.scan(second, datetime(2025, 1, 1, tzinfo=UTC)) == -1
        await first.commit()
    async with api.runtime.uow() as third:  # the lock went with the first transaction
        assert await scheduler.scan(third, datetime(2025, 1, 1, tzinfo=UTC)) == 0
