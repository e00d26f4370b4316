"""GET /schedule and POST /previewSchedule over the engine, with the read model deciding what counts."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.events import AlarmRaised, MachineUpserted, PartRecorded, ProcessChangedOver, SettingsUpdated
from tests.maintenance.conftest import MaintenanceHarness

SCHEDULE = "/api/maintenance/items/schedule"
PREVIEW = "/api/maintenance/items/previewSchedule"
T0 = datetime(2024, 6, 3, 12, 0, tzinfo=UTC).timestamp()  # a Monday
HOUR, DAY = 3600.0, 86400.0


async def _schedule(api: MaintenanceHarness, start: float = T0, end: float = T0 + 3 * DAY) -> dict[str, list[float]]:
    return await api.ok("GET", f"{SCHEDULE}?start={start:.0f}&end={end:.0f}")  # type: ignore[no-any-return]


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


class TestSchedule:
    async def test_returns_400_without_start_or_end(self, api: MaintenanceHarness) -> None:
        for query in ("", f"?start={T0:.0f}", f"?end={T0:.0f}", "?start=x&end=1", "?start=-5&end=1"):
            response = await api.call("GET", SCHEDULE + query)
            assert response.status_code == 400, query
        assert "end" in (await api.call("GET", f"{SCHEDULE}?start={T0:.0f}")).json()["detail"]

    async def test_clock_item_is_due_timer_interval_after_initial_entry(self, api: MaintenanceHarness) -> None:
        item = await api.item(timer_interval=24, initial_entry=T0)
        assert (await _schedule(api))[str(item["id"])] == [T0 + DAY, T0 + 2 * DAY]

    async def test_an_entry_moves_the_clock(self, api: MaintenanceHarness) -> None:
        item = await api.item(timer_interval=24, initial_entry=T0)
        await api.entry(item["id"], time=T0 + 6 * HOUR)
        assert (await _schedule(api))[str(item["id"])][0] == T0 + 30 * HOUR

    async def test_calendar_item_runs_the_1st_and_14th(self, api: MaintenanceHarness) -> None:
        item = await api.item(schedule_mode=2, frequency="M", indices=[1, 14], time_of_day="08:00", initial_entry=T0)
        dates = (await _schedule(api, T0, ts("2024-08-01T00:00:00+00:00")))[str(item["id"])]
        assert dates == [ts("2024-06-14T08:00:00+00:00"), ts("2024-07-01T08:00:00+00:00"),
                         ts("2024-07-14T08:00:00+00:00")]

    async def test_calendar_follows_the_shop_time_zone(self, api: MaintenanceHarness) -> None:
        await api.apply(SettingsUpdated(time_zone="America/Chicago", check_unused_tools_parts=5, part_report_limit=100))
        item = await api.item(schedule_mode=2, frequency="D", time_of_day="06:00", initial_entry=T0)
        dates = (await _schedule(api, T0, T0 + DAY))[str(item["id"])]
        assert dates == [ts("2024-06-04T06:00:00-05:00")]

    async def test_an_alarm_makes_the_item_due_at_the_alarm_time(self, api: MaintenanceHarness) -> None:
        await api.known_machine(1)
        item = await api.item(machine_id=1, timer_interval=240, initial_entry=T0, trigger_alarms=["LUBE LOW"])
        assert (await _schedule(api))[str(item["id"])] == []
        await api.apply(AlarmRaised(machine_id=1, timestamp=T0 + HOUR, alarm_id=9, message="LUBE LOW"))
        assert (await _schedule(api))[str(item["id"])][0] == T0 + HOUR
        assert (await api.ok("GET", f"/api/maintenance/items/{item['id']}"))["trigger_alarm_id"] == 9

    async def test_run_time_item_is_due_when_its_timer_crosses_the_interval(self, api: MaintenanceHarness) -> None:
        await api.known_machine(1)
        await api.known_process(5, machine_id=1, time_per_cycle=30.0)
        item = await api.item(machine_id=1, schedule_mode=1, timer_interval=2, initial_entry=T0)
        part = {"machine_id": 1, "process_id": 5, "program_id": None, "count": 1}
        await api.apply(PartRecorded(part_id=1, finished=T0 + HOUR, cycles=3, **part))
        assert (await _schedule(api))[str(item["id"])] == []
        await api.apply(PartRecorded(part_id=2, finished=T0 + 2 * HOUR, cycles=1, **part))
        assert (await _schedule(api))[str(item["id"])] == [T0 + 2 * HOUR]
        assert (await api.ok("GET", f"/api/maintenance/items/{item['id']}"))["cycle_timer"] == 120.0

    async def test_process_items_only_come_due_while_the_process_is_active(self, api: MaintenanceHarness) -> None:
        await api.known_machine(1)
        await api.known_process(5, machine_id=1)
        item = await api.item(machine_id=1, process_id=5, timer_interval=24, initial_entry=T0)
        assert (await _schedule(api))[str(item["id"])] == []
        await api.apply(ProcessChangedOver(machine_id=1, from_process_id=0, to_process_id=5, changed_at=T0))
        assert (await _schedule(api))[str(item["id"])][0] == T0 + DAY

    async def test_archived_machines_follow_the_needed_flags(self, api: MaintenanceHarness) -> None:
        await api.apply(MachineUpserted(machine_id=1, name="Old", archived=True))
        usual = await api.item(machine_id=1, timer_interval=24, initial_entry=T0)
        archived = await api.item(machine_id=1, timer_interval=24, initial_entry=T0, needed_when_archived=True)
        found = await _schedule(api)
        assert (found[str(usual["id"])], found[str(archived["id"])][0]) == ([], T0 + DAY)


class TestPreview:
    async def test_starts_from_initial_entry_and_returns_count_times(self, api: MaintenanceHarness) -> None:
        body = {"schedule_mode": 2, "frequency": "W", "interval": 3, "weekdays": 1, "initial_entry": T0}
        times = await api.ok("POST", f"{PREVIEW}?count=3", json=body)
        assert times == [ts("2024-06-24T00:00:00+00:00"), ts("2024-07-15T00:00:00+00:00"),
                         ts("2024-08-05T00:00:00+00:00")]

    async def test_starts_from_the_last_entry_of_id(self, api: MaintenanceHarness) -> None:
        item = await api.item(timer_interval=24, initial_entry=T0)
        await api.entry(item["id"], time=T0 + 5 * HOUR)
        body = {"id": item["id"], "timer_interval": 24, "initial_entry": T0}
        assert await api.ok("POST", PREVIEW, json=body) == [T0 + 29 * HOUR]

    async def test_defaults_to_one_time_from_now(self, api: MaintenanceHarness) -> None:
        now = datetime.now(UTC).timestamp()
        [when] = await api.ok("POST", PREVIEW, json={"timer_interval": 1, "name": "ignored"})
        assert now + HOUR - 5 <= when <= now + HOUR + 60

    async def test_returns_400_for_invalid_fields_or_count(self, api: MaintenanceHarness) -> None:
        assert (await api.call("POST", f"{PREVIEW}?count=0", json={})).status_code == 400
        assert (await api.call("POST", f"{PREVIEW}?count=x", json={})).status_code == 400
        response = await api.call("POST", PREVIEW, json={"frequency": "Q"})
        assert response.status_code == 400 and "frequency" in response.json()["detail"]
