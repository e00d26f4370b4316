"""Two replicas of the maintenance service on one database: each reminder goes out once.

Both replicas run the scheduler (a pass every 0.3 s) and the notification sender (a round
every 0.2 s). Some items are overdue when the replicas start, others come due while both
are running. The webhook receiver on loopback must get one `due` message per item.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from shared.testing.stack import free_port
from tests.process.conftest import wait_for
from tests.system.conftest import Gateway, StackFactory

OVERDUE = 8
COMING_DUE = 8


async def test_two_replicas_send_each_reminder_once(stack_factory: StackFactory,
                                                    webhook_receiver: tuple[str, list[Any]]) -> None:
    url, received = webhook_receiver
    stack = await stack_factory(TAKTLINE_MAINTENANCE_SCHEDULER_INTERVAL="0.3",
                                TAKTLINE_MAINTENANCE_NOTIFIER_INTERVAL="0.2")
    replica_port = free_port()
    await stack.serve("maintenance", replica_port, name="maintenance-2")
    gateway = Gateway(stack)
    try:
        # The replica answers on its own port with the same data: one database.
        channel = await gateway.ok("PUT", "/api/notifications/channels/", 201,
                                   json={"name": "Hook", "kind": "webhook", "url": url})
        now = time.time()
        items = []
        for n in range(OVERDUE + COMING_DUE):
            # 1 h interval: overdue ones started 2 h ago, the others come due 3-6 s from now.
            start = now - 7200 if n < OVERDUE else now - 3600 + 3 + (n - OVERDUE) * 0.4
            items.append((await gateway.ok("PUT", "/api/maintenance/items/", 201, json={
                "item_type": "task", "name": f"Check coolant {n}", "timer_interval": 1.0,
                "initial_entry": start, "remind_channel_id": channel["id"]}))["id"])
        replica = await gateway.client.get(f"http://127.0.0.1:{replica_port}/api/maintenance/items/{items[0]}")
        assert replica.status_code == 200 and replica.json()["name"] == "Check coolant 0"

        async def all_sent() -> bool:
            return len(received) >= len(items)

        await wait_for(all_sent, timeout=60, interval=0.1)
        await asyncio.sleep(3)  # ten more passes and rounds on each replica: a duplicate shows now
        assert Counter((r["kind"], r["item_id"]) for r in received) == {("due", i): 1 for i in items}

        deliveries = await gateway.ok("GET", "/api/notifications/deliveries/")
        rows = deliveries if isinstance(deliveries, list) else list(deliveries.values())
        assert sorted(r["status"] for r in rows) == ["sent"] * len(items)
        # Both replicas were alive throughout.
        assert all(p.returncode is None for p in stack.processes.values())
    finally:
        await gateway.close()
