"""Equipment, inventory, notification channels, alerts: CRUD and their status codes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.maintenance.conftest import MaintenanceHarness

RESOURCES = [
    ("/api/maintenance/equipment/", {"name": "Chiller"}, {"description": "5 kW"}, {"name": ""}),
    ("/api/maintenance/inventory/", {"name": "Way oil", "quantity": 4, "unit": "l"}, {"quantity": 3},
     {"quantity": -1}),
    ("/api/notifications/channels/", {"name": "Shop", "kind": "slack", "url": "https://hooks.example/a"},
     {"kind": "webhook"}, {"url": "ftp://x.example/"}),
]


@pytest.mark.parametrize(("url", "create", "change", "invalid"), RESOURCES)
class TestCrud:
    async def test_create_get_list_patch_delete(self, api: MaintenanceHarness, url: str, create: dict[str, Any],
                                                change: dict[str, Any], invalid: dict[str, Any]) -> None:
        row = await api.ok("PUT", url, 201, json=create)
        assert {k: row[k] for k in create} == create
        assert await api.ok("GET", f"{url}{row['id']}") == row
        assert await api.ok("GET", url) == {str(row["id"]): row}
        patched = await api.ok("PATCH", f"{url}{row['id']}", json=change)
        assert {k: patched[k] for k in change} == change
        assert (await api.call("DELETE", f"{url}{row['id']}")).status_code == 204
        assert (await api.call("GET", f"{url}{row['id']}")).status_code == 404

    async def test_status_codes(self, api: MaintenanceHarness, url: str, create: dict[str, Any],
                                change: dict[str, Any], invalid: dict[str, Any]) -> None:
        assert (await api.call("PUT", url, json={**create, **invalid})).status_code == 400
        assert (await api.call("PUT", url, json={**create, "bogus": 1})).status_code == 400
        assert (await api.call("PUT", url, role="shop", json=create)).status_code == 403
        row = await api.ok("PUT", url, 201, json=create)
        assert (await api.call("PATCH", f"{url}{row['id']}", json=invalid)).status_code == 400
        assert (await api.call("PATCH", f"{url}999", json=change)).status_code == 404
        assert (await api.call("DELETE", f"{url}999")).status_code == 404


class TestInUse:
    async def test_delete_returns_409_while_items_use_it(self, api: MaintenanceHarness) -> None:
        equipment = await api.ok("PUT", "/api/maintenance/equipment/", 201, json={"name": "Chiller"})
        stock = await api.ok("PUT", "/api/maintenance/inventory/", 201, json={"name": "Oil", "quantity": 1})
        channel = await api.ok("PUT", "/api/notifications/channels/", 201,
                               json={"name": "Shop", "kind": "webhook", "url": "http://127.0.0.1:9/x"})
        item = await api.item(equipment_id=equipment["id"], inventory_items={str(stock["id"]): 1},
                              remind_channel_id=channel["id"])
        for url in (f"/api/maintenance/equipment/{equipment['id']}", f"/api/maintenance/inventory/{stock['id']}",
                    f"/api/notifications/channels/{channel['id']}"):
            response = await api.call("DELETE", url)
            assert response.status_code == 409, url
            assert str(item["id"]) in response.json()["detail"]

    async def test_equipment_machine_must_be_known(self, api: MaintenanceHarness) -> None:
        response = await api.call("PUT", "/api/maintenance/equipment/", json={"name": "Chiller", "machine_id": 4})
        assert response.status_code == 400 and "machine_id" in response.json()["detail"]
        await api.known_machine(4)
        assert (await api.ok("PUT", "/api/maintenance/equipment/", 201,
                             json={"name": "Chiller", "machine_id": 4}))["machine_id"] == 4


class TestAlerts:
    async def _alert(self, api: MaintenanceHarness) -> dict[str, Any]:
        item = await api.item(item_type="measurement", name="Runout", threshold_upper=1.0)
        await api.entry(item["id"], value=2.0)
        [alert] = (await api.ok("GET", "/api/alerts/")).values()
        return alert  # type: ignore[no-any-return]

    async def test_dismiss_records_who_and_filters_see_it(self, api: MaintenanceHarness) -> None:
        alert = await self._alert(api)
        dismissed = await api.ok("POST", f"/api/alerts/{alert['id']}/dismiss", role="shop")
        assert (dismissed["dismissed"], dismissed["dismissed_by"]) == (True, "shop-user")
        assert await api.ok("GET", "/api/alerts/?dismissed=false") == {}
        assert set(await api.ok("GET", "/api/alerts/?dismissed=true")) == {str(alert["id"])}
        assert set(await api.ok("GET", f"/api/alerts/?item_id={alert['item_id']}&kind=threshold")) == {
            str(alert["id"])}
        assert await api.ok("GET", "/api/alerts/?kind=due") == {}
        again = await api.ok("POST", f"/api/alerts/{alert['id']}/dismiss")
        assert again["dismissed_by"] == "shop-user"  # the first dismissal stands

    async def test_status_codes(self, api: MaintenanceHarness) -> None:
        alert = await self._alert(api)
        assert (await api.call("POST", f"/api/alerts/{alert['id']}/dismiss", role="auditor")).status_code == 403
        assert (await api.call("POST", "/api/alerts/999/dismiss")).status_code == 404
        assert (await api.call("GET", "/api/alerts/999")).status_code == 404
        assert (await api.call("GET", "/api/alerts/?kind=nope")).status_code == 400
