"""A process's production history: overview, chart, averageCycleTimes, variables (seed 000)."""

from __future__ import annotations

from tests.process.api.helpers import T0, assert_problem, clock, load, part, problem, ts, variables


async def _running(api, name="A", filename="O1000.nc", machine=None, **fields):
    """A process with one program, loaded on its machine so the machine's parts are the process's."""
    machine = machine or await api.machine()
    process = await api.process(machine["id"], name, **fields)
    program = await api.program(machine["id"], filename, process["id"])
    await load(api, machine["id"], filename)
    return machine, process, program


class TestOverview:
    async def _history(self, api):
        machine, process, _ = await _running(api)
        for at, increment in [
            ("2023-12-31T12:00:00+00:00", 1),
            ("2024-01-01T05:30:00+00:00", 1),  # 2023-12-31 23:30 in Chicago
            ("2024-03-10T05:59:00+00:00", 1),  # 2024-03-09 23:59 CST
            ("2024-03-10T06:01:00+00:00", 1),  # 2024-03-10 00:01 CST
            ("2024-03-11T04:59:00+00:00", 3),  # 2024-03-10 23:59 CDT (after the DST change)
            ("2024-03-11T05:01:00+00:00", 1),  # 2024-03-11 00:01 CDT
            ("2025-01-01T03:00:00+00:00", 2),  # 2024-12-31 21:00 CST
        ]:
            await part(api, machine["id"], ts(at), "O1000.nc", increment=increment)
        # Another process on the same machine: not counted.
        other = await api.process(machine["id"], "B")
        await api.program(machine["id"], "O2000.nc", other["id"])
        await load(api, machine["id"], "O2000.nc")
        await part(api, machine["id"], ts("2024-03-10T12:00:00+00:00"), "O2000.nc")
        return process

    async def test_groups_parts_by_the_shops_local_day(self, api):
        process = await self._history(api)
        url = f"/api/processes/{process['id']}/overview"
        assert await api.ok("GET", f"{url}/2024/3") == {
            "2024": {"2024-03-10": 2, "2024-03-11": 4}}  # the default shop zone is UTC
        assert (await api.ok("PATCH", "/api/settings", json={"time_zone": "America/Chicago"}))[
            "time_zone"] == "America/Chicago"
        assert await api.ok("GET", f"{url}/2024") == {
            "2024": {"2024-03-09": 1, "2024-03-10": 4, "2024-03-11": 1, "2024-12-31": 2}}
        assert await api.ok("GET", f"{url}/2023") == {"2023": {"2023-12-31": 2}}
        assert await api.ok("GET", f"{url}/2025") == {}

    async def test_month_limits_the_overview_to_that_local_month(self, api):
        process = await self._history(api)
        await api.ok("PATCH", "/api/settings", json={"time_zone": "America/Chicago"})
        url = f"/api/processes/{process['id']}/overview"
        assert await api.ok("GET", f"{url}/2024/3") == {
            "2024": {"2024-03-09": 1, "2024-03-10": 4, "2024-03-11": 1}}
        assert await api.ok("GET", f"{url}/2024/12") == {"2024": {"2024-12-31": 2}}
        assert await api.ok("GET", f"{url}/2023/12") == {"2023": {"2023-12-31": 2}}
        assert await api.ok("GET", f"{url}/2024/1") == {}
        assert await api.ok("GET", f"{url}/2024/2", role="auditor") == {}

    async def test_returns_400_for_a_month_outside_1_to_12_or_an_invalid_year(self, api):
        machine = await api.machine()
        process = await api.process(machine["id"])
        url = f"/api/processes/{process['id']}/overview"
        for month in (0, 13, -1):
            await problem(api, "GET", f"{url}/2024/{month}", 400, "month")
        await problem(api, "GET", f"{url}/twenty", 400, "year")
        await problem(api, "GET", f"{url}/0", 400, "year")
        await problem(api, "GET", f"{url}/99999/1", 400, "year")
        await problem(api, "GET", f"{url}/2024/march", 400, "month")

    async def test_returns_404_for_an_unknown_process(self, api):
        await problem(api, "GET", "/api/processes/41/overview/2024", 404, "41")
        await problem(api, "GET", "/api/processes/41/overview/2024/3", 404, "41")


class TestChart:
    async def test_defaults_to_the_current_local_day(self, api):
        machine, process, program = await _running(api)
        await api.ok("PATCH", "/api/settings", json={"time_zone": "America/Chicago"})
        for at in ("2024-05-31T04:59:59+00:00",  # 2024-05-30 23:59:59 CDT: yesterday
                   "2024-05-31T05:00:00+00:00",  # 2024-05-31 00:00 CDT: today's first second
                   "2024-05-31T18:00:00+00:00",
                   "2024-06-01T04:30:00+00:00",  # 2024-05-31 23:30 CDT (after "now", still today)
                   "2024-06-01T05:00:00+00:00"):  # 2024-06-01 00:00 CDT: tomorrow
            await part(api, machine["id"], ts(at), "O1000.nc")
        with clock(api, ts("2024-06-01T04:00:00+00:00")):  # 2024-05-31 23:00 in Chicago
            chart = await api.ok("GET", f"/api/processes/{process['id']}/chart")
        assert set(chart) == {"process", "parts"}
        assert sorted(p["finished"] for p in chart["parts"].values()) == [
            ts("2024-05-31T05:00:00+00:00"), ts("2024-05-31T18:00:00+00:00"), ts("2024-06-01T04:30:00+00:00")]
        for part_id, entry in chart["parts"].items():
            assert entry["id"] == int(part_id)
            assert (entry["process_id"], entry["program_id"], entry["count"]) == (process["id"], program["id"], 1)
        fetched = await api.ok("GET", f"/api/processes/{process['id']}")
        assert chart["process"] == {k: v for k, v in fetched.items() if k != "unused_tool_locations"}
        assert chart["process"]["last_cycle"]["finished"] == ts("2024-06-01T05:00:00+00:00")

    async def test_start_and_end_select_parts_finished_in_between(self, api):
        machine, process, _ = await _running(api)
        other = await api.process(machine["id"], "B")
        for offset in (0, 60, 120, 180):
            await part(api, machine["id"], T0 + offset, "O1000.nc")
        await api.program(machine["id"], "O2000.nc", other["id"])
        await load(api, machine["id"], "O2000.nc")
        await part(api, machine["id"], T0 + 90, "O2000.nc")  # another process's part
        chart = await api.ok("GET", f"/api/processes/{process['id']}/chart?start={T0 + 60}&end={T0 + 180}")
        assert sorted(p["finished"] for p in chart["parts"].values()) == [T0 + 60, T0 + 120]
        with clock(api, T0 + 86400 * 3):  # no part today
            assert (await api.ok("GET", f"/api/processes/{process['id']}/chart"))["parts"] == {}
        chart = await api.ok("GET", f"/api/processes/{process['id']}/chart?start={T0 + 0.5}&end={T0 + 60.5}")
        assert [p["finished"] for p in chart["parts"].values()] == [T0 + 60]

    async def test_returns_400_when_end_is_before_start_or_not_a_number(self, api):
        machine = await api.machine()
        process = await api.process(machine["id"])
        url = f"/api/processes/{process['id']}/chart"
        await problem(api, "GET", f"{url}?start={T0}&end={T0 - 1}", 400, "end")
        await problem(api, "GET", f"{url}?start=yesterday", 400, "start")
        await problem(api, "GET", f"{url}?end=later", 400, "end")

    async def test_returns_404_for_an_unknown_process(self, api):
        await problem(api, "GET", "/api/processes/3/chart", 404, "3")


class TestAverageCycleTimes:
    async def test_maps_each_known_process_to_mean_minutes_per_cycle_or_null(self, api):
        machine, a, _ = await _running(api, "A")
        await part(api, machine["id"], T0, "O1000.nc")  # first part of the machine: no cycle time
        await part(api, machine["id"], T0 + 600, "O1000.nc")  # 10 min
        await part(api, machine["id"], T0 + 1500, "O1000.nc")  # 15 min
        never_ran = await api.process(machine["id"], "B")
        lathe, c, _ = await _running(api, "C", "O3000.nc")
        await part(api, lathe["id"], T0, "O3000.nc")
        await part(api, lathe["id"], T0 + 1200, "O3000.nc", increment=2)  # two cycles in 20 min
        body = [a["id"], never_ran["id"], 999, c["id"], a["id"]]
        averages = await api.ok("POST", "/api/processes/averageCycleTimes", json=body, role="auditor")
        assert averages == {str(a["id"]): 12.5, str(never_ran["id"]): None, str(c["id"]): 10.0}
        assert await api.ok("POST", "/api/processes/averageCycleTimes", json=[998, 999]) == {}
        assert await api.ok("POST", "/api/processes/averageCycleTimes", json=[]) == {}

    async def test_counts_parts_of_the_process_programs_only(self, api):
        machine, a, _ = await _running(api, "A")
        b = await api.process(machine["id"], "B")
        await api.program(machine["id"], "O2000.nc", b["id"])
        await part(api, machine["id"], T0, "O1000.nc")
        await part(api, machine["id"], T0 + 300, "O1000.nc")  # A: 5 min
        await load(api, machine["id"], "O2000.nc")
        await part(api, machine["id"], T0 + 1500, "O2000.nc")  # B: 20 min since the machine's last part
        averages = await api.ok("POST", "/api/processes/averageCycleTimes", json=[a["id"], b["id"]])
        assert averages == {str(a["id"]): 5.0, str(b["id"]): 20.0}

    async def test_returns_400_when_the_body_is_not_a_list_of_ids(self, api):
        for body in ({"ids": [1]}, ["one"], 5, [[1]]):
            assert_problem(await api.call("POST", "/api/processes/averageCycleTimes", json=body), 400)
        assert_problem(await api.call("POST", "/api/processes/averageCycleTimes"), 400)


class TestVariables:
    async def test_lists_cv_map_names_and_variables_recorded_on_parts_sorted(self, api):
        assert await api.ok("GET", "/api/processes/variables") == []
        machine, process, _ = await _running(api, cv_map={"Lot": {"number": 100}, "Bore": {"number": 101}})
        await api.process(machine["id"], "B", cv_map={"alpha": {"number": 1}})
        await variables(api, machine["id"], {"100": 7, "101": 12.02})
        await part(api, machine["id"], T0, "O1000.nc")
        (recorded,) = (await api.ok("GET", "/api/parts/")).values()
        assert recorded["variables"] == {"Lot": 7, "Bore": 12.02}
        # The name stays known after the process stops mapping it.
        await api.ok("PATCH", f"/api/processes/{process['id']}", json={"cv_map": {"Heat": {"number": 102}}})
        names = await api.ok("GET", "/api/processes/variables", role="auditor")
        assert names == ["Bore", "Heat", "Lot", "alpha"]
