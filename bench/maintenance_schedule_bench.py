"""Benchmark: `GET /api/maintenance/items/schedule` for 10,000 mixed items over 90 days
(target: under one second), through the real app on SQLite and on PostgreSQL if reachable.

Run with `.venv/bin/python bench/maintenance_schedule_bench.py` (or `make bench`).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.maintenance.app import spec
from services.maintenance.models import Item
from shared.db import make_engine
from shared.runtime import ServiceRuntime, build_app
from shared.settings import Settings
from shared.testing.infra import find_database_url
from shared.transport.memory import MemoryTransport

ITEMS = 10_000
START = datetime(2026, 2, 1, tzinfo=UTC)
END = START + timedelta(days=90)


def rows(rng: random.Random) -> list[dict[str, object]]:
    made = []
    for n in range(ITEMS):
        mode = n % 3
        row: dict[str, object] = {
            "item_type": "task" if n % 4 else "measurement", "name": f"item {n}", "schedule_mode": mode,
            "timer_interval": rng.choice([8, 24, 168, 500]), "warning_interval": rng.choice([0, 2, 24]),
            "last_done": START - timedelta(hours=rng.randint(0, 24 * 200)), "created_at": START - timedelta(days=400),
            "instructions": "", "cycle_timer": rng.uniform(0, 600), "frequency": rng.choice("YMMMWWWDDH"),
            "interval": rng.choice([1, 1, 2, 3]), "indices": rng.choice([[], [1], [1, 14], [-1], [-2]]),
            "months": rng.choice([4095, 585, 4095]), "weekdays": rng.choice([127, 31, 15]),
            "time_of_day": rng.choice(["06:00", "07:30", "22:00"]), "is_critical": False,
            "needed_when_archived": False, "needed_when_not_archived": True, "difficulty": 2,
            "completion_duration": 30.0, "inventory_items": {}, "trigger_alarms": [], "unit": "",
            "blocking": False,
        }
        made.append(row)
    return made


async def measure(url: str, prefix: str, data_dir: Path) -> list[float]:
    settings = Settings(database_url=url, database_schema_prefix=prefix, auth_secret="b" * 40, data_dir=data_dir,
                        _env_file=None)  # type: ignore[call-arg]
    transport = MemoryTransport()
    runtime = ServiceRuntime(spec(), settings, transport)
    app = build_app([runtime], settings, transport)
    async with app.router.lifespan_context(app):
        async with runtime.engine.begin() as conn:
            await conn.execute(insert(Item), rows(random.Random(1)))
        token = app.state.authenticator.mint("bench", ["auditor"])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench",
                                     headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
            timings = []
            for _ in range(4):
                began = time.perf_counter()
                response = await client.get("/api/maintenance/items/schedule",
                                            params={"start": START.timestamp(), "end": END.timestamp()})
                timings.append(time.perf_counter() - began)
                assert response.status_code == 200 and len(response.json()) == ITEMS, response.text[:300]
            dates = sum(len(v) for v in response.json().values())
    print(f"  {dates} due dates per response")
    return timings


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = await measure(f"sqlite:///{tmp}/maintenance.db", "", Path(tmp))
        print(f"SQLite: {ITEMS} items x 90 days: first {sqlite[0]:.3f} s, "
              f"median of the rest {statistics.median(sqlite[1:]):.3f} s")
        url, reason = find_database_url()
        if url is None:
            print(f"PostgreSQL: skipped ({reason})")
            return
        prefix = f"bench{uuid.uuid4().hex[:6]}_"
        try:
            pg = await measure(url, prefix, Path(tmp))
            print(f"PostgreSQL: {ITEMS} items x 90 days: first {pg[0]:.3f} s, "
                  f"median of the rest {statistics.median(pg[1:]):.3f} s")
        finally:
            engine = make_engine(url)
            async with engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{prefix}maintenance" CASCADE'))
            await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
