"""GET /api/processes/ and /{id} answer from the read cache and with ETags, and never stale: every
change to what they show moves the read revision, whoever makes it (shared/read_cache.py,
shared/read_revision.py). Each test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text

from shared.read_revision import current
from tests.process.api.helpers import T0, interlock, load, part, tool, variables

DETAIL = "/api/processes/{id}?programs=1&tools=1"


async def _shop(api: Any) -> dict[str, int]:
    machine = (await api.machine())["id"]
    a = (await api.process(machine, "A", time_per_cycle=2))["id"]
    b = (await api.process(machine, "B"))["id"]
    program = (await api.program(machine, "O1000.nc", a))["id"]
    assembly = await api.assembly(machine, "T1", a, [{"name": "Endmill", "diameter": 10}])
    return {"machine": machine, "a": a, "b": b, "program": program, "assembly": assembly["id"],
            "tool": next(iter(assembly["tools"].values()))["id"] if isinstance(assembly["tools"], dict)
            else assembly["tools"][0]["id"]}


async def _revision(api: Any) -> str | None:
    async with api.runtime.sessions() as session:
        return await current(session)


async def test_a_current_etag_gets_304_and_a_change_gets_the_new_body(api):
    ids = await _shop(api)
    for url in ("/api/processes/", "/api/processes/?programs=1&tools=1", DETAIL.format(id=ids["a"])):
        first = await api.call("GET", url)
        assert first.status_code == 200 and first.headers["cache-control"] == "private, no-cache"
        etag = first.headers["etag"]
        again = await api.call("GET", url)
        assert again.content == first.content and again.headers["etag"] == etag
        not_modified = await api.client.get(url, headers={**api.auth(), "If-None-Match": f'W/{etag}, "other"'})
        assert not_modified.status_code == 304 and not_modified.content == b""
        assert not_modified.headers["etag"] == etag

    before = await api.call("GET", "/api/processes/")
    await api.ok("PATCH", f"/api/processes/{ids['a']}", json={"name": "A renamed"})
    after = await api.client.get("/api/processes/", headers={**api.auth(), "If-None-Match": before.headers["etag"]})
    assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
    assert after.json()[str(ids["a"])]["name"] == "A renamed"


async def test_no_token_no_body_even_with_a_current_etag(api):
    await _shop(api)
    etag = (await api.call("GET", "/api/processes/")).headers["etag"]
    response = await api.client.get("/api/processes/", headers={"If-None-Match": etag})
    assert response.status_code == 401
    response = await api.client.get("/api/processes/", headers={**api.auth("machine"), "If-None-Match": etag})
    assert response.status_code == 304  # every role reads processes


async def test_efficiency_depends_on_the_clock_so_it_is_never_cached(api):
    ids = await _shop(api)
    response = await api.call("GET", f"/api/processes/{ids['a']}?efficiency=1")
    assert response.status_code == 200 and "etag" not in response.headers


Change = Callable[[Any, dict[str, int]], Awaitable[Any]]

# Every kind of change that shows in the list or the detail, through the API or the consumers.
CHANGES: dict[str, Change] = {
    "process patched": lambda api, ids: api.ok("PATCH", f"/api/processes/{ids['b']}", json={"tags": ["x"]}),
    "process created": lambda api, ids: api.process(ids["machine"], "C"),
    "process deleted": lambda api, ids: api.ok("DELETE", f"/api/processes/{ids['b']}", 204),
    "program added": lambda api, ids: api.program(ids["machine"], "O2000.nc", ids["a"]),
    "program patched": lambda api, ids: api.ok("PATCH", f"/api/programs/{ids['program']}", json={"name": "Op 10"}),
    "tool patched": lambda api, ids: api.ok("PATCH", f"/api/tools/{ids['tool']}", json={"length": 80}),
    "assembly moved": lambda api, ids: api.ok("PATCH", f"/api/toolAssemblies/{ids['assembly']}",
                                              json={"location": "T7"}),
    "changeover": lambda api, ids: api.ok("POST", f"/api/processes/{ids['a']}/changeover/{ids['b']}?planned=1"),
    "program loaded": lambda api, ids: load(api, ids["machine"], "O1000.nc"),
    "part recorded": lambda api, ids: part(api, ids["machine"], T0 + 60, "O1000.nc"),
    "settings": lambda api, ids: api.ok("PATCH", "/api/settings", json={"check_unused_tools_parts": 3}),
}


@pytest.mark.parametrize("change", list(CHANGES))
async def test_every_change_that_shows_moves_the_revision(api, change):
    ids = await _shop(api)
    if change == "part recorded":
        await load(api, ids["machine"], "O1000.nc")
    urls = ["/api/processes/?programs=1&tools=1", DETAIL.format(id=ids["a"])]
    cached = {url: await api.call("GET", url) for url in urls}
    await CHANGES[change](api, ids)
    for url in urls:
        response = await api.call("GET", url)
        assert response.headers["etag"] != cached[url].headers["etag"], (change, url)
        api.runtime.reads.cache.clear()
        fresh = await api.call("GET", url)
        assert response.content == fresh.content, (change, url)  # what the database holds now


async def test_telemetry_that_does_not_show_keeps_the_cache(api):
    ids = await _shop(api)
    etag = (await api.call("GET", "/api/processes/")).headers["etag"]
    await variables(api, ids["machine"], {"Spindle": 1200})
    await tool(api, ids["machine"], "T1", T0)
    await interlock(api, ids["machine"], True, [7])
    response = await api.client.get("/api/processes/", headers={**api.auth(), "If-None-Match": etag})
    assert response.status_code == 304


async def test_a_change_by_another_writer_is_seen_at_once(api):
    """Another replica or a psql session: no application code runs, the triggers still count it."""
    ids = await _shop(api)
    first = await api.call("GET", DETAIL.format(id=ids["a"]))
    async with api.runtime.engine.begin() as conn:
        await conn.execute(text("UPDATE processes SET description = 'set by hand' WHERE id = :id"), {"id": ids["a"]})
        await conn.execute(text("UPDATE tools SET name = 'Renamed' WHERE id = :id"), {"id": ids["tool"]})
    second = await api.call("GET", DETAIL.format(id=ids["a"]))
    assert second.headers["etag"] != first.headers["etag"]
    assert second.json()["description"] == "set by hand"
    assert second.json()["tools"][str(ids["tool"])]["name"] == "Renamed"


async def test_one_transaction_moves_the_revision_once(api):
    ids = await _shop(api)
    before = await _revision(api)
    assert before is not None
    async with api.runtime.engine.begin() as conn:
        for _ in range(3):
            await conn.execute(text("UPDATE processes SET description = description || 'x'"))
        await conn.execute(text("UPDATE programs SET name = 'n' WHERE id = :id"), {"id": ids["program"]})
    after = await _revision(api)
    epoch, n = before.split(".")
    assert after == f"{epoch}.{int(n) + 1}" if api.runtime.engine.dialect.name == "postgresql" else after != before


async def test_a_rolled_back_change_keeps_the_revision(api):
    await _shop(api)
    before = await _revision(api)
    async with api.runtime.engine.connect() as conn:
        await conn.execute(text("UPDATE processes SET name = 'gone'"))
        await conn.rollback()
    assert await _revision(api) == before


async def test_hits_are_answered_before_routing_with_the_same_checks(api, monkeypatch):
    ids = await _shop(api)
    url = DETAIL.format(id=ids["a"])
    first = await api.call("GET", url)
    import services.process.api.processes as routes

    async def no_route(*_: Any) -> None:
        raise AssertionError("the route ran for a cache hit")

    monkeypatch.setattr(routes, "cached_json", no_route)
    hit = await api.call("GET", url, role="auditor")
    assert hit.status_code == 200 and hit.content == first.content and hit.headers["etag"] == first.headers["etag"]
    assert hit.headers["x-request-id"] and hit.headers["content-type"] == "application/json"
    etag = first.headers["etag"]
    assert (await api.client.get(url, headers={**api.auth(), "If-None-Match": etag})).status_code == 304
    # What the fast path does not answer goes to the route: no token, a bad one, a role no read allows.
    monkeypatch.undo()
    assert (await api.client.get(url, headers={"If-None-Match": etag})).status_code == 401
    bad = {"Authorization": "Bearer not-a-jwt", "If-None-Match": etag}
    assert (await api.client.get(url, headers=bad)).status_code == 401
    visitor = api.client._transport.app.state.authenticator.mint("v", ["visitor"])
    response = await api.client.get(url, headers={"Authorization": f"Bearer {visitor}", "If-None-Match": etag})
    assert response.status_code == 403


async def test_the_reader_reconnects_after_losing_its_connection(api):
    ids = await _shop(api)
    url = DETAIL.format(id=ids["a"])
    await api.call("GET", url)
    reader = api.runtime.reads.reader
    if api.runtime.engine.dialect.name == "postgresql":
        async with api.runtime.engine.begin() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": reader._conn.get_server_pid()})
    else:
        await reader._conn.close()
    await api.ok("PATCH", f"/api/processes/{ids['a']}", json={"name": "after the loss"})
    assert (await api.ok("GET", url))["name"] == "after the loss"
    assert (await api.ok("GET", url))["name"] == "after the loss"


async def test_clients_that_take_gzip_get_the_list_gzipped(api):
    await _shop(api)
    raw = await api.client.get("/api/processes/?programs=1&tools=1",
                               headers={**api.auth(), "Accept-Encoding": "identity"})
    packed = await api.client.get("/api/processes/?programs=1&tools=1",
                                  headers={**api.auth(), "Accept-Encoding": "gzip"})
    assert "content-encoding" not in raw.headers and packed.headers["content-encoding"] == "gzip"
    assert packed.content == raw.content  # httpx decodes
    assert int(packed.headers["content-length"]) < len(raw.content)
    assert packed.headers["etag"] == raw.headers["etag"][:-1] + '-gzip"'
