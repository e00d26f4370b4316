"""GET /api/processes/ and /{id} send plain data instead of building a ProcessRead per process
(services/process/usecases/views.py, for speed): every body must be byte for byte what FastAPI
sends for the response model (field order, floats as floats, fields left out unless asked for),
and the objects the model path answers (create, patch) must be the same objects."""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter

from services.process.schemas import ProcessRead
from tests.process.api.helpers import T0, clock, load, part, tool

LIST = TypeAdapter(dict[str, ProcessRead])
ONE = TypeAdapter(ProcessRead)
FLAGS = ["", "?programs=1", "?tools=1", "?efficiency=1", "?programs=1&tools=1", "?programs=1&tools=1&efficiency=1"]


def as_the_model_sends(adapter: TypeAdapter[Any], body: bytes) -> bytes:
    """What FastAPI sends for `body` read into the response model (set fields only, as the routes declare)."""
    return adapter.dump_json(adapter.validate_json(body), exclude_unset=True)


async def _shop(api: Any) -> list[int]:
    """Processes with every kind of value a read shows: integral floats given as ints, tiny and huge
    floats, text that JSON escapes, nested cv_map values, programs (one loaded), assemblies with and
    without tools or location, unassigned tool use, parts, an active process."""
    machine, other = (await api.machine())["id"], (await api.machine("Second"))["id"]
    a = (await api.process(machine, 'Ünïcode \u2013 op 10 "q" </script> \\ \u2028 \x01', part_material_cost=3,
                           part_sell_price=12, time_per_cycle=2, tags=["x", "y"], display_variable=5,
                           cv_map={"Serial": {"number": 5, "notifyComparison": "GT", "notifyValue": 1, "unit": "mm"}},
                           description="line one\nline two\ttab"))["id"]
    b = (await api.process(machine, "B"))["id"]
    c = (await api.process(other, "C", time_per_cycle=1e-7, part_sell_price=1e20, part_count_cv=7))["id"]
    await api.program(machine, "O1000.nc", a)
    await api.program(machine, "O2000.nc", a)
    await api.program(machine, "O3000.nc", b)
    await api.assembly(machine, "T1", a, [{"name": "Endmill", "diameter": 10, "length": 72.5}, {"name": "Holder"}])
    await api.assembly(machine, "T2", a)
    await api.assembly(machine, None, a, [{"name": "Spare", "diameter": 0.1}])
    await api.assembly(machine, "T3", b, [{"name": "Drill", "tool_type": "drill", "part_number": "D-6"}])
    await load(api, machine, "O1000.nc")
    await tool(api, machine, "T1", T0)
    await tool(api, machine, "T9", T0 + 10)  # no assembly of the process there: unassigned use
    await part(api, machine, T0 + 60, "O1000.nc")
    await part(api, machine, T0 + 120, "O1000.nc", increment=2)
    await api.ok("POST", f"/api/processes/{c}/changeover/{c}?planned=1")
    return [a, b, c]


async def test_bodies_are_exactly_what_the_response_models_send(api):
    ids = await _shop(api)
    with clock(api, T0 + 3600):
        for flags in FLAGS:
            response = await api.call("GET", f"/api/processes/{flags}")
            assert response.status_code == 200 and response.headers["content-type"] == "application/json"
            assert response.content == as_the_model_sends(LIST, response.content), flags
            assert len(response.json()) == 3
            for pid in ids:
                response = await api.call("GET", f"/api/processes/{pid}{flags}")
                assert response.status_code == 200 and response.headers["content-type"] == "application/json"
                assert response.content == as_the_model_sends(ONE, response.content), (pid, flags)
    detail = await api.ok("GET", f"/api/processes/{ids[0]}?programs=1&tools=1")
    assert detail["last_cycle"]["finished"] == T0 + 120 and detail["loaded"] and not detail["active"]
    assert detail["unassigned_tools_used"] == {"T9": T0 + 10} and detail["unused_tool_locations"] == ["T2"]
    assert [p["loaded"] for p in detail["programs"].values()] == [True, False]
    assert sorted(t["name"] for t in detail["tools"].values()) == ["Endmill", "Holder", "Spare"]
    assert (await api.ok("GET", f"/api/processes/{ids[2]}"))["active"] is True


async def test_the_model_path_answers_the_same_objects(api):
    ids = await _shop(api)
    listed = await api.ok("GET", "/api/processes/")
    for pid in ids:
        patched = await api.call("PATCH", f"/api/processes/{pid}", json={})  # answered through ProcessRead
        assert json.loads(patched.content) == listed[str(pid)]
        fetched = await api.ok("GET", f"/api/processes/{pid}")
        assert fetched.pop("unused_tool_locations") is not None and fetched == listed[str(pid)]


async def test_an_id_no_process_can_have_is_404(api):
    for pid in (0, 99, 2**31, -(2**31) - 1):
        assert (await api.call("GET", f"/api/processes/{pid}?programs=1&tools=1")).status_code == 404
