"""POST /api/processes/{from}/changeover/{to}: confirming a changeover (seed 000)."""

from __future__ import annotations

from tests.process.api.helpers import assert_problem, load, payloads, problem


async def _shop(api):
    """A mill with processes A (running, its program loaded) and B, and a lathe with process C."""
    mill, lathe = await api.machine("Mill"), await api.machine("Lathe")
    a, b = await api.process(mill["id"], "A"), await api.process(mill["id"], "B")
    c = await api.process(lathe["id"], "C")
    await api.program(mill["id"], "O1000.nc", a["id"])
    await api.program(mill["id"], "O2000.nc", b["id"])
    await load(api, mill["id"], "O1000.nc")
    return mill, a, b, c


def _url(source, target, planned=False):
    return f"/api/processes/{source['id']}/changeover/{target['id']}" + ("?planned=1" if planned else "")


async def _machine(api, machine):
    return await api.ok("GET", f"/api/machines/{machine['id']}")


class TestChangeover:
    async def test_confirms_when_the_machine_runs_the_new_process(self, api):
        mill, a, b, _ = await _shop(api)
        await load(api, mill["id"], "O2000.nc")  # the operator loaded B's program
        changed = await api.ok("POST", _url(a, b), role="shop")
        assert changed == {**b, "active": True, "loaded": True}
        assert (await _machine(api, mill))["active_process_id"] == b["id"]
        listed = await api.ok("GET", "/api/processes/")
        assert (listed[str(a["id"])]["active"], listed[str(b["id"])]["active"]) == (False, True)

    async def test_publishes_process_changed_over_and_machine_upserted(self, api):
        mill, a, b, _ = await _shop(api)
        await load(api, mill["id"], "O2000.nc")
        before = len(await api.events("machine.upserted"))
        await api.ok("POST", _url(a, b), role="shop")
        (event,) = await payloads(api, "process.changed_over")
        assert {k: v for k, v in event.items() if k != "changed_at"} == {
            "machine_id": mill["id"], "from_process_id": a["id"], "to_process_id": b["id"], "planned": False,
            "user": "shop-user", "removed_tool_assemblies": []}
        assert isinstance(event["changed_at"], float)
        upserts = await payloads(api, "machine.upserted")
        assert len(upserts) == before + 1
        assert (upserts[-1]["machine_id"], upserts[-1]["active_process_id"]) == (mill["id"], b["id"])

    async def test_confirms_when_the_confirmed_active_process_is_the_new_one(self, api):
        mill = await api.machine("Mill")
        a, b = await api.process(mill["id"], "A"), await api.process(mill["id"], "B")
        await api.ok("POST", _url(a, b, planned=True))  # nothing loaded; B is now the confirmed process
        changed = await api.ok("POST", _url(a, b))
        assert changed["active"] is True and changed["loaded"] is False

    async def test_returns_412_when_machine_runs_another_process(self, api):
        mill, a, b, _ = await _shop(api)  # A's program is loaded
        body = await problem(api, "POST", _url(a, b), 412, json={"remove_tool_assemblies": []})
        assert body["title"] == "Precondition Failed"
        assert (await _machine(api, mill))["active_process_id"] is None
        assert await api.events("process.changed_over") == []

    async def test_returns_412_when_the_loaded_program_contradicts_the_confirmed_process(self, api):
        mill, a, b, _ = await _shop(api)
        await api.ok("POST", _url(a, b, planned=True))  # B confirmed, but A's program is still loaded
        await problem(api, "POST", _url(a, b), 412)
        await load(api, mill["id"], None)  # unloaded: the confirmed process counts again
        await api.ok("POST", _url(a, b))

    async def test_returns_412_when_nothing_is_running(self, api):
        mill = await api.machine("Mill")
        a, b = await api.process(mill["id"], "A"), await api.process(mill["id"], "B")
        await problem(api, "POST", _url(a, b), 412)

    async def test_planned_changeover_ignores_what_the_machine_runs(self, api):
        mill, a, b, _ = await _shop(api)
        changed = await api.ok("POST", _url(a, b, planned=True), role="planner")
        assert changed["active"] is True and changed["id"] == b["id"]
        assert (await _machine(api, mill))["active_process_id"] == b["id"]
        (event,) = await payloads(api, "process.changed_over")
        assert (event["planned"], event["user"]) == (True, "planner-user")

    async def test_remove_tool_assemblies_leaves_the_listed_assemblies_unassigned(self, api):
        mill, a, b, _ = await _shop(api)
        fixture = await api.assembly(mill["id"], "T1", a["id"], tools=[{"name": "soft jaws"}])
        kept = await api.assembly(mill["id"], "T2", a["id"])
        b_assembly = await api.assembly(mill["id"], "T3", b["id"])
        loose = await api.assembly(mill["id"], "T4", None)
        changed = await api.ok("POST", _url(a, b, planned=True), json={
            "remove_tool_assemblies": [fixture["id"], b_assembly["id"], loose["id"], fixture["id"]]})
        assert changed["id"] == b["id"]
        assemblies = await api.ok("GET", f"/api/toolAssemblies/?machine_id={mill['id']}")
        assert {a_id: x["process_id"] for a_id, x in assemblies.items()} == {
            str(fixture["id"]): None, str(kept["id"]): a["id"], str(b_assembly["id"]): None, str(loose["id"]): None}
        assert len(assemblies[str(fixture["id"])]["tools"]) == 1  # the tools stay in the assembly
        (event,) = await payloads(api, "process.changed_over")
        assert event["removed_tool_assemblies"] == [fixture["id"], b_assembly["id"], loose["id"]]

    async def test_returns_400_for_an_invalid_body_and_changes_nothing(self, api):
        mill, a, b, c = await _shop(api)
        mine = await api.assembly(mill["id"], "T1", a["id"])
        elsewhere = await api.assembly(c["machine_id"], "T1", c["id"])
        url = _url(a, b, planned=True)
        for body in ([mine["id"]], "remove", {"remove_tool_assemblies": "all"},
                     {"remove_tool_assemblies": ["T1"]}, {"remove_tool_assemblies": [[mine["id"]]]},
                     {"remove_tool_assemblies": [mine["id"], 4242]},
                     {"remove_tool_assemblies": [mine["id"], elsewhere["id"]]}):
            response = await api.call("POST", url, json=body)
            assert response.status_code == 400, (body, response.text)
            if isinstance(body, dict):
                assert_problem(response, 400, "remove_tool_assemblies")
        await problem(api, "POST", url, 400, "4242", json={"remove_tool_assemblies": [4242]})
        await problem(api, "POST", url, 400, str(elsewhere["id"]),
                      json={"remove_tool_assemblies": [elsewhere["id"]]})
        await problem(api, "POST", url, 400, "tools", json={"tools": []})
        await problem(api, "POST", url.replace("planned=1", "planned=yes"), 400, "planned")
        assert (await _machine(api, mill))["active_process_id"] is None
        assert (await api.ok("GET", f"/api/toolAssemblies/{mine['id']}"))["process_id"] == a["id"]
        assert await api.events("process.changed_over") == []

    async def test_returns_404_when_either_process_is_missing(self, api):
        mill, a, b, _ = await _shop(api)
        await problem(api, "POST", f"/api/processes/999/changeover/{b['id']}?planned=1", 404, "999")
        await problem(api, "POST", f"/api/processes/{a['id']}/changeover/998?planned=1", 404, "998")
        await problem(api, "POST", "/api/processes/999/changeover/998", 404)
        assert (await _machine(api, mill))["active_process_id"] is None

    async def test_returns_409_when_the_processes_are_on_different_machines(self, api):
        mill, a, _, c = await _shop(api)
        lathe = {"id": c["machine_id"]}
        await problem(api, "POST", _url(a, c, planned=True), 409)
        await problem(api, "POST", _url(c, a), 409)
        assert (await _machine(api, mill))["active_process_id"] is None
        assert (await _machine(api, lathe))["active_process_id"] is None
        assert await api.events("process.changed_over") == []
