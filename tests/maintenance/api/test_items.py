"""/api/maintenance/items: every documented status code, defaults, filters and validation."""

from __future__ import annotations

from typing import Any

import pytest

from tests.maintenance.conftest import MaintenanceHarness

ITEMS = "/api/maintenance/items/"


class TestCreate:
    async def test_returns_201_with_every_seed_default(self, api: MaintenanceHarness) -> None:
        item = await api.item()
        assert item == {
            "id": 1, "item_type": "task", "name": "Grease ways", "instructions": "", "machine_id": None,
            "equipment_id": None, "process_id": None, "schedule_mode": 0, "timer_interval": 0.0,
            "warning_interval": 0.0, "cycle_timer": 0.0, "frequency": "D", "interval": 1, "indices": [],
            "months": 4095, "weekdays": 127, "time_of_day": "00:00", "initial_entry": None, "is_critical": False,
            "needed_when_archived": False, "needed_when_not_archived": True, "remind_channel_id": None,
            "difficulty": 2, "completion_duration": 0.0, "inventory_items": {}, "trigger_alarms": [],
            "trigger_alarm_id": None,
        }

    async def test_measurement_has_its_own_fields_and_ids_are_shared_with_tasks(self, api: MaintenanceHarness) -> None:
        task = await api.item()
        measurement = await api.item(item_type="measurement", name="Coolant", unit="%", threshold_lower=5,
                                     threshold_upper=9)
        assert measurement["id"] == task["id"] + 1
        assert (measurement["unit"], measurement["threshold_lower"], measurement["threshold_upper"]) == ("%", 5, 9)
        assert measurement["threshold_notify_id"] is None
        assert "unit" not in task

    @pytest.mark.parametrize(("body", "field"), [
        ({"name": "x"}, "item_type"),
        ({"item_type": "task"}, "name"),
        ({"item_type": "inspection", "name": "x"}, "item_type"),
        ({"item_type": "task", "name": "x", "frequency": "Q"}, "frequency"),
        ({"item_type": "task", "name": "x", "difficulty": 5}, "difficulty"),
        ({"item_type": "task", "name": "x", "difficulty": 0}, "difficulty"),
        ({"item_type": "task", "name": "x", "months": 4096}, "months"),
        ({"item_type": "task", "name": "x", "weekdays": 128}, "weekdays"),
        ({"item_type": "task", "name": "x", "weekdays": -1}, "weekdays"),
        ({"item_type": "task", "name": "x", "schedule_mode": 3}, "schedule_mode"),
        ({"item_type": "task", "name": "x", "time_of_day": "24:00"}, "time_of_day"),
        ({"item_type": "task", "name": "x", "indices": [0]}, "indices"),
        ({"item_type": "task", "name": "x", "interval": 0}, "interval"),
        ({"item_type": "task", "name": "x", "timer_interval": -1}, "timer_interval"),
        ({"item_type": "task", "name": "x", "machine_id": 2**40}, "machine_id"),
        ({"item_type": "task", "name": "x", "inventory_items": {"1": -1}}, "inventory_items"),
        ({"item_type": "task", "name": "x", "colour": "red"}, "colour"),
        ({"item_type": "task", "name": "x\x00"}, "name"),
        ({"item_type": "task", "name": "x", "unit": "mm"}, "unit"),
    ])
    async def test_returns_400_naming_a_missing_or_invalid_field(
        self, api: MaintenanceHarness, body: dict[str, Any], field: str,
    ) -> None:
        response = await api.call("PUT", ITEMS, json=body)
        assert response.status_code == 400, response.text
        assert field in response.json()["detail"]

    async def test_returns_400_when_machine_and_equipment_are_both_set(self, api: MaintenanceHarness) -> None:
        await api.known_machine(1)
        equipment = await api.ok("PUT", "/api/maintenance/equipment/", 201, json={"name": "Chiller"})
        response = await api.call("PUT", ITEMS, json={"item_type": "task", "name": "x", "machine_id": 1,
                                                      "equipment_id": equipment["id"]})
        assert response.status_code == 400
        assert "machine_id or equipment_id" in response.json()["detail"]

    @pytest.mark.parametrize("field", ["machine_id", "equipment_id", "process_id", "remind_channel_id",
                                       "threshold_notify_id"])
    async def test_returns_400_naming_an_unknown_reference(self, api: MaintenanceHarness, field: str) -> None:
        response = await api.call("PUT", ITEMS, json={"item_type": "measurement", "name": "x", field: 77})
        assert response.status_code == 400
        detail = response.json()["detail"]
        assert field in detail and "77" in detail

    async def test_returns_400_naming_unknown_inventory_ids(self, api: MaintenanceHarness) -> None:
        stock = await api.ok("PUT", "/api/maintenance/inventory/", 201, json={"name": "Grease", "quantity": 3})
        response = await api.call("PUT", ITEMS, json={"item_type": "task", "name": "x",
                                                      "inventory_items": {str(stock["id"]): 1, "99": 2}})
        assert response.status_code == 400
        assert "inventory_items" in response.json()["detail"] and "99" in response.json()["detail"]

    async def test_accepts_references_known_from_the_read_model(self, api: MaintenanceHarness) -> None:
        await api.known_machine(3)
        await api.known_process(8, machine_id=3)
        channel = await api.ok("PUT", "/api/notifications/channels/", 201,
                               json={"name": "Shop", "kind": "slack", "url": "https://hooks.example/x"})
        item = await api.item(machine_id=3, process_id=8, remind_channel_id=channel["id"], trigger_alarms=["EX1"])
        assert (item["machine_id"], item["process_id"], item["remind_channel_id"]) == (3, 8, channel["id"])

    @pytest.mark.parametrize("role", ["shop", "auditor"])
    async def test_returns_403_for_roles_that_cannot_edit_items(self, api: MaintenanceHarness, role: str) -> None:
        response = await api.call("PUT", ITEMS, role=role, json={"item_type": "task", "name": "x"})
        assert response.status_code == 403

    async def test_returns_401_without_a_token(self, api: MaintenanceHarness) -> None:
        assert (await api.client.get(ITEMS)).status_code == 401


class TestList:
    async def test_filters_by_type_machine_and_equipment_with_0_meaning_none(self, api: MaintenanceHarness) -> None:
        await api.known_machine(1)
        await api.known_machine(2)
        equipment = await api.ok("PUT", "/api/maintenance/equipment/", 201, json={"name": "Chiller"})
        shop = await api.item()
        on_1 = await api.item(machine_id=1)
        on_2 = await api.item(item_type="measurement", machine_id=2)
        on_equipment = await api.item(equipment_id=equipment["id"])

        async def ids(query: str) -> set[int]:
            return {int(k) for k in await api.ok("GET", ITEMS + query)}

        assert await ids("") == {shop["id"], on_1["id"], on_2["id"], on_equipment["id"]}
        assert await ids("?item_type=measurement") == {on_2["id"]}
        assert await ids("?item_type=task&item_type=measurement") == await ids("")
        assert await ids("?machine_id=1&machine_id=2") == {on_1["id"], on_2["id"]}
        assert await ids("?machine_id=0") == {shop["id"], on_equipment["id"]}
        assert await ids("?machine_id=0&machine_id=1") == {shop["id"], on_1["id"], on_equipment["id"]}
        assert await ids(f"?equipment_id={equipment['id']}") == {on_equipment["id"]}
        assert await ids("?equipment_id=0&machine_id=0") == {shop["id"]}

    async def test_returns_a_map_of_id_to_item(self, api: MaintenanceHarness) -> None:
        item = await api.item()
        assert await api.ok("GET", ITEMS) == {str(item["id"]): item}

    async def test_returns_400_for_a_bad_filter(self, api: MaintenanceHarness) -> None:
        assert (await api.call("GET", ITEMS + "?machine_id=abc")).status_code == 400
        assert (await api.call("GET", ITEMS + "?item_type=widget")).status_code == 400


class TestGetPatchDelete:
    async def test_get_returns_the_item_and_404_for_an_unknown_id(self, api: MaintenanceHarness) -> None:
        item = await api.item()
        assert await api.ok("GET", f"{ITEMS}{item['id']}") == item
        assert (await api.call("GET", f"{ITEMS}999")).status_code == 404
        assert (await api.call("GET", f"{ITEMS}{2**40}")).status_code == 404

    async def test_patch_changes_fields_and_ignores_item_type(self, api: MaintenanceHarness) -> None:
        item = await api.item()
        patched = await api.ok("PATCH", f"{ITEMS}{item['id']}",
                               json={"name": "Grease Z", "item_type": "measurement", "difficulty": 4})
        assert (patched["name"], patched["item_type"], patched["difficulty"]) == ("Grease Z", "task", 4)
        assert await api.ok("GET", f"{ITEMS}{item['id']}") == patched

    async def test_patch_returns_400_for_invalid_properties(self, api: MaintenanceHarness) -> None:
        await api.known_machine(1)
        equipment = await api.ok("PUT", "/api/maintenance/equipment/", 201, json={"name": "Chiller"})
        item = await api.item(machine_id=1)
        for body, field in [({"frequency": "X"}, "frequency"), ({"name": None}, "name"),
                            ({"equipment_id": equipment["id"]}, "equipment_id"), ({"process_id": 5}, "process_id"),
                            ({"unit": "mm"}, "unit")]:
            response = await api.call("PATCH", f"{ITEMS}{item['id']}", json=body)
            assert response.status_code == 400, body
            assert field in response.json()["detail"]
        # Moving from the machine to the equipment in one patch is fine.
        moved = await api.ok("PATCH", f"{ITEMS}{item['id']}", json={"machine_id": None,
                                                                     "equipment_id": equipment["id"]})
        assert (moved["machine_id"], moved["equipment_id"]) == (None, equipment["id"])

    async def test_patch_returns_404_for_an_unknown_id(self, api: MaintenanceHarness) -> None:
        assert (await api.call("PATCH", f"{ITEMS}999", json={"name": "x"})).status_code == 404

    async def test_delete_returns_204_then_404(self, api: MaintenanceHarness) -> None:
        item = await api.item()
        response = await api.call("DELETE", f"{ITEMS}{item['id']}")
        assert response.status_code == 204 and response.content == b""
        assert (await api.call("GET", f"{ITEMS}{item['id']}")).status_code == 404
        assert (await api.call("DELETE", f"{ITEMS}{item['id']}")).status_code == 404


async def test_the_slice_openapi_lists_every_seed_path(api: MaintenanceHarness) -> None:
    paths = set((await api.ok("GET", "/api/maintenance/openapi.json"))["paths"])
    assert {"/api/maintenance/items/", "/api/maintenance/items/{item_id}", "/api/maintenance/items/{item_id}/entries",
            "/api/maintenance/items/schedule", "/api/maintenance/items/previewSchedule",
            "/api/maintenance/items/averageCompletionDurations", "/api/alerts/{alert_id}/dismiss"} <= paths
