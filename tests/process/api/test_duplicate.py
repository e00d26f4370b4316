"""POST /api/processes/{id}/duplicate: a copy of a process on another machine (seed 000)."""

from __future__ import annotations

from tests.process.api.helpers import assert_problem, payloads, problem
from tests.process.api.test_processes import FULL


async def _source(api):
    """A process on a mill with programs, two assigned assemblies (three tools) and requirements."""
    mill = await api.machine("Mill")
    source = await api.process(mill["id"], **FULL)
    for filename in ("O1000.nc", "O2000.nc", "O3000.nc"):
        await api.program(mill["id"], filename, source["id"])
    await api.assembly(mill["id"], "T1", source["id"], tools=[
        {"name": "holder", "part_number": "BT40-ER32", "length": 70.0},
        {"name": "12mm endmill", "tool_type": "endmill", "diameter": 12.0, "description": "3 flute"}])
    await api.assembly(mill["id"], "T2", source["id"], tools=[{"name": "M8 tap", "tool_type": "tap"}])
    await api.assembly(mill["id"], "T3", None, tools=[{"name": "spare, unassigned"}])
    await api.ok("PUT", f"/api/processes/{source['id']}/toolRequirements", 201,
                 json={"location": "T1", "description": "endmill", "tool_type": "endmill"})
    await api.ok("PUT", f"/api/processes/{source['id']}/toolRequirements", 201, json={"location": "T2"})
    return mill, source


def _tool_shape(tool):
    return {k: v for k, v in tool.items() if k not in ("id", "assembly_id", "machine_id", "process_id")}


class TestDuplicateProcess:
    async def test_creates_a_copy_of_the_process_on_the_target_machine(self, api):
        _, source = await _source(api)
        lathe = await api.machine("Lathe")
        copy = await api.ok("POST", f"/api/processes/{source['id']}/duplicate", 201,
                            json={"machine_id": lathe["id"], "name": "Housing op20 (lathe)"})
        assert copy["id"] != source["id"]
        assert copy == {**source, "id": copy["id"], "machine_id": lathe["id"], "name": "Housing op20 (lathe)"}
        assert await api.ok("GET", f"/api/processes/{copy['id']}") == {**copy, "unused_tool_locations": []}
        assert (await payloads(api, "process.upserted"))[-1] == {
            "process_id": copy["id"], "machine_id": lathe["id"], "name": "Housing op20 (lathe)", "archived": False,
            "time_per_cycle": FULL["time_per_cycle"], "parts_per_cycle": FULL["parts_per_cycle"]}

    async def test_copies_every_assigned_tool_assembly_with_its_tools(self, api):
        mill, source = await _source(api)
        lathe = await api.machine("Lathe")
        copy = await api.ok("POST", f"/api/processes/{source['id']}/duplicate", 201,
                            json={"machine_id": lathe["id"], "name": "Copy"})
        originals = await api.ok("GET", f"/api/toolAssemblies/?process_id={source['id']}")
        copies = await api.ok("GET", f"/api/toolAssemblies/?process_id={copy['id']}")
        assert sorted(a["location"] for a in copies.values()) == ["T1", "T2"]
        assert set(copies).isdisjoint(originals)
        for assembly in copies.values():
            assert (assembly["machine_id"], assembly["process_id"]) == (lathe["id"], copy["id"])
            (original,) = (a for a in originals.values() if a["location"] == assembly["location"])
            assert sorted(map(_tool_shape, assembly["tools"].values()), key=str) == sorted(
                map(_tool_shape, original["tools"].values()), key=str)
            assert set(assembly["tools"]).isdisjoint(original["tools"])
        assert len(await api.ok("GET", f"/api/processes/{copy['id']}/tools")) == 3
        # The source keeps its own assemblies; unassigned ones are not copied.
        assert sorted(a["location"] for a in originals.values()) == ["T1", "T2"]
        assert len(await api.ok("GET", f"/api/toolAssemblies/?machine_id={lathe['id']}")) == 2
        assert len(await api.ok("GET", f"/api/toolAssemblies/?machine_id={mill['id']}")) == 3

    async def test_copies_the_tool_requirements(self, api):
        _, source = await _source(api)
        lathe = await api.machine("Lathe")
        copy = await api.ok("POST", f"/api/processes/{source['id']}/duplicate", 201,
                            json={"machine_id": lathe["id"], "name": "Copy"})
        requirements = await api.ok("GET", f"/api/processes/{copy['id']}/toolRequirements")
        assert sorted((r["location"], r["description"], r["tool_type"], r["process_id"])
                      for r in requirements.values()) == [("T1", "endmill", "endmill", copy["id"]),
                                                          ("T2", "", "", copy["id"])]
        assert len(await api.ok("GET", f"/api/processes/{source['id']}/toolRequirements")) == 2

    async def test_adopts_same_named_free_programs_and_never_takes_or_creates_programs(self, api):
        _, source = await _source(api)
        lathe = await api.machine("Lathe")
        other = await api.process(lathe["id"], "Other job")
        free = await api.program(lathe["id"], "O1000.nc")  # same name, in no process: adopted
        taken = await api.program(lathe["id"], "O2000.nc", other["id"])  # in another process: left alone
        unrelated = await api.program(lathe["id"], "O9999.nc")  # no such program in the source: left alone
        # O3000.nc exists only on the mill: not created on the lathe.
        copy = await api.ok("POST", f"/api/processes/{source['id']}/duplicate", 201,
                            json={"machine_id": lathe["id"], "name": "Copy"})
        programs = await api.ok("GET", f"/api/programs/?machine_id={lathe['id']}")
        assert {p["filename"]: p["process_id"] for p in programs.values()} == {
            "O1000.nc": copy["id"], "O2000.nc": other["id"], "O9999.nc": None}
        assert set(programs) == {str(free["id"]), str(taken["id"]), str(unrelated["id"])}
        with_programs = await api.ok("GET", f"/api/processes/{copy['id']}?programs=1")
        assert list(with_programs["programs"]) == [str(free["id"])]
        # The source keeps its programs.
        assert len(await api.ok("GET", f"/api/programs/?process_id={source['id']}")) == 3

    async def test_onto_the_same_machine_leaves_the_source_programs_in_the_source(self, api):
        mill, source = await _source(api)
        copy = await api.ok("POST", f"/api/processes/{source['id']}/duplicate", 201,
                            json={"machine_id": mill["id"], "name": "Copy on the mill"})
        assert copy["machine_id"] == mill["id"]
        assert len(await api.ok("GET", f"/api/programs/?process_id={source['id']}")) == 3
        assert await api.ok("GET", f"/api/programs/?process_id={copy['id']}") == {}
        assert len(await api.ok("GET", f"/api/toolAssemblies/?machine_id={mill['id']}")) == 5

    async def test_returns_404_when_the_source_process_does_not_exist(self, api):
        lathe = await api.machine("Lathe")
        await problem(api, "POST", "/api/processes/77/duplicate", 404, "77",
                      json={"machine_id": lathe["id"], "name": "Copy"})

    async def test_returns_400_naming_the_missing_or_invalid_field_and_creates_nothing(self, api):
        _, source = await _source(api)
        lathe = await api.machine("Lathe")
        url = f"/api/processes/{source['id']}/duplicate"
        for body, field in [({"machine_id": 4242, "name": "Copy"}, "machine_id"), ({"name": "Copy"}, "machine_id"),
                            ({"machine_id": lathe["id"]}, "name"), ({"machine_id": lathe["id"], "name": ""}, "name"),
                            ({"machine_id": "lathe", "name": "Copy"}, "machine_id"),
                            ({"machine_id": lathe["id"], "name": "Copy", "programs": True}, "programs")]:
            assert_problem(await api.call("POST", url, json=body), 400, field)
        assert_problem(await api.call("POST", url), 400)
        assert_problem(await api.call("POST", url, json=[lathe["id"], "Copy"]), 400)
        assert list(await api.ok("GET", "/api/processes/")) == [str(source["id"])]
        assert await api.ok("GET", f"/api/toolAssemblies/?machine_id={lathe['id']}") == {}
