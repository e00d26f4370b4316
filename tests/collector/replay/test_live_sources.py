"""Live sources against loopback servers replaying the real recordings: SHDR over TCP, an agent over HTTP.

The collector runs as in production (its supervisor starts a reader per source); the
in-memory transport records what it publishes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from services.collector.domain.derive import ClearAlarm, RaiseAlarm
from shared.events import Envelope, envelopes_in
from tests.collector.fixtures import AGIE, CURRENT_15, OKUMA, OKUMA_DEVICES, fixture
from tests.collector.loopback import AgentServer, ShdrServer, streams_document
from tests.process.conftest import Harness, wait_for

assert RaiseAlarm and ClearAlarm  # the derivation these tests exercise end to end


def published(harness: Harness, type: str | None = None, machine_id: int | None = None) -> list[Envelope]:
    found = [e for m in harness.transport.published for e in envelopes_in(m.body)]
    return [e for e in found if (type is None or e.type == type)
            and (machine_id is None or e.data.get("machine_id") == machine_id)]


async def add_source(harness: Harness, **body: Any) -> dict[str, Any]:
    source: dict[str, Any] = await harness.ok("PUT", "/api/collector/sources/", 201, json=body)
    return source


async def test_shdr_replay_agie_faults(collector: Harness) -> None:
    async with ShdrServer.from_file(fixture(AGIE)) as adapter:
        source = await add_source(collector, machine_id=1, kind="shdr", address=adapter.address)
        await wait_for(lambda: _async(len(published(collector, "telemetry.alarm_cleared")) == 2))
        raised = published(collector, "telemetry.alarm_raised")
        assert [(e.data["native_code"], e.data["message"], e.data["level"]) for e in raised] == [
            ("454A", "Limit switch Y+", "FAULT"), ("3AA", "Key non-functional", "FAULT")]
        cleared = published(collector, "telemetry.alarm_cleared")
        assert [e.data["alarm_id"] for e in cleared] == [e.data["alarm_id"] for e in raised]
        [program] = published(collector, "telemetry.program_loaded")
        assert program.data["program"] == "TNC:\\BRIAN\\PHOTOACOUSTIC RESONATOR V-BLOCK MOUNT.H"

        async def both_cleared() -> Any:  # a live source publishes before it commits
            alarms = await collector.ok("GET", "/api/collector/alarms/?machine_id=1")
            return len(alarms) == 2 and not any(a["active"] for a in alarms.values()) and alarms
        alarms = await wait_for(both_cleared)
        assert sorted(int(i) for i in alarms) == sorted(e.data["alarm_id"] for e in raised)
        assert not any(a["active"] for a in alarms.values())
        await wait_for(lambda: _position(collector, source["id"], "2015-10-20T18:26:36"))
        status = (await collector.ok("GET", f"/api/collector/sources/{source['id']}"))
        assert status["status"]["connected"] and status["status"]["last_data"] is not None
        assert status["position"].startswith("2015-10-20T18:26:36")
        # The recording ends with the adapter going away: execution UNAVAILABLE, program kept.
        state = await collector.ok("GET", "/api/collector/machines/1/state")
        assert state["execution"] == "UNAVAILABLE" and state["active_alarms"] == []
    ids = [e.id for e in published(collector)]
    assert len(ids) == len(set(ids))


async def test_shdr_replay_okuma_parts_and_programs(collector: Harness) -> None:
    async with ShdrServer.from_file(fixture(OKUMA), chunk=2000) as adapter:
        await add_source(collector, machine_id=2, kind="shdr", address=adapter.address)
        await wait_for(lambda: _async(len(published(collector, "telemetry.part_completed")) == 4
                                      and adapter.sent == len(adapter.lines)))
        await wait_for(lambda: _state_seen(collector, 2, "2022-08-08T13:58"))
    parts = published(collector, "telemetry.part_completed")
    assert [(p.data["increment"], p.data["part_count"], p.data["program"]) for p in parts] == [
        (1, 1, "IMTS-2022-2-HOB.MIN"), (1, 1, "IMTS-2022-1E-mm.MIN"), (1, 3, "IMTS-2022-4B-mm.MIN"),
        (1, 1, "IMTS-2022-3-TRAN.MIN")]
    assert len(published(collector, "telemetry.program_loaded")) == 4
    assert not published(collector, "telemetry.alarm_raised")


async def test_garbage_source_is_reported_while_others_carry_on(collector: Harness) -> None:
    garbage = [f"\x00\x7f{'#' * (i % 13)} no timestamp here {i}" for i in range(80)]
    async with ShdrServer(garbage) as bad, ShdrServer.from_file(fixture(AGIE)) as good:
        bad_source = await add_source(collector, machine_id=8, kind="shdr", address=bad.address)
        await add_source(collector, machine_id=9, kind="shdr", address=good.address)
        await wait_for(lambda: _async(len(published(collector, "telemetry.alarm_cleared", 9)) == 2))

        async def reported() -> Any:
            status = (await collector.ok("GET", f"/api/collector/sources/{bad_source['id']}"))["status"]
            return status["last_error"] and "not SHDR" in status["last_error"] and status
        status = await wait_for(reported)
        assert status["last_error_at"] is not None
        assert not published(collector, machine_id=8)


async def test_shdr_silent_adapter_reconnects(collector: Harness) -> None:
    collector.runtime.settings.collector_heartbeat = 0.2  # silence after 0.4 s
    async with ShdrServer(["2024-01-01T00:00:00Z|program|O1"], answer_pings=False) as adapter:
        source = await add_source(collector, machine_id=3, kind="shdr", address=adapter.address)
        # It neither sends data nor answers the collector's PINGs: silent, so the collector reconnects.
        await wait_for(lambda: _async(adapter.connections >= 2), timeout=10)
        status = (await collector.ok("GET", f"/api/collector/sources/{source['id']}"))["status"]
        assert "AdapterSilent" in status["last_error"] and adapter.pings >= 1
    assert len(published(collector, "telemetry.program_loaded", 3)) == 1  # reconnecting repeats nothing


async def test_shdr_ping_is_answered_and_source_disable_stops_reading(collector: Harness) -> None:
    async with ShdrServer(["* PING", "2024-01-01T00:00:00Z|execution|ACTIVE"]) as adapter:
        source = await add_source(collector, machine_id=6, kind="shdr", address=adapter.address)
        await wait_for(lambda: _async(any(r.startswith(b"* PONG ") for r in adapter.received)))
        await wait_for(lambda: _async(published(collector, "telemetry.execution_changed", 6)))
        await collector.ok("PATCH", f"/api/collector/sources/{source['id']}", json={"enabled": False})
        # Disabled: the supervisor stops the reader, which closes its connection and does not come back.
        await wait_for(lambda: _async(adapter.open == 0))
        connections = adapter.connections
        await asyncio.sleep(0.3)
        assert adapter.connections == connections


def _sample(instance: int, first: int, start: int, events: list[str]) -> bytes:
    return streams_document(instance, first, start + len(events), "Mazak", events)


def _ev(tag: str, name: str, sequence: int, value: str, **attrs: str) -> str:
    extra = "".join(f' {k}="{v}"' for k, v in attrs.items())
    return (f'<{tag} dataItemId="x{name}" name="{name}" sequence="{sequence}" '
            f'timestamp="2024-01-01T00:00:{sequence % 60:02d}Z"{extra}>{value}</{tag}>')


async def test_agent_current_sample_gap_and_restart(collector: Harness) -> None:
    instance = 1666332811
    agent = AgentServer(probe=fixture(OKUMA_DEVICES).read_bytes(), current=fixture(CURRENT_15).read_bytes())
    agent.samples[2869] = _sample(instance, 1, 2869, [
        _ev("PartCount", "PartCountAct", 2869, "1"), _ev("Program", "program", 2870, "481"),
        _ev("Fault", "servo_cond", 2871, "Servo overheat", nativeCode="S12")])
    state = {"instance": instance, "first": 1}
    agent.empty = lambda start: streams_document(state["instance"], state["first"], start, "Mazak", [])
    async with agent:
        source = await add_source(collector, machine_id=4, kind="mtconnect", address=agent.url, device="Mazak")
        await wait_for(lambda: _async(len(published(collector, "telemetry.alarm_raised", 4)) == 1))
        # From /current (program 480, tool 4, READY; the count 0 is a baseline), then /sample.
        assert [e.data["program"] for e in published(collector, "telemetry.program_loaded")] == ["480", "481"]
        assert [e.data["tool"] for e in published(collector, "telemetry.tool_changed")] == ["4"]
        [part] = published(collector, "telemetry.part_completed")
        assert (part.data["increment"], part.data["part_count"], part.data["program"]) == (1, 1, "480")
        assert agent.requests[:2] == ["/Mazak/probe", "/Mazak/current"]

        # The agent's buffer moves past us: OUT_OF_RANGE, so /current is read again (the count rose by 2 meanwhile).
        agent.first_sequence = state["first"] = 5000
        agent.current = _sample(instance, 5000, 5000, [_ev("PartCount", "PartCountAct", 5000, "3"),
                                                       _ev("Normal", "servo_cond", 5001, "")])
        await wait_for(lambda: _async(len(published(collector, "telemetry.alarm_cleared", 4)) == 1))
        parts = published(collector, "telemetry.part_completed")
        assert [(p.data["increment"], p.data["part_count"]) for p in parts] == [(1, 1), (2, 3)]

        # The agent restarts: a new instanceId, so /current again; its count 0 is a reset, not a part.
        state["instance"], state["first"] = 42, 1
        agent.first_sequence = 1
        agent.current = _sample(42, 1, 1, [_ev("PartCount", "PartCountAct", 1, "0"),
                                           _ev("Program", "program", 2, "O9")])
        await wait_for(lambda: _async(len(published(collector, "telemetry.program_loaded", 4)) == 3))
        assert len(published(collector, "telemetry.part_completed")) == 2
        await wait_for(lambda: _position(collector, source["id"], "42:"))


async def _async(value: Any) -> Any:
    return value


async def _state_seen(harness: Harness, machine_id: int, prefix: str) -> bool:
    from datetime import UTC, datetime

    state = await harness.ok("GET", f"/api/collector/machines/{machine_id}/state")
    seen = state["last_seen"]
    return seen is not None and datetime.fromtimestamp(seen, UTC).isoformat() >= prefix


async def _position(harness: Harness, source_id: int, prefix: str) -> bool:
    source = await harness.ok("GET", f"/api/collector/sources/{source_id}")
    return bool(source["position"] and source["position"].startswith(prefix))


async def test_simulator_source_publishes_parts_through_the_derivation(collector: Harness) -> None:
    bad = await collector.call("PUT", "/api/collector/sources/", json={"machine_id": 7, "kind": "simulator",
                                                                        "address": "speed=fast"})
    assert bad.status_code == 400 and "simulator parameters" in bad.json()["detail"]
    # Seed 1 at a 0.05 s cycle: 25 parts, then an alarm (the simulator's own rules).
    await add_source(collector, machine_id=7, kind="simulator", address="seed=1;cycle=0.05;programs=O7.nc")
    await wait_for(lambda: _async(published(collector, "telemetry.alarm_raised", 7)))
    parts = published(collector, "telemetry.part_completed", 7)
    assert [p.data["part_count"] for p in parts] == list(range(1, 26))
    assert all(p.data["increment"] == 1 and p.data["program"] == "O7.nc" for p in parts)
    assert [e.data["program"] for e in published(collector, "telemetry.program_loaded", 7)] == ["O7.nc"]
    [raised] = published(collector, "telemetry.alarm_raised", 7)

    async def active_alarms() -> Any:
        return await collector.ok("GET", "/api/collector/alarms/?machine_id=7&active=true")

    # A live source publishes with confirms, then commits its rows and position: the event can
    # be seen a moment before the alarm row is.
    alarms = await wait_for(active_alarms)
    assert list(alarms) == [str(raised.data["alarm_id"])] and raised.data["message"] == alarms[str(
        raised.data["alarm_id"])]["message"]
    state = await collector.ok("GET", "/api/collector/machines/7/state")
    assert state["part_count"] == 25 and state["execution"] == "INTERRUPTED"
