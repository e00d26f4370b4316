"""Entries: what completing an occurrence does (timers, alarm trigger, stock, thresholds, interlock)."""

from __future__ import annotations

from shared.events import AlarmRaised, InterlockChanged, PartRecorded
from tests.maintenance.conftest import MaintenanceHarness

ENTRIES = "/api/maintenance/entries/"
T0 = 1_717_416_000.0  # Monday 2024-06-03 12:00 UTC


async def _stock(api: MaintenanceHarness, name: str, quantity: int) -> int:
    row = await api.ok("PUT", "/api/maintenance/inventory/", 201, json={"name": name, "quantity": quantity})
    return int(row["id"])


class TestCreate:
    async def test_records_the_user_from_the_token_and_publishes_entry_recorded(self, api: MaintenanceHarness) -> None:
        item = await api.item()
        entry = await api.entry(item["id"], time=T0, duration=12.5, notes="done")
        assert entry == {"id": 1, "item_id": item["id"], "time": T0, "user": "shop-user", "success": True,
                         "value": None, "duration": 12.5, "notes": "done"}
        [event] = await api.events("maintenance.entry_recorded")
        assert event.data["entry_id"] == 1 and event.data["item_id"] == item["id"] and event.data["success"] is True

    async def test_resets_cycle_timer_and_trigger_alarm_id(self, api: MaintenanceHarness) -> None:
        await api.known_machine(1)
        await api.known_process(5, machine_id=1, time_per_cycle=3.0)
        item = await api.item(machine_id=1, schedule_mode=1, timer_interval=1, trigger_alarms=["SPINDLE OVERLOAD"])
        await api.apply(PartRecorded(part_id=1, machine_id=1, process_id=5, program_id=None, finished=T0,
                                     count=4, cycles=4))
        await api.apply(AlarmRaised(machine_id=1, timestamp=T0, alarm_id=42, message="SPINDLE OVERLOAD"))
        before = await api.ok("GET", f"/api/maintenance/items/{item['id']}")
        assert (before["cycle_timer"], before["trigger_alarm_id"]) == (12.0, 42)
        await api.entry(item["id"])
        after = await api.ok("GET", f"/api/maintenance/items/{item['id']}")
        assert (after["cycle_timer"], after["trigger_alarm_id"]) == (0.0, None)

    async def test_a_failed_task_is_recorded_but_resets_nothing(self, api: MaintenanceHarness) -> None:
        await api.known_machine(1)
        item = await api.item(machine_id=1, trigger_alarms=["EX"])
        await api.apply(AlarmRaised(machine_id=1, timestamp=T0, alarm_id=7, message="EX"))
        entry = await api.entry(item["id"], success=False)
        assert entry["success"] is False
        assert (await api.ok("GET", f"/api/maintenance/items/{item['id']}"))["trigger_alarm_id"] == 7

    async def test_consumes_inventory_and_leaves_present_only_items(self, api: MaintenanceHarness) -> None:
        grease, wrench = await _stock(api, "Grease", 5), await _stock(api, "Torque wrench", 1)
        item = await api.item(inventory_items={str(grease): 2, str(wrench): 0})
        await api.entry(item["id"])
        assert (await api.ok("GET", f"/api/maintenance/inventory/{grease}"))["quantity"] == 3
        assert (await api.ok("GET", f"/api/maintenance/inventory/{wrench}"))["quantity"] == 1

    async def test_returns_409_naming_the_short_item_and_records_nothing(self, api: MaintenanceHarness) -> None:
        grease, wrench = await _stock(api, "Grease", 5), await _stock(api, "Torque wrench", 0)
        item = await api.item(inventory_items={str(grease): 2, str(wrench): 0})
        response = await api.call("PUT", ENTRIES, role="shop", json={"item_id": item["id"]})
        assert response.status_code == 409
        assert "Torque wrench" in response.json()["detail"] and response.json()["inventory_id"] == wrench
        assert (await api.ok("GET", f"/api/maintenance/inventory/{grease}"))["quantity"] == 5
        assert await api.ok("GET", ENTRIES) == {}
        assert await api.events("maintenance.entry_recorded") == []

    async def test_measurement_outside_thresholds_raises_an_alert_a_delivery_and_an_event(
        self, api: MaintenanceHarness,
    ) -> None:
        channel = await api.ok("PUT", "/api/notifications/channels/", 201,
                               json={"name": "Teams", "kind": "teams", "url": "https://teams.example/hook"})
        item = await api.item(item_type="measurement", name="Coolant", unit="%", threshold_lower=5.0,
                              threshold_upper=9.0, threshold_notify_id=channel["id"])
        await api.entry(item["id"], value=7.0)
        await api.entry(item["id"], value=9.0)  # on the bound: fine
        assert await api.ok("GET", "/api/alerts/") == {}
        entry = await api.entry(item["id"], value=3.5)
        [alert] = (await api.ok("GET", "/api/alerts/")).values()
        assert (alert["kind"], alert["item_id"], alert["dismissed"]) == ("threshold", item["id"], False)
        assert "below" in alert["message"]
        [delivery] = (await api.ok("GET", "/api/notifications/deliveries/")).values()
        assert (delivery["channel_id"], delivery["status"]) == (channel["id"], "pending")
        [event] = await api.events("maintenance.threshold_exceeded")
        assert (event.data["entry_id"], event.data["value"]) == (entry["id"], 3.5)

    async def test_threshold_alert_without_a_channel_queues_no_delivery(self, api: MaintenanceHarness) -> None:
        item = await api.item(item_type="measurement", name="Runout", threshold_upper=0.01)
        await api.entry(item["id"], value=0.02)
        assert len(await api.ok("GET", "/api/alerts/?kind=threshold")) == 1
        assert await api.ok("GET", "/api/notifications/deliveries/") == {}

    async def test_lifts_the_interlock_of_a_critical_item(self, api: MaintenanceHarness) -> None:
        await api.known_machine(1)
        item = await api.item(machine_id=1, is_critical=True)
        async with api.runtime.uow() as uow:  # as the scheduler leaves a due critical item
            from services.maintenance.models import Item
            row = await uow.session.get(Item, item["id"])
            assert row is not None
            row.blocking = True
            await uow.commit()
        await api.entry(item["id"])
        [event] = await api.events("maintenance.interlock_changed")
        assert InterlockChanged.model_validate(event.data) == InterlockChanged(machine_id=1, blocked=False)

    async def test_returns_400_for_invalid_entries(self, api: MaintenanceHarness) -> None:
        task = await api.item()
        measurement = await api.item(item_type="measurement", name="Coolant")
        for body, field in [({"item_id": 999}, "item_id"), ({}, "item_id"),
                            ({"item_id": task["id"], "value": 3}, "value"),
                            ({"item_id": measurement["id"]}, "value"),
                            ({"item_id": measurement["id"], "value": 1, "success": True}, "success"),
                            ({"item_id": task["id"], "duration": -1}, "duration"),
                            ({"item_id": task["id"], "user": "someone-else"}, "user")]:
            response = await api.call("PUT", ENTRIES, role="shop", json=body)
            assert response.status_code == 400, body
            assert field in response.json()["detail"]

    async def test_returns_403_for_an_auditor(self, api: MaintenanceHarness) -> None:
        item = await api.item()
        assert (await api.call("PUT", ENTRIES, role="auditor", json={"item_id": item["id"]})).status_code == 403


class TestReadEditDelete:
    async def test_item_entries_newest_first_with_limit_and_offset(self, api: MaintenanceHarness) -> None:
        item = await api.item()
        other = await api.item(name="Other")
        ids = [(await api.entry(item["id"], time=T0 + i * 60))["id"] for i in range(4)]
        await api.entry(other["id"], time=T0)
        url = f"/api/maintenance/items/{item['id']}/entries"
        assert set(await api.ok("GET", url)) == {str(i) for i in ids}
        assert set(await api.ok("GET", url + "?limit=2")) == {str(ids[3]), str(ids[2])}
        assert set(await api.ok("GET", url + "?limit=2&offset=1")) == {str(ids[2]), str(ids[1])}
        assert (await api.call("GET", url + "?limit=-1")).status_code == 400
        assert (await api.call("GET", "/api/maintenance/items/999/entries")).status_code == 404

    async def test_patch_and_delete_an_entry(self, api: MaintenanceHarness) -> None:
        item = await api.item()
        entry = await api.entry(item["id"], time=T0)
        patched = await api.ok("PATCH", f"{ENTRIES}{entry['id']}", role="shop", json={"notes": "late", "duration": 5})
        assert (patched["notes"], patched["duration"]) == ("late", 5)
        assert (await api.call("PATCH", f"{ENTRIES}{entry['id']}", json={"value": 1})).status_code == 400
        assert (await api.call("PATCH", f"{ENTRIES}999", json={"notes": "x"})).status_code == 404
        assert (await api.call("DELETE", f"{ENTRIES}{entry['id']}", role="shop")).status_code == 204
        assert (await api.call("GET", f"{ENTRIES}{entry['id']}")).status_code == 404
        assert (await api.call("DELETE", f"{ENTRIES}{entry['id']}")).status_code == 404


class TestAverageCompletionDurations:
    async def test_averages_successful_completions_null_for_never_and_leaves_out_unknown_ids(
        self, api: MaintenanceHarness,
    ) -> None:
        a, b, c = await api.item(), await api.item(name="b"), await api.item(name="c")
        await api.entry(a["id"], duration=10)
        await api.entry(a["id"], duration=20)
        await api.entry(a["id"], duration=99, success=False)
        await api.entry(b["id"], duration=30, success=False)
        body = [a["id"], b["id"], c["id"], 999]
        result = await api.ok("POST", "/api/maintenance/items/averageCompletionDurations", json=body)
        assert result == {str(a["id"]): 15.0, str(b["id"]): None, str(c["id"]): None}

    async def test_returns_400_for_an_invalid_body(self, api: MaintenanceHarness) -> None:
        url = "/api/maintenance/items/averageCompletionDurations"
        assert (await api.call("POST", url, json={"ids": [1]})).status_code == 400
        assert (await api.call("POST", url, json=["x"])).status_code == 400
        assert (await api.call("POST", url, content=b"[1,")).status_code == 400
