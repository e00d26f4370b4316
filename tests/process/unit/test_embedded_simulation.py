"""`taktline run --simulate`: demo machines with their collector simulator sources and maintenance
items are created once, and their simulated parts flow through collector, process and maintenance."""

from __future__ import annotations

from pathlib import Path

import httpx

from services import demo, embedded
from shared.settings import Settings
from tests.process.conftest import SECRET, wait_for


async def test_simulated_machine_produces_parts_in_the_embedded_app(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(demo, "CYCLE_SECONDS", 1.0)  # faster machines than the demo's 20 s
    settings = Settings(data_dir=tmp_path, auth_secret=SECRET, simulate=1, _env_file=None)  # type: ignore[call-arg]
    app = embedded.create_app(settings)
    async with app.router.lifespan_context(app):
        headers = {"Authorization": "Bearer " + app.state.authenticator.mint("a", ["auditor"])}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                     headers=headers) as client:
            async def parts() -> dict[str, object]:
                return (await client.get("/api/parts/", params={"limit": 50})).json()

            async def run_time_counted() -> dict[str, dict[str, object]] | None:
                found = (await client.get("/api/maintenance/items/")).json()
                lube = [i for i in found.values() if i["name"] == "Lubricate ways"]
                return found if lube and lube[0]["cycle_timer"] > 0 else None

            await wait_for(parts, timeout=40)
            items = await wait_for(run_time_counted, timeout=40)  # part_recorded reached maintenance
            # Seeding again (as a restart does) finds what exists instead of making more.
            runtimes = app.state.runtimes
            again = await demo.seed_machines(runtimes["process"], 1)
            await demo.seed_sources(runtimes["collector"], again, 1)
            await demo.seed_items(runtimes["maintenance"], [m.machine_id for m in again])
            machines = (await client.get("/api/machines/")).json()
            processes = (await client.get("/api/processes/")).json()
            sources = (await client.get("/api/collector/sources/")).json()
            items_after = (await client.get("/api/maintenance/items/")).json()
    assert [m["name"] for m in machines.values()] == ["Simulated VMC-1"]
    # The telemetry came through the collector, from one simulator source for the machine.
    assert [(s["kind"], s["machine_id"]) for s in sources.values()] == [("simulator", int(next(iter(machines))))]
    assert sorted(i["name"] for i in items.values()) == ["Check coolant", "Lubricate ways", "Spindle temperature"]
    assert sorted(items_after) == sorted(items)
    assert len(processes) == 1
    process = next(iter(processes.values()))
    assert process["active"] is True and process["loaded"] is True and process["last_cycle"] is not None
