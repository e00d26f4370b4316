"""The scheduler pass: each warning and due raised once per occurrence, reminders queued,
events published, and a due critical item blocking its machine until its entry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.maintenance.usecases import scheduler
from shared.events import AlarmRaised, PartRecorded
from tests.maintenance.conftest import MaintenanceHarness

T0 = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


async def _scan(api: MaintenanceHarness, now: datetime) -> int:
    async with api.runtime.uow() as uow:
        raised = await scheduler.scan(uow, now)
        await uow.commit()
    return raised


async def _channel(api: MaintenanceHarness) -> int:
    row = await api.ok("PUT", "/api/notifications/channels/", 201,
                       json={"name": "Shop", "kind": "webhook", "url": "http://127.0.0.1:9/hook"})
    return int(row["id"])


class TestScan:
    async def test_warns_then_raises_due_once_each_with_reminders_and_events(self, api: MaintenanceHarness) -> None:
        channel = await _channel(api)
        item = await api.item(timer_interval=24, warning_interval=2, initial_entry=T0.timestamp(),
                              remind_channel_id=channel)
        assert await _scan(api, T0 + 21 * HOUR) == 0
        assert await _scan(api, T0 + 22 * HOUR) == 1
        assert await _scan(api, T0 + 23 * HOUR) == 0  # the same warning is not raised twice
        assert await _scan(api, T0 + 24 * HOUR) == 1
        assert await _scan(api, T0 + 30 * HOUR) == 0  # nor the same due
        kinds = sorted(a["kind"] for a in (await api.ok("GET", "/api/alerts/")).values())
        assert kinds == ["due", "warning"]
        deliveries = (await api.ok("GET", "/api/notifications/deliveries/")).values()
        assert sorted(d["payload"]["kind"] for d in deliveries) == ["due", "warning"]
        [warning] = await api.events("maintenance.item_warning")
        [due] = await api.events("maintenance.item_due")
        assert warning.data["due_at"] == due.data["due_at"] == (T0 + 24 * HOUR).timestamp()
        assert due.data["item_id"] == item["id"]

    async def test_an_entry_starts_the_next_occurrence(self, api: MaintenanceHarness) -> None:
        item = await api.item(timer_interval=24, initial_entry=T0.timestamp())
        assert await _scan(api, T0 + 25 * HOUR) == 1
        await api.entry(item["id"], time=(T0 + 25 * HOUR).timestamp())
        assert await _scan(api, T0 + 26 * HOUR) == 0
        assert await _scan(api, T0 + 49 * HOUR) == 1
        assert len(await api.events("maintenance.item_due")) == 2

    async def test_a_due_critical_item_blocks_its_machine_until_the_entry(self, api: MaintenanceHarness) -> None:
        await api.known_machine(3)
        item = await api.item(machine_id=3, is_critical=True, trigger_alarms=["DOOR"])
        await api.apply(AlarmRaised(machine_id=3, timestamp=T0.timestamp(), alarm_id=77, message="DOOR"))
        assert await _scan(api, T0 + HOUR) == 1
        [due] = await api.events("maintenance.item_due")
        assert (due.data["trigger_alarm_id"], due.data["is_critical"]) == (77, True)
        [blocked] = await api.events("maintenance.interlock_changed")
        assert blocked.data == {"machine_id": 3, "blocked": True, "item_ids": [item["id"]]}
        await api.entry(item["id"])
        lifted = (await api.events("maintenance.interlock_changed"))[-1]
        assert lifted.data == {"machine_id": 3, "blocked": False, "item_ids": []}

    async def test_a_run_time_item_comes_due_when_its_timer_reaches_the_interval(
        self, api: MaintenanceHarness,
    ) -> None:
        await api.known_machine(1)
        await api.known_process(5, machine_id=1, time_per_cycle=30.0)
        await api.item(machine_id=1, schedule_mode=1, timer_interval=1)
        assert await _scan(api, T0) == 0
        await api.apply(PartRecorded(part_id=1, machine_id=1, process_id=5, program_id=None,
                                     finished=T0.timestamp(), count=2, cycles=2))
        assert await _scan(api, T0 + HOUR) == 1
        assert await _scan(api, T0 + 2 * HOUR) == 0

    async def test_disabled_items_raise_nothing(self, api: MaintenanceHarness) -> None:
        await api.known_machine(1, archived=True)
        await api.item(machine_id=1, timer_interval=1, initial_entry=T0.timestamp())
        assert await _scan(api, T0 + 5 * HOUR) == 0

    async def test_deleting_a_blocking_item_lifts_the_interlock(self, api: MaintenanceHarness) -> None:
        await api.known_machine(3)
        item = await api.item(machine_id=3, is_critical=True, timer_interval=1, initial_entry=T0.timestamp())
        assert await _scan(api, T0 + 2 * HOUR) == 1
        assert (await api.call("DELETE", f"/api/maintenance/items/{item['id']}")).status_code == 204
        lifted = (await api.events("maintenance.interlock_changed"))[-1]
        assert lifted.data == {"machine_id": 3, "blocked": False, "item_ids": []}
