"""Processes over HTTP: list, get, create, patch, delete, archive, tools; query flags; roles (seed 000)."""

from __future__ import annotations

import time

import jwt
import pytest

from tests.process.api.helpers import T0, assert_problem, clock, load, part, payloads, problem, tool
from tests.process.conftest import SECRET

SEED_FIELDS = {
    "id", "machine_id", "name", "description", "archived", "cv_map", "display_variable", "part_count_cv",
    "part_material_cost", "part_sell_price", "parts_per_cycle", "setup_instructions", "teardown_instructions",
    "tags", "time_per_cycle", "unassigned_tools_used", "loaded", "last_cycle",
}
BASE_FIELDS = SEED_FIELDS | {"active"}
FULL = {
    "name": "Housing op20",
    "description": "Second op, soft jaws",
    "cv_map": {"Serial number": {"number": 5, "notifyComparison": "EQ", "notifyValue": 1}},
    "display_variable": 5,
    "part_count_cv": 7,
    "part_material_cost": 2.5,
    "part_sell_price": 12.75,
    "parts_per_cycle": 4,
    "setup_instructions": "Mount fixture B",
    "teardown_instructions": "Clean chips",
    "tags": ["aluminium", "rush"],
    "time_per_cycle": 3.5,
}
# (body change, field the 400 must name) for values no process may have.
INVALID_VALUES = [
    ({"parts_per_cycle": 0}, "parts_per_cycle"), ({"parts_per_cycle": "many"}, "parts_per_cycle"),
    ({"part_sell_price": -1}, "part_sell_price"), ({"part_material_cost": "x"}, "part_material_cost"),
    ({"time_per_cycle": -0.5}, "time_per_cycle"), ({"tags": "rush"}, "tags"), ({"tags": [1, {}]}, "tags"),
    ({"cv_map": {"Serial": {"notifyValue": 1}}}, "cv_map"),
    ({"cv_map": {"Serial": {"number": 5, "notifyComparison": "ABOUT"}}}, "cv_map"),
    ({"cv_map": ["Serial"]}, "cv_map"), ({"display_variable": "five"}, "display_variable"),
    ({"part_count_cv": -3}, "part_count_cv"), ({"archived": "maybe"}, "archived"),
    ({"name": ""}, "name"), ({"name": "x" * 201}, "name"), ({"colour": "red"}, "colour"),
]


class TestCreateProcess:
    async def test_minimal_process_has_every_seed_field_with_its_default_and_is_published(self, api):
        machine = await api.machine()
        created = await api.ok("PUT", "/api/processes/", 201, json={"machine_id": machine["id"], "name": "Op10"})
        assert isinstance(created["id"], int)
        assert created == {
            "id": created["id"], "machine_id": machine["id"], "name": "Op10", "description": "", "archived": False,
            "cv_map": {}, "display_variable": None, "part_count_cv": None, "part_material_cost": 0.0,
            "part_sell_price": 0.0, "parts_per_cycle": 1, "setup_instructions": "", "teardown_instructions": "",
            "tags": [], "time_per_cycle": None, "unassigned_tools_used": {}, "loaded": False, "last_cycle": None,
            "active": False,
        }
        assert await payloads(api, "process.upserted") == [{
            "process_id": created["id"], "machine_id": machine["id"], "name": "Op10", "archived": False,
            "time_per_cycle": None, "parts_per_cycle": 1}]

    async def test_every_writable_field_is_stored_and_read_back(self, api):
        machine = await api.machine()
        created = await api.ok("PUT", "/api/processes/", 201, json={"machine_id": machine["id"], **FULL})
        fetched = await api.ok("GET", f"/api/processes/{created['id']}")
        for key, value in FULL.items():
            assert created[key] == value, key
            assert fetched[key] == value, key
        assert isinstance(fetched["part_sell_price"], float) and isinstance(fetched["parts_per_cycle"], int)
        upserted = (await payloads(api, "process.upserted"))[-1]
        assert (upserted["time_per_cycle"], upserted["parts_per_cycle"]) == (3.5, 4)

    async def test_read_only_fields_sent_back_are_ignored(self, api):
        machine = await api.machine()
        created = await api.ok("PUT", "/api/processes/", 201, json={
            "machine_id": machine["id"], "name": "Op10", "id": 9999, "loaded": True, "active": True,
            "last_cycle": {"finished": 1.0, "program_id": 1}, "unassigned_tools_used": {"T1": 1.0},
            "programs": {}, "tools": {}, "efficiency": {}, "unused_tool_locations": ["T1"]})
        assert created["id"] != 9999
        assert (created["loaded"], created["active"], created["last_cycle"]) == (False, False, None)
        assert created["unassigned_tools_used"] == {}

    async def test_returns_400_naming_the_offending_field(self, api):
        machine = await api.machine()
        cases = [({"machine_id": 4242, "name": "Op10"}, "machine_id"), ({"name": "Op10"}, "machine_id"),
                 ({"machine_id": "one", "name": "Op10"}, "machine_id"), ({"machine_id": machine["id"]}, "name"),
                 ({"machine_id": machine["id"], "name": None}, "name")]
        cases += [({"machine_id": machine["id"], "name": "Op10", **change}, field) for change, field in INVALID_VALUES]
        for body, field in cases:
            assert_problem(await api.call("PUT", "/api/processes/", json=body), 400, field)
        assert_problem(await api.call("PUT", "/api/processes/", json=["Op10"]), 400)
        assert_problem(await api.client.put("/api/processes/", content=b"{not json",
                                            headers={**api.auth(), "Content-Type": "application/json"}), 400)
        assert await api.ok("GET", "/api/processes/") == {}
        assert await api.events("process.upserted") == []


class TestListProcesses:
    async def test_maps_process_id_to_process_and_is_empty_without_processes(self, api):
        assert await api.ok("GET", "/api/processes/") == {}
        m1, m2 = await api.machine("Mill"), await api.machine("Lathe")
        a = await api.process(m1["id"], "A")
        b = await api.process(m2["id"], "B", tags=["x"])
        listed = await api.ok("GET", "/api/processes/")
        assert listed == {str(a["id"]): a, str(b["id"]): b}
        assert all(set(p) == BASE_FIELDS for p in listed.values())
        assert await api.ok("GET", "/api/processes/?programs=0&tools=0&efficiency=0") == listed

    async def test_programs_and_tools_flags_add_mappings_of_each_process(self, api):
        machine = await api.machine()
        a, b = await api.process(machine["id"], "A"), await api.process(machine["id"], "B")
        p1 = await api.program(machine["id"], "O1000.nc", a["id"])
        await api.program(machine["id"], "O2000.nc")  # in no process
        assembly = await api.assembly(machine["id"], "T1", a["id"], tools=[{"name": "10mm endmill"}])
        await api.assembly(machine["id"], "T2", None, tools=[{"name": "unassigned drill"}])

        with_programs = await api.ok("GET", "/api/processes/?programs=1")
        assert with_programs[str(a["id"])]["programs"] == {str(p1["id"]): p1}
        assert with_programs[str(b["id"])]["programs"] == {}
        assert "tools" not in with_programs[str(a["id"])] and "efficiency" not in with_programs[str(a["id"])]

        with_tools = await api.ok("GET", "/api/processes/?tools=1")
        assert with_tools[str(a["id"])]["tools"] == assembly["tools"]
        assert with_tools[str(b["id"])]["tools"] == {}
        assert "programs" not in with_tools[str(a["id"])]

    async def test_efficiency_flag_adds_an_efficiency_object_to_each_process(self, api):
        machine = await api.machine()
        a = await api.process(machine["id"], "A")
        with clock(api, T0):
            listed = await api.ok("GET", "/api/processes/?efficiency=1&programs=1&tools=1")
        entry = listed[str(a["id"])]
        assert set(entry) == BASE_FIELDS | {"programs", "tools", "efficiency"}
        assert entry["efficiency"]["parts"] == 0 and entry["efficiency"]["average_cycle_time"] is None
        assert entry["efficiency"]["efficiency"] is None and entry["efficiency"]["margin_per_hour"] is None
        assert (entry["efficiency"]["revenue"], entry["efficiency"]["margin"]) == (0.0, 0.0)

    async def test_returns_400_naming_a_flag_that_is_not_0_or_1(self, api):
        machine = await api.machine()
        process = await api.process(machine["id"])
        for url in ("/api/processes/", f"/api/processes/{process['id']}"):
            for flag, value in [("programs", "2"), ("tools", "yes"), ("efficiency", "-1"), ("programs", "true")]:
                assert_problem(await api.call("GET", f"{url}?{flag}={value}"), 400, flag)


class TestGetProcess:
    async def test_returns_the_process_with_unused_tool_locations(self, api):
        machine = await api.machine()
        created = await api.process(machine["id"], **FULL)
        fetched = await api.ok("GET", f"/api/processes/{created['id']}")
        assert fetched == {**created, "unused_tool_locations": []}

    async def test_returns_404_for_an_unknown_and_400_for_a_non_numeric_id(self, api):
        await problem(api, "GET", "/api/processes/777", 404, "777")
        await problem(api, "GET", "/api/processes/abc", 400, "process_id")

    async def test_programs_flag_includes_each_program_with_its_loaded_state(self, api):
        machine = await api.machine()
        process = await api.process(machine["id"])
        p1 = await api.program(machine["id"], "O1000.nc", process["id"])
        p2 = await api.program(machine["id"], "O2000.nc", process["id"])
        await load(api, machine["id"], "O2000.nc")
        programs = (await api.ok("GET", f"/api/processes/{process['id']}?programs=1"))["programs"]
        assert set(programs) == {str(p1["id"]), str(p2["id"])}
        assert programs[str(p1["id"])]["loaded"] is False
        assert programs[str(p2["id"])]["loaded"] is True
        assert programs[str(p2["id"])]["filename"] == "O2000.nc"

    async def test_tools_flag_includes_tools_of_assigned_assemblies_only(self, api):
        machine = await api.machine()
        a, b = await api.process(machine["id"], "A"), await api.process(machine["id"], "B")
        mine = await api.assembly(machine["id"], "T1", a["id"], tools=[{"name": "holder"}, {"name": "insert"}])
        await api.assembly(machine["id"], "T2", b["id"], tools=[{"name": "other"}])
        fetched = await api.ok("GET", f"/api/processes/{a['id']}?tools=1")
        assert fetched["tools"] == mine["tools"] and len(fetched["tools"]) == 2
        assert {t["location"] for t in fetched["tools"].values()} == {"T1"}
        assert "programs" not in fetched and "efficiency" not in fetched


class TestUnusedToolLocations:
    async def _setup(self, api):
        machine = await api.machine()
        process = await api.process(machine["id"])
        await api.program(machine["id"], "O1000.nc", process["id"])
        for location in ("T1", "T2", "T3"):
            await api.assembly(machine["id"], location, process["id"])
        await api.assembly(machine["id"], "T4", None)  # not the process's: never reported
        await load(api, machine["id"], "O1000.nc")
        return machine, process

    async def test_is_empty_before_any_part_and_when_the_check_is_disabled(self, api):
        machine, process = await self._setup(api)
        assert (await api.ok("GET", f"/api/processes/{process['id']}"))["unused_tool_locations"] == []
        await part(api, machine["id"], T0 + 60, "O1000.nc")
        assert (await api.ok("GET", f"/api/processes/{process['id']}"))["unused_tool_locations"] == [
            "T1", "T2", "T3"]
        await api.ok("PATCH", "/api/settings", json={"check_unused_tools_parts": 0})
        assert (await api.ok("GET", f"/api/processes/{process['id']}"))["unused_tool_locations"] == []

    async def test_lists_assigned_locations_none_of_the_last_n_parts_used(self, api):
        machine, process = await self._setup(api)
        await tool(api, machine["id"], "T1", T0)
        await part(api, machine["id"], T0 + 60, "O1000.nc")  # T1
        await tool(api, machine["id"], "T2", T0 + 70)
        await part(api, machine["id"], T0 + 120, "O1000.nc")  # started with T1, changed to T2
        await part(api, machine["id"], T0 + 180, "O1000.nc")  # T2 only
        url = f"/api/processes/{process['id']}"
        assert (await api.ok("GET", url))["unused_tool_locations"] == ["T3"]  # default: last 5 parts
        await api.ok("PATCH", "/api/settings", json={"check_unused_tools_parts": 1})
        assert (await api.ok("GET", url))["unused_tool_locations"] == ["T1", "T3"]
        await api.ok("PATCH", "/api/settings", json={"check_unused_tools_parts": 2})
        assert (await api.ok("GET", url))["unused_tool_locations"] == ["T3"]


class TestDerivedFields:
    async def test_loaded_is_true_while_a_program_of_the_process_is_loaded(self, api):
        machine = await api.machine()
        a, b = await api.process(machine["id"], "A"), await api.process(machine["id"], "B")
        await api.program(machine["id"], "O1000.nc", a["id"])
        await api.program(machine["id"], "O9000.nc", None)
        await load(api, machine["id"], "O1000.nc")
        listed = await api.ok("GET", "/api/processes/")
        assert (listed[str(a["id"])]["loaded"], listed[str(b["id"])]["loaded"]) == (True, False)
        await load(api, machine["id"], "O9000.nc", T0 + 1)  # a program in no process
        assert (await api.ok("GET", f"/api/processes/{a['id']}"))["loaded"] is False
        await load(api, machine["id"], "O1000.nc", T0 + 2)
        await load(api, machine["id"], None, T0 + 3)  # nothing loaded
        assert (await api.ok("GET", f"/api/processes/{a['id']}"))["loaded"] is False

    async def test_last_cycle_is_the_newest_part_of_the_process_or_null(self, api):
        machine = await api.machine()
        process, idle = await api.process(machine["id"], "A"), await api.process(machine["id"], "B")
        program = await api.program(machine["id"], "O1000.nc", process["id"])
        await load(api, machine["id"], "O1000.nc")
        await part(api, machine["id"], T0 + 300, "O1000.nc")
        await part(api, machine["id"], T0 + 100, "O1000.nc")  # reported late: older
        fetched = await api.ok("GET", f"/api/processes/{process['id']}")
        assert fetched["last_cycle"] == {"finished": T0 + 300, "program_id": program["id"]}
        assert isinstance(fetched["last_cycle"]["finished"], float)
        assert (await api.ok("GET", f"/api/processes/{idle['id']}"))["last_cycle"] is None

    async def test_unassigned_tools_used_maps_location_to_unix_time_of_last_use(self, api):
        machine = await api.machine()
        process = await api.process(machine["id"])
        await api.program(machine["id"], "O1000.nc", process["id"])
        await api.assembly(machine["id"], "T1", process["id"])
        await load(api, machine["id"], "O1000.nc")
        await tool(api, machine["id"], "T1", T0)  # filled by the process: not reported
        await tool(api, machine["id"], "T9", T0 + 10)
        await tool(api, machine["id"], "T9", T0 + 20)
        await tool(api, machine["id"], "T12", T0 + 30)
        fetched = await api.ok("GET", f"/api/processes/{process['id']}")
        assert fetched["unassigned_tools_used"] == {"T9": T0 + 20, "T12": T0 + 30}
        assert all(isinstance(v, float) for v in fetched["unassigned_tools_used"].values())

    async def test_active_is_true_for_the_machines_confirmed_process(self, api):
        machine = await api.machine()
        a, b = await api.process(machine["id"], "A"), await api.process(machine["id"], "B")
        await api.ok("POST", f"/api/processes/{a['id']}/changeover/{b['id']}?planned=1")
        listed = await api.ok("GET", "/api/processes/")
        assert (listed[str(a["id"])]["active"], listed[str(b["id"])]["active"]) == (False, True)


class TestEfficiency:
    async def test_reports_parts_cycle_times_revenue_and_margin_of_the_last_30_days(self, api):
        machine = await api.machine()
        process = await api.process(machine["id"], time_per_cycle=8.0, part_sell_price=10.0,
                                    part_material_cost=4.0, parts_per_cycle=2)
        await api.program(machine["id"], "O1000.nc", process["id"])
        await load(api, machine["id"], "O1000.nc")
        await part(api, machine["id"], T0, "O1000.nc")  # first part: no measured cycle
        await part(api, machine["id"], T0 + 600, "O1000.nc")  # 10 min
        await part(api, machine["id"], T0 + 1200, "O1000.nc")  # 10 min
        now = T0 + 3600
        with clock(api, now):
            efficiency = (await api.ok("GET", f"/api/processes/{process['id']}?efficiency=1"))["efficiency"]
        assert efficiency == {
            "window_start": now - 30 * 86400, "window_end": now, "parts": 6, "cycles": 3,
            "expected_cycle_time": 8.0, "average_cycle_time": 10.0, "efficiency": 0.8, "revenue": 60.0,
            "material_cost": 24.0, "margin": 36.0, "margin_per_hour": 108.0,
            "totals": {"parts": 6, "cycles": 3, "measured_cycles": 2, "measured_seconds": 1200.0},
        }

    async def test_leaves_out_parts_older_than_30_days_and_other_processes(self, api):
        machine = await api.machine()
        process = await api.process(machine["id"], "A", part_sell_price=1.0)
        other = await api.process(machine["id"], "B", part_sell_price=1.0)
        await api.program(machine["id"], "O1000.nc", process["id"])
        await api.program(machine["id"], "O2000.nc", other["id"])
        await load(api, machine["id"], "O1000.nc")
        await part(api, machine["id"], T0 - 31 * 86400, "O1000.nc")
        await part(api, machine["id"], T0 - 86400, "O1000.nc")
        await load(api, machine["id"], "O2000.nc")
        await part(api, machine["id"], T0 - 3600, "O2000.nc")
        with clock(api, T0):
            listed = await api.ok("GET", "/api/processes/?efficiency=1")
        mine, theirs = listed[str(process["id"])]["efficiency"], listed[str(other["id"])]["efficiency"]
        assert (mine["parts"], mine["revenue"]) == (1, 1.0)
        assert (theirs["parts"], theirs["revenue"]) == (1, 1.0)


class TestPatchProcess:
    async def test_changes_only_the_fields_sent_and_publishes_process_upserted(self, api):
        machine = await api.machine()
        created = await api.process(machine["id"], **FULL)
        updated = await api.ok("PATCH", f"/api/processes/{created['id']}", json={"name": "Renamed", "tags": []})
        assert updated == {**created, "name": "Renamed", "tags": []}
        assert await api.ok("GET", f"/api/processes/{created['id']}") == {**updated, "unused_tool_locations": []}
        assert (await payloads(api, "process.upserted"))[-1]["name"] == "Renamed"

    async def test_every_writable_field_can_be_changed_and_nullable_ones_cleared(self, api):
        machine = await api.machine()
        created = await api.process(machine["id"])
        updated = await api.ok("PATCH", f"/api/processes/{created['id']}", json={**FULL, "archived": True})
        for key, value in {**FULL, "archived": True}.items():
            assert updated[key] == value, key
        cleared = await api.ok("PATCH", f"/api/processes/{created['id']}", json={
            "time_per_cycle": None, "display_variable": None, "part_count_cv": None})
        assert (cleared["time_per_cycle"], cleared["display_variable"], cleared["part_count_cv"]) == (None,) * 3
        assert (await payloads(api, "process.upserted"))[-1]["time_per_cycle"] is None

    async def test_returns_400_naming_the_offending_field_and_changes_nothing(self, api):
        m1, m2 = await api.machine("Mill"), await api.machine("Lathe")
        created = await api.process(m1["id"])
        url = f"/api/processes/{created['id']}"
        cases = [({"machine_id": m2["id"], "name": "Moved"}, "machine_id"), ({"priority": 1}, "priority")]
        cases += [({field: None}, field) for field in
                  ("name", "parts_per_cycle", "tags", "cv_map", "archived", "description", "part_sell_price")]
        cases += INVALID_VALUES
        for body, field in cases:
            assert_problem(await api.call("PATCH", url, json=body), 400, field)
        assert_problem(await api.call("PATCH", url, json="name"), 400)
        assert await api.ok("GET", url) == {**created, "unused_tool_locations": []}

    async def test_accepts_the_same_machine_id_and_the_whole_read_object_sent_back(self, api):
        machine = await api.machine()
        created = await api.process(machine["id"])
        fetched = await api.ok("GET", f"/api/processes/{created['id']}?programs=1&tools=1&efficiency=1")
        updated = await api.ok("PATCH", f"/api/processes/{created['id']}", json={**fetched, "name": "Edited"})
        assert updated == {**created, "name": "Edited"}
        updated = await api.ok("PATCH", f"/api/processes/{created['id']}",
                               json={"machine_id": machine["id"], "description": "same machine"})
        assert (updated["machine_id"], updated["description"]) == (machine["id"], "same machine")

    async def test_returns_404_for_an_unknown_process(self, api):
        await problem(api, "PATCH", "/api/processes/404", 404, "404", json={"name": "x"})


class TestDeleteProcess:
    async def test_answers_204_publishes_process_deleted_and_the_process_is_gone(self, api):
        machine = await api.machine()
        created = await api.process(machine["id"])
        response = await api.call("DELETE", f"/api/processes/{created['id']}")
        assert response.status_code == 204 and response.content == b""
        await problem(api, "GET", f"/api/processes/{created['id']}", 404)
        assert await api.ok("GET", "/api/processes/") == {}
        assert await payloads(api, "process.deleted") == [{"process_id": created["id"], "machine_id": machine["id"]}]
        await problem(api, "DELETE", f"/api/processes/{created['id']}", 404, str(created["id"]))

    async def test_releases_programs_assemblies_parts_and_the_active_machine(self, api):
        machine = await api.machine()
        a, b = await api.process(machine["id"], "A"), await api.process(machine["id"], "B")
        program = await api.program(machine["id"], "O1000.nc", a["id"])
        assembly = await api.assembly(machine["id"], "T1", a["id"], tools=[{"name": "drill"}])
        await api.ok("PUT", f"/api/processes/{a['id']}/toolRequirements", 201, json={"location": "T1"})
        await api.ok("POST", f"/api/processes/{b['id']}/changeover/{a['id']}?planned=1")
        await load(api, machine["id"], "O1000.nc")
        await part(api, machine["id"], T0, "O1000.nc")
        await api.ok("DELETE", f"/api/processes/{a['id']}", 204)
        assert (await api.ok("GET", f"/api/programs/{program['id']}"))["process_id"] is None
        assert (await api.ok("GET", f"/api/toolAssemblies/{assembly['id']}"))["process_id"] is None
        assert (await api.ok("GET", f"/api/machines/{machine['id']}"))["active_process_id"] is None
        (kept,) = (await api.ok("GET", f"/api/parts/?machine_id={machine['id']}")).values()
        assert (kept["process_id"], kept["program_id"]) == (None, program["id"])
        assert set(await api.ok("GET", "/api/processes/")) == {str(b["id"])}


class TestArchiveProcess:
    async def test_marks_the_process_archived_leaves_programs_alone_and_publishes(self, api):
        machine = await api.machine()
        process = await api.process(machine["id"])
        program = await api.program(machine["id"], "O1000.nc", process["id"])
        archived = await api.ok("POST", f"/api/processes/{process['id']}/archive")
        assert archived == {**process, "archived": True}
        assert (await api.ok("GET", f"/api/processes/{process['id']}"))["archived"] is True
        assert (await api.ok("GET", f"/api/programs/{program['id']}"))["archived"] is False
        assert (await payloads(api, "process.upserted"))[-1]["archived"] is True

    async def test_programs_flag_also_archives_the_programs_of_the_process_only(self, api):
        machine = await api.machine()
        a, b = await api.process(machine["id"], "A"), await api.process(machine["id"], "B")
        mine = [await api.program(machine["id"], f"O100{i}.nc", a["id"]) for i in range(2)]
        other = await api.program(machine["id"], "O2000.nc", b["id"])
        loose = await api.program(machine["id"], "O3000.nc")
        assert (await api.ok("POST", f"/api/processes/{a['id']}/archive?programs=1"))["archived"] is True
        programs = await api.ok("GET", "/api/programs/")
        assert [programs[str(p["id"])]["archived"] for p in mine] == [True, True]
        assert programs[str(other["id"])]["archived"] is False
        assert programs[str(loose["id"])]["archived"] is False
        assert (await api.ok("GET", f"/api/processes/{b['id']}"))["archived"] is False

    async def test_returns_404_for_an_unknown_process_and_400_for_a_bad_programs_flag(self, api):
        await problem(api, "POST", "/api/processes/55/archive", 404, "55")
        machine = await api.machine()
        process = await api.process(machine["id"])
        await problem(api, "POST", f"/api/processes/{process['id']}/archive?programs=all", 400, "programs")
        assert (await api.ok("GET", f"/api/processes/{process['id']}"))["archived"] is False


class TestProcessTools:
    async def test_maps_tool_id_to_the_tools_in_assemblies_assigned_to_the_process(self, api):
        machine = await api.machine()
        a, b = await api.process(machine["id"], "A"), await api.process(machine["id"], "B")
        assert await api.ok("GET", f"/api/processes/{a['id']}/tools") == {}
        t1 = await api.assembly(machine["id"], "T1", a["id"], tools=[{"name": "holder", "diameter": 10.0}])
        t2 = await api.assembly(machine["id"], "T2", a["id"], tools=[{"name": "tap", "tool_type": "tap"}])
        await api.assembly(machine["id"], "T3", b["id"], tools=[{"name": "not mine"}])
        await api.assembly(machine["id"], "T4", None, tools=[{"name": "spare"}])
        tools = await api.ok("GET", f"/api/processes/{a['id']}/tools")
        assert tools == {**t1["tools"], **t2["tools"]} and len(tools) == 2
        (holder,) = t1["tools"].values()
        assert (holder["location"], holder["process_id"], holder["machine_id"], holder["diameter"]) == (
            "T1", a["id"], machine["id"], 10.0)

    async def test_returns_404_for_an_unknown_process(self, api):
        await problem(api, "GET", "/api/processes/8/tools", 404, "8")


# --- roles -------------------------------------------------------------------------------------

READ_ROUTES = [
    ("GET", "/api/processes/", None),
    ("GET", "/api/processes/{id}?programs=1&tools=1&efficiency=1", None),
    ("GET", "/api/processes/{id}/toolRequirements", None),
    ("GET", "/api/processes/{id}/tools", None),
    ("GET", "/api/processes/{id}/overview/2024", None),
    ("GET", "/api/processes/{id}/overview/2024/6", None),
    ("GET", "/api/processes/{id}/chart", None),
    ("GET", "/api/processes/variables", None),
    ("POST", "/api/processes/averageCycleTimes", [1]),
]
# Ordered so that each succeeds after the ones before it (delete last).
EDIT_ROUTES = [
    ("PUT", "/api/processes/", {"machine_id": "{machine}", "name": "New"}),
    ("PATCH", "/api/processes/{id}", {"name": "Edited"}),
    ("POST", "/api/processes/{id}/archive", None),
    ("PUT", "/api/processes/{id}/toolRequirements", {"location": "T5"}),
    ("POST", "/api/processes/{id}/duplicate", {"machine_id": "{machine}", "name": "Copy"}),
    ("DELETE", "/api/processes/{id}", None),
]
CHANGEOVER = ("POST", "/api/processes/{id}/changeover/{other}?planned=1", None)


async def _shop(api):
    machine = await api.machine()
    process = await api.process(machine["id"])
    other = await api.process(machine["id"], "Other")
    return {"id": process["id"], "other": other["id"], "machine": machine["id"]}


def _fill(route, ids):
    method, url, body = route
    if isinstance(body, dict):
        body = {k: ids[v[1:-1]] if isinstance(v, str) and v.startswith("{") else v for k, v in body.items()}
    return method, url.format(**ids), body


class TestRoles:
    async def test_every_role_may_read(self, api):
        ids = await _shop(api)
        for route in READ_ROUTES:
            method, url, body = _fill(route, ids)
            for role in ("admin", "planner", "shop", "auditor", "machine"):
                response = await api.call(method, url, role, json=body)
                assert response.status_code == 200, (method, url, role, response.text)

    @pytest.mark.parametrize("allowed", ["admin", "planner"])
    async def test_only_admin_and_planner_may_create_edit_and_delete(self, api, allowed):
        ids = await _shop(api)
        for route in EDIT_ROUTES:
            method, url, body = _fill(route, ids)
            before = await api.ok("GET", "/api/processes/?programs=1")
            for role in ("shop", "auditor", "machine"):
                response = await api.call(method, url, role, json=body)
                assert_problem(response, 403)
            assert await api.ok("GET", "/api/processes/?programs=1") == before, (method, url)
            response = await api.call(method, url, allowed, json=body)
            assert response.status_code in (200, 201, 204), (method, url, response.text)

    async def test_shop_staff_may_confirm_a_changeover_and_readers_may_not(self, api):
        ids = await _shop(api)
        method, url, body = _fill(CHANGEOVER, ids)
        for role in ("auditor", "machine"):
            assert_problem(await api.call(method, url, role, json=body), 403)
        assert (await api.ok("GET", f"/api/processes/{ids['other']}"))["active"] is False
        for role in ("shop", "planner", "admin"):
            assert (await api.call(method, url, role, json=body)).status_code == 200, role

    async def test_returns_401_without_a_token(self, api):
        ids = await _shop(api)
        for route in READ_ROUTES + EDIT_ROUTES + [CHANGEOVER]:
            method, url, body = _fill(route, ids)
            response = await api.client.request(method, url, json=body)
            assert_problem(response, 401)
            assert response.headers["www-authenticate"].startswith("Bearer"), (method, url)
        assert len(await api.ok("GET", "/api/processes/")) == 2

    async def test_returns_401_with_a_bad_token(self, api):
        now = int(time.time())
        claims = {"sub": "mallory", "roles": ["admin"], "iat": now, "exp": now + 600}
        tokens = {
            "garbage": "not.a.jwt",
            "wrong secret": jwt.encode(claims, "another-secret-" + "y" * 32, algorithm="HS256"),
            "expired": jwt.encode({**claims, "exp": now - 60}, SECRET, algorithm="HS256"),
            "roles not a list": jwt.encode({**claims, "roles": "admin"}, SECRET, algorithm="HS256"),
            "no subject": jwt.encode({k: v for k, v in claims.items() if k != "sub"}, SECRET, algorithm="HS256"),
        }
        machine = await api.machine()
        for name, token in tokens.items():
            response = await api.client.put("/api/processes/", headers={"Authorization": f"Bearer {token}"},
                                            json={"machine_id": machine["id"], "name": "x"})
            assert response.status_code == 401, (name, response.text)
        assert_problem(await api.client.get("/api/processes/", headers={"Authorization": "Basic YWRtaW46YWRtaW4="}),
                       401)
        assert await api.ok("GET", "/api/processes/") == {}
