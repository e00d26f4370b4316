"""The resources the seed refers to: machines, programs, tool assemblies, tools, parts, settings."""

from __future__ import annotations

from tests.process.api.helpers import (
    T0,
    assert_problem,
    interlock,
    load,
    part,
    payloads,
    problem,
    tool,
    variables,
)


class TestMachines:
    async def test_create_answers_201_with_every_field_and_publishes_machine_upserted(self, api):
        created = await api.ok("PUT", "/api/machines/", 201, json={
            "name": "Haas VF-2", "description": "3-axis VMC", "location": "Bay 2", "id": 77, "blocked": True})
        assert created == {
            "id": created["id"], "name": "Haas VF-2", "description": "3-axis VMC", "location": "Bay 2",
            "archived": False, "active_process_id": None, "loaded_program_id": None, "blocked": False,
            "blocking_items": [], "current_tool": None, "variables": {}, "last_seen": None}
        assert created["id"] != 77
        assert await api.ok("GET", "/api/machines/") == {str(created["id"]): created}
        assert await api.ok("GET", f"/api/machines/{created['id']}", role="auditor") == created
        assert await payloads(api, "machine.upserted") == [{
            "machine_id": created["id"], "name": "Haas VF-2", "archived": False, "active_process_id": None,
            "blocked": False}]

    async def test_telemetry_and_interlocks_show_on_the_machine(self, api):
        machine = await api.machine()
        await load(api, machine["id"], "O1000.nc", T0)
        await tool(api, machine["id"], "T5", T0 + 1)
        await variables(api, machine["id"], {"500": 3}, T0 + 2)
        await interlock(api, machine["id"], True, [12, 4])
        seen = await api.ok("GET", f"/api/machines/{machine['id']}")
        (program,) = (await api.ok("GET", "/api/programs/")).values()  # an unknown filename became a program
        assert program["filename"] == "O1000.nc" and program["loaded"] is True
        assert (seen["loaded_program_id"], seen["current_tool"], seen["variables"]) == (program["id"], "T5",
                                                                                        {"500": 3})
        assert (seen["last_seen"], seen["blocked"], seen["blocking_items"]) == (T0 + 2, True, [4, 12])
        assert (await payloads(api, "machine.upserted"))[-1]["blocked"] is True
        await interlock(api, machine["id"], False, [])
        assert (await api.ok("GET", f"/api/machines/{machine['id']}"))["blocked"] is False

    async def test_patch_changes_only_the_fields_sent(self, api):
        created = await api.machine("Mill", location="Bay 1")
        updated = await api.ok("PATCH", f"/api/machines/{created['id']}", json={"archived": True, "name": "Mill 2",
                                                                                "active_process_id": 5})
        assert updated == {**created, "archived": True, "name": "Mill 2"}
        assert (await payloads(api, "machine.upserted"))[-1]["archived"] is True

    async def test_returns_400_naming_the_offending_field(self, api):
        created = await api.machine()
        for method, url, body, field in [
            ("PUT", "/api/machines/", {}, "name"), ("PUT", "/api/machines/", {"name": ""}, "name"),
            ("PUT", "/api/machines/", {"name": "M", "axes": 5}, "axes"),
            ("PUT", "/api/machines/", {"name": "M", "archived": "no way"}, "archived"),
            ("PATCH", f"/api/machines/{created['id']}", {"name": ""}, "name"),
            ("PATCH", f"/api/machines/{created['id']}", {"name": None}, "name"),
            ("PATCH", f"/api/machines/{created['id']}", {"colour": "grey"}, "colour"),
        ]:
            assert_problem(await api.call(method, url, json=body), 400, field)
        assert await api.ok("GET", "/api/machines/") == {str(created["id"]): created}

    async def test_delete_answers_204_and_409_while_processes_use_the_machine(self, api):
        machine = await api.machine()
        process = await api.process(machine["id"])
        await problem(api, "DELETE", f"/api/machines/{machine['id']}", 409, "process")
        await api.ok("DELETE", f"/api/processes/{process['id']}", 204)
        await api.program(machine["id"], "O1000.nc")
        await api.ok("DELETE", f"/api/machines/{machine['id']}", 204)
        await problem(api, "GET", f"/api/machines/{machine['id']}", 404, str(machine["id"]))
        assert await api.ok("GET", "/api/programs/") == {}
        assert await payloads(api, "machine.deleted") == [{"machine_id": machine["id"]}]

    async def test_returns_404_for_an_unknown_machine(self, api):
        for method in ("GET", "PATCH", "DELETE"):
            await problem(api, method, "/api/machines/64", 404, "64", json={"name": "x"} if method == "PATCH" else None)

    async def test_only_admin_and_planner_may_edit_machines(self, api):
        machine = await api.machine()
        for role in ("shop", "auditor", "machine"):
            assert_problem(await api.call("PUT", "/api/machines/", role, json={"name": "M"}), 403)
            assert_problem(await api.call("PATCH", f"/api/machines/{machine['id']}", role, json={"name": "M"}), 403)
            assert_problem(await api.call("DELETE", f"/api/machines/{machine['id']}", role), 403)
            assert (await api.call("GET", "/api/machines/", role)).status_code == 200
        assert_problem(await api.client.get("/api/machines/"), 401)
        await api.ok("PUT", "/api/machines/", 201, role="planner", json={"name": "M"})
        await api.ok("PATCH", f"/api/machines/{machine['id']}", role="planner", json={"name": "N"})


class TestPrograms:
    async def test_create_answers_201_with_every_field(self, api):
        machine = await api.machine()
        process = await api.process(machine["id"])
        created = await api.ok("PUT", "/api/programs/", 201, json={
            "machine_id": machine["id"], "filename": "O1000.nc", "name": "Op10 roughing", "description": "rough",
            "process_id": process["id"], "loaded": True, "last_loaded": 5.0})
        assert created == {
            "id": created["id"], "machine_id": machine["id"], "filename": "O1000.nc", "name": "Op10 roughing",
            "description": "rough", "process_id": process["id"], "archived": False, "loaded": False,
            "last_loaded": None}
        await load(api, machine["id"], "O1000.nc", T0)
        fetched = await api.ok("GET", f"/api/programs/{created['id']}")
        assert (fetched["loaded"], fetched["last_loaded"]) == (True, T0)

    async def test_filename_is_unique_per_machine(self, api):
        mill, lathe = await api.machine("Mill"), await api.machine("Lathe")
        first = await api.program(mill["id"], "O1000.nc")
        await problem(api, "PUT", "/api/programs/", 409, "O1000.nc",
                      json={"machine_id": mill["id"], "filename": "O1000.nc"})
        await api.program(lathe["id"], "O1000.nc")  # another machine: fine
        second = await api.program(mill["id"], "O2000.nc")
        await problem(api, "PATCH", f"/api/programs/{second['id']}", 409, "O1000.nc", json={"filename": "O1000.nc"})
        assert (await api.ok("PATCH", f"/api/programs/{first['id']}", json={"filename": "O1000.nc"}))["id"] == (
            first["id"])

    async def test_process_must_exist_on_the_same_machine(self, api):
        mill, lathe = await api.machine("Mill"), await api.machine("Lathe")
        on_lathe = await api.process(lathe["id"])
        on_mill = await api.process(mill["id"])
        await problem(api, "PUT", "/api/programs/", 400, "process_id",
                      json={"machine_id": mill["id"], "filename": "O1.nc", "process_id": on_lathe["id"]})
        await problem(api, "PUT", "/api/programs/", 400, "process_id",
                      json={"machine_id": mill["id"], "filename": "O1.nc", "process_id": 4242})
        program = await api.program(mill["id"], "O1.nc", on_mill["id"])
        await problem(api, "PATCH", f"/api/programs/{program['id']}", 400, "process_id",
                      json={"process_id": on_lathe["id"]})
        assert (await api.ok("PATCH", f"/api/programs/{program['id']}", json={"process_id": None}))[
            "process_id"] is None

    async def test_returns_400_naming_the_offending_field(self, api):
        mill, lathe = await api.machine("Mill"), await api.machine("Lathe")
        program = await api.program(mill["id"], "O1.nc")
        for method, url, body, field in [
            ("PUT", "/api/programs/", {"filename": "O2.nc"}, "machine_id"),
            ("PUT", "/api/programs/", {"machine_id": 4242, "filename": "O2.nc"}, "machine_id"),
            ("PUT", "/api/programs/", {"machine_id": mill["id"]}, "filename"),
            ("PUT", "/api/programs/", {"machine_id": mill["id"], "filename": ""}, "filename"),
            ("PUT", "/api/programs/", {"machine_id": mill["id"], "filename": "O2.nc", "size": 1}, "size"),
            ("PATCH", f"/api/programs/{program['id']}", {"machine_id": lathe["id"]}, "machine_id"),
            ("PATCH", f"/api/programs/{program['id']}", {"filename": None}, "filename"),
            ("PATCH", f"/api/programs/{program['id']}", {"archived": None}, "archived"),
        ]:
            assert_problem(await api.call(method, url, json=body), 400, field)
        assert list(await api.ok("GET", "/api/programs/")) == [str(program["id"])]

    async def test_list_filters_by_machine_and_process(self, api):
        mill, lathe = await api.machine("Mill"), await api.machine("Lathe")
        process = await api.process(mill["id"])
        p1 = await api.program(mill["id"], "O1.nc", process["id"])
        p2 = await api.program(mill["id"], "O2.nc")
        p3 = await api.program(lathe["id"], "O1.nc")
        assert list(await api.ok("GET", "/api/programs/")) == [str(p["id"]) for p in (p1, p2, p3)]
        assert list(await api.ok("GET", f"/api/programs/?machine_id={mill['id']}")) == [str(p1["id"]), str(p2["id"])]
        assert list(await api.ok("GET", f"/api/programs/?process_id={process['id']}")) == [str(p1["id"])]
        assert await api.ok("GET", f"/api/programs/?machine_id={lathe['id']}&process_id={process['id']}") == {}

    async def test_delete_answers_204_and_unloads_the_program(self, api):
        machine = await api.machine()
        program = await api.program(machine["id"], "O1.nc")
        await load(api, machine["id"], "O1.nc")
        await api.ok("DELETE", f"/api/programs/{program['id']}", 204)
        await problem(api, "GET", f"/api/programs/{program['id']}", 404, str(program["id"]))
        await problem(api, "DELETE", f"/api/programs/{program['id']}", 404)
        await problem(api, "PATCH", f"/api/programs/{program['id']}", 404, json={"name": "x"})
        assert (await api.ok("GET", f"/api/machines/{machine['id']}"))["loaded_program_id"] is None

    async def test_only_admin_and_planner_may_edit_programs(self, api):
        machine = await api.machine()
        program = await api.program(machine["id"], "O1.nc")
        for role in ("shop", "auditor"):
            assert_problem(await api.call("PUT", "/api/programs/", role,
                                          json={"machine_id": machine["id"], "filename": "O2.nc"}), 403)
            assert_problem(await api.call("PATCH", f"/api/programs/{program['id']}", role, json={"name": "x"}), 403)
            assert_problem(await api.call("DELETE", f"/api/programs/{program['id']}", role), 403)
            assert (await api.call("GET", f"/api/programs/{program['id']}", role)).status_code == 200
        assert await api.ok("GET", "/api/programs/") == {str(program["id"]): program}


class TestToolAssemblies:
    async def test_create_answers_201_with_its_tools(self, api):
        machine = await api.machine()
        process = await api.process(machine["id"])
        created = await api.ok("PUT", "/api/toolAssemblies/", 201, json={
            "machine_id": machine["id"], "name": "Face mill", "description": "50 mm", "location": "T7",
            "process_id": process["id"],
            "tools": [{"name": "shell mill", "tool_type": "face mill", "part_number": "SM50", "diameter": 50.0,
                       "length": 45.5, "description": "5 inserts"}]})
        (tool_id, new_tool), = created["tools"].items()
        assert created == {"id": created["id"], "machine_id": machine["id"], "name": "Face mill",
                           "description": "50 mm", "location": "T7", "process_id": process["id"],
                           "tools": {tool_id: new_tool}}
        assert new_tool == {
            "id": int(tool_id), "assembly_id": created["id"], "machine_id": machine["id"], "location": "T7",
            "process_id": process["id"], "name": "shell mill", "description": "5 inserts", "tool_type": "face mill",
            "part_number": "SM50", "diameter": 50.0, "length": 45.5}
        assert await api.ok("GET", f"/api/toolAssemblies/{created['id']}") == created
        bare = await api.assembly(machine["id"], None)
        assert (bare["location"], bare["process_id"], bare["tools"], bare["name"]) == (None, None, {}, "")

    async def test_patch_moves_assigns_and_unassigns_the_assembly(self, api):
        machine = await api.machine()
        a, b = await api.process(machine["id"], "A"), await api.process(machine["id"], "B")
        created = await api.assembly(machine["id"], "T1", a["id"], tools=[{"name": "drill"}])
        moved = await api.ok("PATCH", f"/api/toolAssemblies/{created['id']}", role="shop",
                             json={"location": "T9", "process_id": b["id"], "tools": {}, "id": 3})
        assert (moved["location"], moved["process_id"], moved["id"]) == ("T9", b["id"], created["id"])
        (moved_tool,) = moved["tools"].values()
        assert (moved_tool["location"], moved_tool["process_id"]) == ("T9", b["id"])
        unassigned = await api.ok("PATCH", f"/api/toolAssemblies/{created['id']}", json={"process_id": None})
        assert unassigned["process_id"] is None and unassigned["location"] == "T9"

    async def test_returns_400_naming_the_offending_field(self, api):
        mill, lathe = await api.machine("Mill"), await api.machine("Lathe")
        on_lathe = await api.process(lathe["id"])
        created = await api.assembly(mill["id"], "T1")
        for method, url, body, field in [
            ("PUT", "/api/toolAssemblies/", {"location": "T1"}, "machine_id"),
            ("PUT", "/api/toolAssemblies/", {"machine_id": 4242}, "machine_id"),
            ("PUT", "/api/toolAssemblies/", {"machine_id": mill["id"], "process_id": on_lathe["id"]}, "process_id"),
            ("PUT", "/api/toolAssemblies/", {"machine_id": mill["id"], "process_id": 4242}, "process_id"),
            ("PUT", "/api/toolAssemblies/", {"machine_id": mill["id"], "tools": [{"diameter": -1}]}, "diameter"),
            ("PUT", "/api/toolAssemblies/", {"machine_id": mill["id"], "holder": "BT40"}, "holder"),
            ("PATCH", f"/api/toolAssemblies/{created['id']}", {"machine_id": lathe["id"]}, "machine_id"),
            ("PATCH", f"/api/toolAssemblies/{created['id']}", {"process_id": on_lathe["id"]}, "process_id"),
            ("PATCH", f"/api/toolAssemblies/{created['id']}", {"name": None}, "name"),
        ]:
            assert_problem(await api.call(method, url, json=body), 400, field)
        assert list(await api.ok("GET", "/api/toolAssemblies/")) == [str(created["id"])]

    async def test_list_filters_by_machine_and_process(self, api):
        mill, lathe = await api.machine("Mill"), await api.machine("Lathe")
        process = await api.process(mill["id"])
        a1 = await api.assembly(mill["id"], "T1", process["id"])
        a2 = await api.assembly(mill["id"], "T2")
        a3 = await api.assembly(lathe["id"], "T1")
        assert list(await api.ok("GET", "/api/toolAssemblies/", role="auditor")) == [
            str(a["id"]) for a in (a1, a2, a3)]
        assert list(await api.ok("GET", f"/api/toolAssemblies/?machine_id={mill['id']}")) == [
            str(a1["id"]), str(a2["id"])]
        assert list(await api.ok("GET", f"/api/toolAssemblies/?process_id={process['id']}")) == [str(a1["id"])]

    async def test_delete_answers_204_and_removes_its_tools(self, api):
        machine = await api.machine()
        created = await api.assembly(machine["id"], "T1", tools=[{"name": "a"}, {"name": "b"}])
        response = await api.call("DELETE", f"/api/toolAssemblies/{created['id']}", role="shop")
        assert response.status_code == 204
        await problem(api, "GET", f"/api/toolAssemblies/{created['id']}", 404, str(created["id"]))
        for tool_id in created["tools"]:
            await problem(api, "GET", f"/api/tools/{tool_id}", 404)
        assert await api.ok("GET", "/api/tools/") == {}
        await problem(api, "PATCH", f"/api/toolAssemblies/{created['id']}", 404, json={"name": "x"})
        await problem(api, "DELETE", f"/api/toolAssemblies/{created['id']}", 404)

    async def test_shop_staff_may_edit_assemblies_and_auditors_may_not(self, api):
        machine = await api.machine()
        created = await api.assembly(machine["id"], "T1")
        for role in ("auditor", "machine"):
            assert_problem(await api.call("PUT", "/api/toolAssemblies/", role, json={"machine_id": machine["id"]}),
                           403)
            assert_problem(await api.call("PATCH", f"/api/toolAssemblies/{created['id']}", role,
                                          json={"location": "T2"}), 403)
            assert_problem(await api.call("DELETE", f"/api/toolAssemblies/{created['id']}", role), 403)
        for role in ("shop", "planner"):
            await api.ok("PUT", "/api/toolAssemblies/", 201, role=role, json={"machine_id": machine["id"]})
        assert (await api.ok("GET", f"/api/toolAssemblies/{created['id']}"))["location"] == "T1"


class TestTools:
    async def test_create_patch_and_delete_a_tool(self, api):
        machine = await api.machine()
        process = await api.process(machine["id"])
        first = await api.assembly(machine["id"], "T1", process["id"])
        second = await api.assembly(machine["id"], "T2")
        created = await api.ok("PUT", "/api/tools/", 201, role="shop", json={
            "assembly_id": first["id"], "name": "drill", "diameter": 6.8, "location": "ignored", "id": 4})
        assert created == {
            "id": created["id"], "assembly_id": first["id"], "machine_id": machine["id"], "location": "T1",
            "process_id": process["id"], "name": "drill", "description": "", "tool_type": "", "part_number": "",
            "diameter": 6.8, "length": None}
        assert await api.ok("GET", f"/api/tools/{created['id']}") == created
        # Tool replacement: new dimensions, then into another assembly.
        replaced = await api.ok("PATCH", f"/api/tools/{created['id']}", role="shop",
                                json={"diameter": 7.0, "part_number": "D7", "length": 80.0})
        assert replaced == {**created, "diameter": 7.0, "part_number": "D7", "length": 80.0}
        moved = await api.ok("PATCH", f"/api/tools/{created['id']}", json={"assembly_id": second["id"],
                                                                          "diameter": None})
        assert (moved["assembly_id"], moved["location"], moved["process_id"], moved["diameter"]) == (
            second["id"], "T2", None, None)
        await api.ok("DELETE", f"/api/tools/{created['id']}", 204, role="shop")
        await problem(api, "GET", f"/api/tools/{created['id']}", 404, str(created["id"]))
        await problem(api, "PATCH", f"/api/tools/{created['id']}", 404, json={"name": "x"})
        await problem(api, "DELETE", f"/api/tools/{created['id']}", 404)

    async def test_returns_400_naming_the_offending_field(self, api):
        machine = await api.machine()
        assembly = await api.assembly(machine["id"], "T1", tools=[{"name": "drill"}])
        (tool_id,) = assembly["tools"]
        for method, url, body, field in [
            ("PUT", "/api/tools/", {"name": "x"}, "assembly_id"),
            ("PUT", "/api/tools/", {"assembly_id": 4242}, "assembly_id"),
            ("PUT", "/api/tools/", {"assembly_id": assembly["id"], "length": "long"}, "length"),
            ("PUT", "/api/tools/", {"assembly_id": assembly["id"], "flutes": 3}, "flutes"),
            ("PATCH", f"/api/tools/{tool_id}", {"assembly_id": None}, "assembly_id"),
            ("PATCH", f"/api/tools/{tool_id}", {"assembly_id": 4242}, "assembly_id"),
            ("PATCH", f"/api/tools/{tool_id}", {"name": None}, "name"),
            ("PATCH", f"/api/tools/{tool_id}", {"diameter": -2}, "diameter"),
        ]:
            assert_problem(await api.call(method, url, json=body), 400, field)
        assert list(await api.ok("GET", "/api/tools/")) == [tool_id]
        for role in ("auditor", "machine"):
            assert_problem(await api.call("PATCH", f"/api/tools/{tool_id}", role, json={"name": "y"}), 403)
            assert_problem(await api.call("PUT", "/api/tools/", role, json={"assembly_id": assembly["id"]}), 403)
            assert_problem(await api.call("DELETE", f"/api/tools/{tool_id}", role), 403)

    async def test_list_filters_by_machine_process_and_assembly(self, api):
        mill, lathe = await api.machine("Mill"), await api.machine("Lathe")
        process = await api.process(mill["id"])
        a1 = await api.assembly(mill["id"], "T1", process["id"], tools=[{"name": "a"}, {"name": "b"}])
        a2 = await api.assembly(mill["id"], "T2", tools=[{"name": "c"}])
        a3 = await api.assembly(lathe["id"], "T1", tools=[{"name": "d"}])
        names = {}
        for query in ("", f"machine_id={mill['id']}", f"process_id={process['id']}", f"assembly_id={a2['id']}",
                      f"machine_id={lathe['id']}&assembly_id={a3['id']}", f"machine_id={lathe['id']}&"
                      f"assembly_id={a1['id']}"):
            names[query] = sorted(t["name"] for t in (await api.ok("GET", f"/api/tools/?{query}")).values())
        assert list(names.values()) == [["a", "b", "c", "d"], ["a", "b", "c"], ["a", "b"], ["c"], ["d"], []]


class TestParts:
    async def _parts(self, api):
        mill, lathe = await api.machine("Mill"), await api.machine("Lathe")
        process = await api.process(mill["id"], parts_per_cycle=2, cv_map={"Lot": {"number": 100}})
        program = await api.program(mill["id"], "O1000.nc", process["id"])
        await load(api, mill["id"], "O1000.nc")
        await variables(api, mill["id"], {"100": 41}, T0 - 5)
        await tool(api, mill["id"], "T3", T0 - 1)
        await part(api, mill["id"], T0, "O1000.nc")
        await tool(api, mill["id"], "T4", T0 + 10)
        await part(api, mill["id"], T0 + 60, "O1000.nc", increment=3)
        await load(api, mill["id"], "O9000.nc", T0 + 100)  # an unknown filename becomes a program
        await part(api, mill["id"], T0 + 120, "O9000.nc")  # a program in no process: a part of no process
        await part(api, lathe["id"], T0 + 30)  # nothing loaded, no process
        return mill, lathe, process, program

    async def test_parts_from_telemetry_have_every_field(self, api):
        mill, lathe, process, program = await self._parts(api)
        parts = await api.ok("GET", "/api/parts/", role="auditor")
        assert [p["finished"] for p in parts.values()] == [T0 + 120, T0 + 60, T0 + 30, T0]  # newest first
        first, second = parts[list(parts)[3]], parts[list(parts)[1]]
        assert first == {
            "id": first["id"], "machine_id": mill["id"], "process_id": process["id"], "program_id": program["id"],
            "count": 2, "cycles": 1, "finished": T0, "cycle_time": None, "tool_locations": ["T3"],
            "variables": {"Lot": 41}}
        assert (second["count"], second["cycles"], second["cycle_time"], second["tool_locations"]) == (
            6, 3, 60.0, ["T3", "T4"])
        other_program = next(iter(parts.values()))
        assert other_program["program_id"] not in (None, program["id"])
        new_program = await api.ok("GET", f"/api/programs/{other_program['program_id']}")
        assert (new_program["filename"], new_program["process_id"]) == ("O9000.nc", None)
        assert other_program["process_id"] is None
        lathe_part = parts[list(parts)[2]]
        assert (lathe_part["machine_id"], lathe_part["process_id"], lathe_part["program_id"]) == (
            lathe["id"], None, None)
        assert await api.ok("GET", f"/api/parts/{first['id']}") == first
        await problem(api, "GET", "/api/parts/99999", 404, "99999")

    async def test_list_filters_by_machine_process_program_and_time(self, api):
        mill, lathe, process, program = await self._parts(api)

        async def finished(query):
            return [p["finished"] for p in (await api.ok("GET", f"/api/parts/?{query}")).values()]

        assert await finished(f"machine_id={lathe['id']}") == [T0 + 30]
        assert await finished(f"process_id={process['id']}") == [T0 + 60, T0]
        assert await finished(f"program_id={program['id']}") == [T0 + 60, T0]
        assert await finished(f"start={T0 + 30}&end={T0 + 120}") == [T0 + 60, T0 + 30]  # [start, end)
        assert await finished(f"start={T0 + 60}") == [T0 + 120, T0 + 60]
        assert await finished(f"end={T0 + 30}") == [T0]
        assert await finished(f"machine_id={mill['id']}&limit=2") == [T0 + 120, T0 + 60]
        assert await finished(f"machine_id={mill['id']}&limit=2&offset=2") == [T0]
        assert await finished("machine_id=4242") == []

    async def test_returns_400_for_invalid_filters(self, api):
        for query, field in [(f"start={T0}&end={T0 - 1}", "end"), ("limit=0", "limit"), ("offset=-1", "offset"),
                             ("machine_id=mill", "machine_id"), ("start=today", "start")]:
            await problem(api, "GET", f"/api/parts/?{query}", 400, field)

    async def test_part_report_limit_drops_implausible_jumps(self, api):
        machine = await api.machine()
        await api.ok("PATCH", "/api/settings", json={"part_report_limit": 5})
        await part(api, machine["id"], T0, increment=6)
        await part(api, machine["id"], T0 + 1, increment=5)
        (recorded,) = (await api.ok("GET", "/api/parts/")).values()
        assert recorded["cycles"] == 5
        assert [e["cycles"] for e in await payloads(api, "process.part_recorded")] == [5]

    async def test_a_settings_change_applies_to_the_next_report_though_telemetry_keeps_them(self, api):
        machine = await api.machine()
        await part(api, machine["id"], T0, increment=6)  # read and kept with the default limit, 100
        await api.ok("PATCH", "/api/settings", json={"part_report_limit": 5})
        await part(api, machine["id"], T0 + 1, increment=6)  # over the new limit at once: dropped
        await api.ok("PATCH", "/api/settings", json={"part_report_limit": 6})
        await part(api, machine["id"], T0 + 2, increment=6)
        assert [e["cycles"] for e in await payloads(api, "process.part_recorded")] == [6, 6]


class TestSettings:
    async def test_defaults(self, api):
        for role in ("admin", "shop", "auditor"):
            assert await api.ok("GET", "/api/settings", role=role) == {
                "check_unused_tools_parts": 5, "part_report_limit": 100, "time_zone": "UTC"}

    async def test_patch_changes_only_the_settings_sent_and_publishes_them(self, api):
        updated = await api.ok("PATCH", "/api/settings", json={"time_zone": "America/Chicago"})
        assert updated == {"check_unused_tools_parts": 5, "part_report_limit": 100, "time_zone": "America/Chicago"}
        updated = await api.ok("PATCH", "/api/settings", role="planner",
                               json={"check_unused_tools_parts": 0, "part_report_limit": 0})
        assert updated == {"check_unused_tools_parts": 0, "part_report_limit": 0, "time_zone": "America/Chicago"}
        assert await api.ok("GET", "/api/settings") == updated
        assert (await payloads(api, "settings.updated"))[-1] == updated

    async def test_returns_400_naming_the_offending_setting_and_changes_nothing(self, api):
        for body, field in [({"time_zone": "Mars/Olympus_Mons"}, "time_zone"), ({"time_zone": None}, "time_zone"),
                            ({"time_zone": "localtime"}, "time_zone"),
                            ({"check_unused_tools_parts": -1}, "check_unused_tools_parts"),
                            ({"check_unused_tools_parts": "five"}, "check_unused_tools_parts"),
                            ({"part_report_limit": -5}, "part_report_limit"),
                            ({"part_report_limit": None}, "part_report_limit"), ({"language": "de"}, "language")]:
            assert_problem(await api.call("PATCH", "/api/settings", json=body), 400, field)
        assert await api.ok("GET", "/api/settings") == {
            "check_unused_tools_parts": 5, "part_report_limit": 100, "time_zone": "UTC"}

    async def test_only_admin_and_planner_may_change_settings(self, api):
        for role in ("shop", "auditor", "machine"):
            assert_problem(await api.call("PATCH", "/api/settings", role, json={"part_report_limit": 1}), 403)
        assert_problem(await api.client.patch("/api/settings", json={"part_report_limit": 1}), 401)
        assert_problem(await api.client.get("/api/settings"), 401)
        assert (await api.ok("GET", "/api/settings"))["part_report_limit"] == 100


class TestClientInputNeverFailsTheServer:
    async def test_out_of_range_numbers_and_nul_characters_are_400_or_404(self, api):
        machine = await api.machine()
        process = await api.process(machine["id"])
        big, huge = 3_000_000_000, 10**23  # beyond INTEGER (int4), beyond int64
        for resource in ("processes", "machines", "programs", "toolAssemblies", "tools", "parts"):
            for id in (big, huge):
                await problem(api, "GET", f"/api/{resource}/{id}", 404, str(id))
        await problem(api, "GET", f"/api/processes/{big}/overview/2024", 404)
        await problem(api, "POST", f"/api/processes/{big}/changeover/{process['id']}", 404)
        chart = f"/api/processes/{process['id']}/chart"
        for method, url, body, field in [
            ("POST", "/api/processes/averageCycleTimes", [big], "0"),
            ("GET", f"{chart}?start=1e20", None, "start"), ("GET", f"{chart}?start=nan", None, "start"),
            ("GET", f"{chart}?end=inf", None, "end"), ("GET", f"{chart}?start=-1e12", None, "start"),
            ("GET", "/api/parts/?start=1e20", None, "start"), ("GET", f"/api/parts/?machine_id={big}", None,
                                                                "machine_id"),
            ("GET", f"/api/programs/?process_id={huge}", None, "process_id"),
            ("GET", f"/api/tools/?assembly_id={big}", None, "assembly_id"),
            ("GET", f"/api/toolAssemblies/?machine_id={big}", None, "machine_id"),
            ("PUT", "/api/processes/", {"machine_id": big, "name": "x"}, "machine_id"),
            ("PUT", "/api/processes/", {"machine_id": machine["id"], "name": "x", "display_variable": big},
             "display_variable"),
            ("PUT", "/api/processes/", {"machine_id": machine["id"], "name": "x", "parts_per_cycle": big},
             "parts_per_cycle"),
            ("PUT", "/api/processes/", {"machine_id": machine["id"], "name": "x\x00y"}, "name"),
            ("PATCH", f"/api/processes/{process['id']}", {"tags": ["ok", "n\x00"]}, "tags"),
            ("PATCH", f"/api/processes/{process['id']}", {"cv_map": {"Lot\x00": {"number": 1}}}, "cv_map"),
            ("PATCH", f"/api/machines/{machine['id']}", {"description": "\x00"}, "description"),
            ("POST", f"/api/processes/{process['id']}/changeover/{process['id']}?planned=1",
             {"remove_tool_assemblies": [big]}, "remove_tool_assemblies"),
            ("POST", f"/api/processes/{process['id']}/duplicate", {"machine_id": big, "name": "c"}, "machine_id"),
            ("PUT", "/api/programs/", {"machine_id": machine["id"], "filename": "a", "process_id": big}, "process_id"),
            ("PUT", "/api/tools/", {"assembly_id": big}, "assembly_id"),
            ("PUT", "/api/toolAssemblies/", {"machine_id": machine["id"], "tools": [{"name": "\x00"}]}, "tools"),
        ]:
            assert_problem(await api.call(method, url, json=body), 400, field)
        assert list(await api.ok("GET", "/api/processes/")) == [str(process["id"])]
