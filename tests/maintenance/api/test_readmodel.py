"""The read model kept from process events, and the sync request of an empty one."""

from __future__ import annotations

from services.maintenance.usecases import readmodel
from shared.events import (
    AlarmRaised,
    MachineDeleted,
    MachineUpserted,
    PartRecorded,
    ProcessDeleted,
    ProcessUpserted,
)
from tests.maintenance.conftest import MaintenanceHarness
from tests.process.conftest import statements_of

ITEMS = "/api/maintenance/items/"


class TestSync:
    async def test_an_empty_read_model_requests_a_sync_through_the_outbox(self, api: MaintenanceHarness) -> None:
        [event] = await api.events("sync.requested")
        assert event.producer == "maintenance"
        assert set(event.data["domains"]) == {"machine", "process", "settings"}

    async def test_a_filled_read_model_does_not(self, api: MaintenanceHarness) -> None:
        await api.flush_outbox()
        api.transport.published.clear()
        await api.known_machine(1)
        await readmodel.request_sync_if_empty(api.runtime)
        assert await api.events("sync.requested") == []


class TestMachinesAndProcesses:
    async def test_upserts_and_deletes_decide_which_references_are_valid(self, api: MaintenanceHarness) -> None:
        body = {"item_type": "task", "name": "x", "machine_id": 2, "process_id": 6}
        assert (await api.call("PUT", ITEMS, json=body)).status_code == 400
        await api.apply(MachineUpserted(machine_id=2, name="Mill", archived=False))
        await api.apply(ProcessUpserted(process_id=6, machine_id=2, name="op10", archived=False))
        await api.apply(ProcessUpserted(process_id=6, machine_id=2, name="op10b", archived=False))  # twice: upsert
        assert (await api.call("PUT", ITEMS, json=body)).status_code == 201
        await api.apply(ProcessDeleted(process_id=6, machine_id=2))
        assert (await api.call("PUT", ITEMS, json=body)).status_code == 400
        await api.apply(MachineDeleted(machine_id=2))
        assert (await api.call("PUT", ITEMS, json={**body, "process_id": None})).status_code == 400


class TestParts:
    async def test_adds_cycle_time_times_cycles_to_run_time_items_on_the_machine_only(
        self, api: MaintenanceHarness,
    ) -> None:
        await api.known_machine(1)
        await api.known_machine(2)
        await api.known_process(5, machine_id=1, time_per_cycle=1.5)
        equipment = await api.ok("PUT", "/api/maintenance/equipment/", 201,
                                 json={"name": "Bar feeder", "machine_id": 1})
        run_time = await api.item(machine_id=1, schedule_mode=1)
        via_equipment = await api.item(equipment_id=equipment["id"], schedule_mode=1)
        clock = await api.item(machine_id=1, schedule_mode=0)
        elsewhere = await api.item(machine_id=2, schedule_mode=1)
        same_process = await api.item(machine_id=1, schedule_mode=1, process_id=5)
        await api.apply(PartRecorded(part_id=1, machine_id=1, process_id=5, program_id=None, finished=1e9,
                                     count=8, cycles=4))
        # The event's own time_per_cycle wins over the read model's.
        await api.apply(PartRecorded(part_id=2, machine_id=1, process_id=5, program_id=None, finished=1e9,
                                     count=1, cycles=1, time_per_cycle=2.0))
        timers = {i: (await api.ok("GET", f"{ITEMS}{i}"))["cycle_timer"] for i in (
            run_time["id"], via_equipment["id"], clock["id"], elsewhere["id"], same_process["id"])}
        assert timers == {run_time["id"]: 8.0, via_equipment["id"]: 8.0, clock["id"]: 0.0, elsewhere["id"]: 0.0,
                          same_process["id"]: 8.0}

    async def test_a_batch_over_several_machines_reads_their_run_time_items_in_one_statement(
        self, api: MaintenanceHarness,
    ) -> None:
        for machine in (1, 2, 3):
            await api.known_machine(machine)
        equipment = await api.ok("PUT", "/api/maintenance/equipment/", 201, json={"name": "Bar feeder",
                                                                                   "machine_id": 2})
        items = {"m1": await api.item(machine_id=1, schedule_mode=1),
                 "m2 via equipment": await api.item(equipment_id=equipment["id"], schedule_mode=1),
                 "m3": await api.item(machine_id=3, schedule_mode=1),
                 "m3 clock": await api.item(machine_id=3, schedule_mode=0)}
        parts = [PartRecorded(part_id=10 * k + machine, machine_id=machine, process_id=None, program_id=None,
                              finished=1e9 + k, count=1, cycles=k, time_per_cycle=float(machine))
                 for k in (1, 2) for machine in (3, 1, 2)]
        with statements_of(api) as statements:
            deliveries = await api.apply_batch(*parts)
        assert all(d.settled == ["ack"] for d in deliveries)
        item_reads = [s for s in statements if s.startswith("SELECT") and " FROM items" in s]
        assert len(item_reads) == 1, item_reads
        timers = {name: (await api.ok("GET", f"{ITEMS}{item['id']}"))["cycle_timer"] for name, item in items.items()}
        # machine m's parts: cycles 1 + 2 at m minutes a cycle
        assert timers == {"m1": 3.0, "m2 via equipment": 6.0, "m3": 9.0, "m3 clock": 0.0}

    async def test_an_item_tied_to_ansame_process_does_not_count(self, api: MaintenanceHarness) -> None:
        await api.known_machine(1)
        await api.known_process(5, machine_id=1)
        await api.known_process(6, machine_id=1)
        item = await api.item(machine_id=1, schedule_mode=1, process_id=6)
        await api.apply(PartRecorded(part_id=1, machine_id=1, process_id=5, program_id=None, finished=1e9, count=1))
        assert (await api.ok("GET", f"{ITEMS}{item['id']}"))["cycle_timer"] == 0.0


class TestAlarms:
    async def test_sets_trigger_alarm_id_on_matching_items_of_the_machine_and_its_equipment(
        self, api: MaintenanceHarness,
    ) -> None:
        await api.known_machine(1)
        await api.known_machine(2)
        equipment = await api.ok("PUT", "/api/maintenance/equipment/", 201, json={"name": "Chiller", "machine_id": 1})
        direct = await api.item(machine_id=1, trigger_alarms=["COOLANT LOW", "X"])
        via_equipment = await api.item(equipment_id=equipment["id"], trigger_alarms=["COOLANT LOW"])
        other_message = await api.item(machine_id=1, trigger_alarms=["SPINDLE"])
        other_machine = await api.item(machine_id=2, trigger_alarms=["COOLANT LOW"])
        shop_wide = await api.item(trigger_alarms=["COOLANT LOW"])
        await api.apply(AlarmRaised(machine_id=1, timestamp=1e9, alarm_id=31, message="COOLANT LOW"))
        await api.apply(AlarmRaised(machine_id=1, timestamp=1e9 + 5, alarm_id=32, message="COOLANT LOW"))
        found = {i["id"]: (await api.ok("GET", f"{ITEMS}{i['id']}"))["trigger_alarm_id"]
                 for i in (direct, via_equipment, other_message, other_machine, shop_wide)}
        assert found == {direct["id"]: 31, via_equipment["id"]: 31, other_message["id"]: None,
                         other_machine["id"]: None, shop_wide["id"]: None}
