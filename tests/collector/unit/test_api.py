"""Collector HTTP API: sources CRUD, roles, machine state, alarms, interlock, HTTP push."""

from __future__ import annotations

import asyncio

from sqlalchemy import event, select, text

from services.collector import repository
from services.collector.models import MachineState
from services.collector.usecases import machines
from services.collector.usecases.push_sources import PushSources
from shared.events import InterlockChanged
from tests.process.conftest import Harness

T0 = 1_717_416_000.0  # 2024-06-03 12:00 UTC


async def test_sources_crud_and_roles(collector: Harness) -> None:
    body = {"machine_id": 3, "kind": "shdr", "address": "127.0.0.1:7878", "mapping": {"part_count": ["Parts"]},
            "enabled": False}
    created = await collector.ok("PUT", "/api/collector/sources/", 201, json=body)
    assert created["machine_id"] == 3 and created["mapping"] == {"part_count": ["Parts"]}
    assert created["status"] == {"connected": False, "last_data": None, "last_error": None, "last_error_at": None}
    sid = created["id"]
    assert (await collector.ok("GET", f"/api/collector/sources/{sid}", role="auditor"))["address"] == "127.0.0.1:7878"
    listing = await collector.ok("GET", "/api/collector/sources/", role="shop")
    assert list(listing) == [str(sid)]
    assert await collector.ok("GET", "/api/collector/sources/?machine_id=4") == {}
    patched = await collector.ok("PATCH", f"/api/collector/sources/{sid}", json={"device": "Mazak", "enabled": False})
    assert patched["device"] == "Mazak"
    assert (await collector.call("PATCH", f"/api/collector/sources/{sid}", role="shop", json={})).status_code == 403
    assert (await collector.call("PUT", "/api/collector/sources/", role="machine", json=body)).status_code == 403
    assert (await collector.call("DELETE", f"/api/collector/sources/{sid}")).status_code == 204
    assert (await collector.call("GET", f"/api/collector/sources/{sid}")).status_code == 404


async def test_source_validation(collector: Harness) -> None:
    bad = [{"machine_id": 1, "kind": "mtconnect", "address": "ftp://agent"},
           {"machine_id": 1, "kind": "shdr", "address": "no-port"},
           {"machine_id": 1, "kind": "opcua"},
           {"machine_id": 2**40, "kind": "http"},
           {"machine_id": 1, "kind": "http", "mapping": {"part_count": "not a list"}},
           {"machine_id": 1, "kind": "http", "unknown": 1}]
    for body in bad:
        response = await collector.call("PUT", "/api/collector/sources/", json=body)
        assert response.status_code == 400, (body, response.text)
    sid = (await collector.ok("PUT", "/api/collector/sources/", 201, json={"machine_id": 1, "kind": "http"}))["id"]
    response = await collector.call("PATCH", f"/api/collector/sources/{sid}", json={"kind": "shdr"})
    assert response.status_code == 400 and "address" in response.json()["detail"]


async def test_http_push_state_alarms(collector: Harness) -> None:
    await collector.ok("PUT", "/api/collector/sources/", 201,
                       json={"machine_id": 5, "kind": "http", "mapping": {"variables": {"macro_500": "500"}}})
    batch = [
        {"id": "a1", "timestamp": T0, "key": "program", "value": "O1000.nc"},
        {"id": "a2", "timestamp": T0, "key": "PartCountAct", "value": 10},
        {"id": "a3", "timestamp": T0 + 60, "key": "PartCountAct", "value": 12},
        {"id": "a4", "timestamp": T0 + 61, "key": "system", "condition": {"level": "FAULT", "native_code": "1010",
                                                                          "message": "SPINDLE OVERLOAD"}},
        {"timestamp": "yesterday", "key": "x"},
        {"id": "a5", "timestamp": T0 + 62, "key": "macro_500", "value": "2.5"},
        {"id": "a6", "timestamp": T0 + 63, "key": "execution", "value": "INTERRUPTED"},
        {"timestamp": T0, "key": "system", "condition": {"level": "BROKEN"}},
    ]
    result = await collector.ok("POST", "/api/collector/machines/5/events", role="machine", json=batch)
    assert result["accepted"] == 6 and result["events"] == 5
    assert [r["index"] for r in result["rejected"]] == [4, 7] and "timestamp" in result["rejected"][0]["detail"]
    events = await collector.events()
    assert [e.type for e in events] == ["telemetry.program_loaded", "telemetry.part_completed",
                                        "telemetry.alarm_raised", "telemetry.variables_changed",
                                        "telemetry.execution_changed"]
    assert events[1].data["increment"] == 2 and events[1].data["program"] == "O1000.nc"
    state = await collector.ok("GET", "/api/collector/machines/5/state", role="auditor")
    assert (state["program"], state["part_count"], state["execution"]) == ("O1000.nc", 12, "INTERRUPTED")
    assert state["variables"] == {"500": 2.5} and state["last_seen"] == T0 + 63
    [alarm] = state["active_alarms"]
    assert events[2].data["alarm_id"] == alarm["id"] and alarm["message"] == "SPINDLE OVERLOAD"

    # The same batch again (a lost response): no new events, no new alarm.
    await collector.ok("POST", "/api/collector/machines/5/events", role="machine", json=batch)
    assert len(await collector.events()) == 5
    clear = [{"id": "b1", "timestamp": T0 + 120, "key": "system", "condition": {"level": "NORMAL"}}]
    await collector.ok("POST", "/api/collector/machines/5/events", role="machine", json=clear)
    cleared = (await collector.events())[-1]
    assert cleared.type == "telemetry.alarm_cleared" and cleared.data["alarm_id"] == alarm["id"]
    alarms = await collector.ok("GET", "/api/collector/alarms/?machine_id=5")
    assert alarms[str(alarm["id"])]["cleared_at"] == T0 + 120 and not alarms[str(alarm["id"])]["active"]
    assert await collector.ok("GET", "/api/collector/alarms/?active=true") == {}
    assert await collector.ok("GET", f"/api/collector/alarms/?end={T0}") == {}
    assert list(await collector.ok("GET", f"/api/collector/alarms/?start={T0 + 100}")) == [str(alarm["id"])]
    assert await collector.ok("GET", f"/api/collector/alarms/?start={T0 + 200}") == {}
    # Pushing needs the machine role (or admin); readers cannot.
    assert (await collector.call("POST", "/api/collector/machines/5/events", role="shop", json=[])).status_code == 403
    assert (await collector.call("POST", "/api/collector/machines/5/events", role="machine",
                                 json={"not": "a list"})).status_code == 400


async def test_a_push_counts_parts_from_the_state_another_write_is_committing(collector: Harness) -> None:
    url = "/api/collector/machines/8/events"
    await collector.ok("POST", url, role="machine", json=[{"id": "c1", "timestamp": T0, "key": "PartCountAct",
                                                           "value": 5}])
    async with collector.runtime.sessions() as other:  # another writer in flight (a live source): it has counted 5 -> 6
        state = await repository.state_for_update(other, 8)
        state.part_count = 6
        await other.flush()
        push = asyncio.create_task(collector.ok("POST", url, role="machine", json=[
            {"id": "c2", "timestamp": T0 + 10, "key": "PartCountAct", "value": 7}]))
        await asyncio.sleep(0.3)
        assert not push.done()  # it waits for the other write instead of storing what it derived from the old count
        await other.commit()
    assert (await push)["events"] == 1
    parts = [e.data["increment"] for e in await collector.events() if e.type == "telemetry.part_completed"]
    assert parts == [1]  # 6 -> 7; from the stale 5 it would have counted 2
    assert (await collector.ok("GET", "/api/collector/machines/8/state"))["part_count"] == 7


async def test_a_push_that_keeps_losing_the_race_waits_for_the_lock(collector: Harness, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """On PostgreSQL a push derives without a lock from the state this replica last wrote (or read)
    and writes only if the row did not move meanwhile. Here another writer moves it before the push
    and after every read: after three lost races the push takes the row lock, and each write counts
    from the state the one before committed."""
    postgres = collector.runtime.engine.dialect.name == "postgresql"
    url = "/api/collector/machines/9/events"
    read_state, reads, lose = repository.read_state, [], [False]

    async def one_more_part() -> None:  # a live source counting one more part
        async with collector.runtime.sessions() as other:
            state = await repository.state_for_update(other, 9)
            state.part_count = (state.part_count or 0) + 1
            await other.commit()

    async def read(driver, machine_id):  # type: ignore[no-untyped-def]
        state = await read_state(driver, machine_id)
        reads.append(state.part_count)
        if lose[0]:
            await one_more_part()
        return state

    monkeypatch.setattr(repository, "read_state", read)
    for n, value in enumerate((5, 6), 1):
        await collector.ok("POST", url, role="machine",
                           json=[{"id": f"d{n}", "timestamp": T0 + n, "key": "PartCountAct", "value": value}])
    assert reads == ([None] if postgres else [])  # the second push derived from the state the first one wrote

    await one_more_part()  # 6 -> 7: what this replica knows is stale now
    lose[0] = True
    result = await collector.ok("POST", url, role="machine", json=[
        {"id": "d3", "timestamp": T0 + 10, "key": "PartCountAct", "value": 10}])
    assert reads == ([None, 7, 8] if postgres else [])  # SQLite takes the lock at once (one writer anyway)
    parts = [e.data["increment"] for e in await collector.events() if e.type == "telemetry.part_completed"]
    assert result["events"] == 1 and parts == ([1, 1] if postgres else [1, 3])  # 9 -> 10 after three lost races
    async with collector.runtime.sessions() as session:
        state = (await session.scalars(select(MachineState).where(MachineState.machine_id == 9))).one()
    assert state.part_count == 10 and state.version == (6 if postgres else 4)  # every write moved it


async def test_state_of_unknown_machine_and_interlock(collector: Harness) -> None:
    assert (await collector.call("GET", "/api/collector/machines/77/state")).status_code == 404
    interlock = await collector.ok("GET", "/api/collector/machines/77/interlock", role="machine")
    assert interlock == {"machine_id": 77, "blocked": False, "item_ids": [], "changed_at": None}
    async with collector.runtime.uow() as uow:
        await machines.apply_interlock(uow, InterlockChanged(machine_id=77, blocked=True, item_ids=[4, 9]))
        await uow.commit()
    interlock = await collector.ok("GET", "/api/collector/machines/77/interlock", role="machine")
    assert interlock["blocked"] and interlock["item_ids"] == [4, 9]


async def test_a_push_of_values_leaves_alarms_alone_without_reading_them(collector: Harness) -> None:
    fault = [{"id": "f1", "timestamp": T0, "key": "system",
              "condition": {"level": "FAULT", "native_code": "1010", "message": "SPINDLE OVERLOAD"}}]
    await collector.ok("POST", "/api/collector/machines/6/events", role="machine", json=fault)
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    engine = collector.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        values = [{"id": "v1", "timestamp": T0 + 1, "key": "PartCountAct", "value": 1},
                  {"id": "v2", "timestamp": T0 + 2, "key": "PartCountAct", "value": 2}]
        result = await collector.ok("POST", "/api/collector/machines/6/events", role="machine", json=values)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert result["events"] == 1  # the part; the alarm neither cleared nor raised again
    assert not [s for s in statements if "alarms" in s], statements
    [alarm] = (await collector.ok("GET", "/api/collector/machines/6/state"))["active_alarms"]
    assert alarm["message"] == "SPINDLE OVERLOAD"
    assert [e.type for e in await collector.events()] == ["telemetry.alarm_raised", "telemetry.part_completed"]


async def test_a_push_keeps_the_machine_s_source_between_pushes_and_sees_its_own_writes_at_once(
        collector: Harness) -> None:
    clock = [0.0]
    app = collector.client._transport.app  # type: ignore[attr-defined]
    app.state.collector_push_sources = PushSources(ttl=5, clock=lambda: clock[0])
    reads: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if "FROM sources" in statement and "sources.kind =" in statement:  # not the supervisor's scan
            reads.append(statement)

    async def push(n: int, key: str) -> int:
        body = [{"id": f"p{n}", "timestamp": T0 + n, "key": key, "value": n}]
        await collector.ok("POST", "/api/collector/machines/8/events", role="machine", json=body)
        return int((await collector.ok("GET", "/api/collector/machines/8/state"))["part_count"])

    engine = collector.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert await push(1, "PartCountAct") == 1  # no source: the default mapping
        assert await push(2, "PartCountAct") == 2
        assert len(reads) == 1  # the machine's source (none) was read once
        source = await collector.ok("PUT", "/api/collector/sources/", 201,
                                    json={"machine_id": 8, "kind": "http", "mapping": {"part_count": ["Parts"]}})
        assert await push(3, "Parts") == 3  # this collector's write applies to the next push
        status = (await collector.ok("GET", f"/api/collector/sources/{source['id']}"))["status"]
        assert status["connected"] is True and status["last_data"] is not None
        await collector.ok("PATCH", f"/api/collector/sources/{source['id']}", json={"mapping": {"part_count": ["N"]}})
        assert await push(4, "N") == 4
        # Another replica's write (straight to the table) shows once the entry is older than the ttl.
        async with collector.runtime.engine.begin() as conn:
            await conn.execute(text("UPDATE sources SET mapping = :m"), {"m": '{"part_count": ["M"]}'})
        assert await push(5, "M") == 4
        clock[0] += 6
        assert await push(6, "M") == 6
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_the_push_source_cache_is_bounded(collector: Harness) -> None:
    app = collector.client._transport.app  # type: ignore[attr-defined]
    cache = app.state.collector_push_sources = PushSources(ttl=60, max_entries=3)
    for machine in range(1, 6):
        body = [{"id": "p", "timestamp": T0, "key": "PartCountAct", "value": 1}]
        await collector.ok("POST", f"/api/collector/machines/{machine}/events", role="machine", json=body)
    assert len(cache) == 3
