"""The three services as separate OS processes behind nginx (tests/system/conftest.py).

Everything goes through the gateway: telemetry pushed over HTTP to the collector reaches the
process service and maintenance over RabbitMQ.
"""

from __future__ import annotations

import time

from shared.settings import SERVICES
from tests.process.conftest import wait_for
from tests.system.conftest import Gateway, token


async def test_pushed_parts_flow_through_the_gateway_to_maintenance(gateway: Gateway) -> None:
    ok = gateway.ok
    for service in SERVICES:
        spec = await ok("GET", f"/api/{service}/openapi.json")
        assert spec["paths"], service
    assert (await gateway.client.get("/api/nowhere")).status_code == 404  # nginx, not a service

    machine, _ = await gateway.machine_with_process("Gateway VMC", time_per_cycle=30.0, parts_per_cycle=2)
    item = await gateway.item_once_known({"item_type": "task", "name": "Way lube", "machine_id": machine,
                                          "schedule_mode": 1, "timer_interval": 1.0, "warning_interval": 0.5})
    assert item["cycle_timer"] == 0

    now = time.time()
    pushed = await ok("POST", f"/api/collector/machines/{machine}/events",
                      headers={"Authorization": f"Bearer {token('machine')}"},
                      json=[{"timestamp": now - 120, "key": "PartCountAct", "value": 0},
                            {"timestamp": now - 60, "key": "PartCountAct", "value": 1},
                            {"timestamp": now, "key": "PartCountAct", "value": 2}])
    assert pushed["rejected"] == [] and pushed["events"] >= 2, pushed

    async def timer() -> float | None:
        found = await ok("GET", f"/api/maintenance/items/{item['id']}")
        return found["cycle_timer"] if found["cycle_timer"] >= 60 else None

    assert await wait_for(timer, timeout=20, interval=0.1) == 60.0  # two cycles of 30 minutes
    parts = await ok("GET", "/api/parts/", params={"machine_id": machine})
    assert sum(p["count"] for p in parts.values()) == 4
