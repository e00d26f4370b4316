"""PUT/GET /api/processes/{id}/toolRequirements (seed 000)."""

from __future__ import annotations

from tests.process.api.helpers import assert_problem, problem


class TestCreateToolRequirement:
    async def test_creates_a_requirement_in_a_location_of_the_process(self, api):
        machine = await api.machine()
        process = await api.process(machine["id"])
        created = await api.ok("PUT", f"/api/processes/{process['id']}/toolRequirements", 201, json={
            "location": "T12", "description": "12 mm carbide endmill, 3 flute", "tool_type": "endmill"})
        assert isinstance(created["id"], int)
        assert created == {"id": created["id"], "process_id": process["id"], "location": "T12",
                           "description": "12 mm carbide endmill, 3 flute", "tool_type": "endmill"}
        minimal = await api.ok("PUT", f"/api/processes/{process['id']}/toolRequirements", 201,
                               json={"location": "T3", "id": 999, "process_id": 12345})
        assert minimal == {"id": minimal["id"], "process_id": process["id"], "location": "T3", "description": "",
                           "tool_type": ""}
        assert minimal["id"] != 999

    async def test_returns_409_when_the_location_already_has_a_requirement(self, api):
        machine = await api.machine()
        a, b = await api.process(machine["id"], "A"), await api.process(machine["id"], "B")
        await api.ok("PUT", f"/api/processes/{a['id']}/toolRequirements", 201, json={"location": "T1"})
        await problem(api, "PUT", f"/api/processes/{a['id']}/toolRequirements", 409, "T1",
                      json={"location": "T1", "description": "again"})
        # The same location in another process is fine.
        await api.ok("PUT", f"/api/processes/{b['id']}/toolRequirements", 201, json={"location": "T1"})
        assert len(await api.ok("GET", f"/api/processes/{a['id']}/toolRequirements")) == 1

    async def test_returns_400_naming_the_offending_field(self, api):
        machine = await api.machine()
        process = await api.process(machine["id"])
        url = f"/api/processes/{process['id']}/toolRequirements"
        for body, field in [({}, "location"), ({"location": ""}, "location"), ({"location": None}, "location"),
                            ({"location": "T" * 51}, "location"), ({"location": "T1", "tool_type": 5}, "tool_type"),
                            ({"location": "T1", "diameter": 3}, "diameter")]:
            assert_problem(await api.call("PUT", url, json=body), 400, field)
        assert_problem(await api.call("PUT", url, json=["T1"]), 400)
        assert await api.ok("GET", url) == {}

    async def test_returns_404_for_an_unknown_process(self, api):
        await problem(api, "PUT", "/api/processes/99/toolRequirements", 404, "99", json={"location": "T1"})


class TestListToolRequirements:
    async def test_maps_requirement_id_to_the_requirements_of_that_process(self, api):
        machine = await api.machine()
        a, b = await api.process(machine["id"], "A"), await api.process(machine["id"], "B")
        assert await api.ok("GET", f"/api/processes/{a['id']}/toolRequirements") == {}
        r1 = await api.ok("PUT", f"/api/processes/{a['id']}/toolRequirements", 201, json={"location": "T1"})
        r2 = await api.ok("PUT", f"/api/processes/{a['id']}/toolRequirements", 201,
                          json={"location": "T2", "tool_type": "drill"})
        await api.ok("PUT", f"/api/processes/{b['id']}/toolRequirements", 201, json={"location": "T9"})
        for role in ("admin", "shop", "auditor"):
            listed = await api.ok("GET", f"/api/processes/{a['id']}/toolRequirements", role=role)
            assert listed == {str(r1["id"]): r1, str(r2["id"]): r2}

    async def test_returns_404_for_an_unknown_process(self, api):
        await problem(api, "GET", "/api/processes/99/toolRequirements", 404, "99")
