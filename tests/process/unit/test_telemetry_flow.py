"""Telemetry consumed by the process service (in-memory transport, SQLite): parts, programs, tools."""

from __future__ import annotations

from typing import Any

import pytest

from shared.events import (
    Envelope,
    InterlockChanged,
    PartCompleted,
    PartRecorded,
    Payload,
    ProgramLoaded,
    SyncRequested,
    ToolChanged,
    VariablesChanged,
)
from shared.transport.base import OutboundMessage
from tests.process.conftest import Harness, wait_for

pytestmark = pytest.mark.parametrize("api", ["sqlite"], indirect=True)

T0 = 1_790_000_000.0


async def send(api: Harness, *payloads: Payload, producer: str = "collector") -> list[Envelope]:
    envelopes = [Envelope.wrap(p, producer) for p in payloads]
    await api.transport.publish([OutboundMessage.from_envelope(e) for e in envelopes])
    return envelopes


async def parts_of(api: Harness, **filters: Any) -> dict[str, Any]:
    return await api.ok("GET", "/api/parts/", params=filters)


async def setup_line(api: Harness, **process_fields: Any) -> tuple[int, int, int]:
    machine = await api.machine()
    process = await api.process(machine["id"], time_per_cycle=2.0, **process_fields)
    program = await api.program(machine["id"], "O1000.nc", process["id"])
    return machine["id"], process["id"], program["id"]


class TestPartCompleted:
    async def test_records_a_part_against_the_running_process_and_publishes_it(self, api: Harness) -> None:
        machine, process, program = await setup_line(api, parts_per_cycle=2)
        await send(api, ProgramLoaded(machine_id=machine, timestamp=T0, program="O1000.nc"),
                   ToolChanged(machine_id=machine, timestamp=T0 + 1, tool="T1"),
                   PartCompleted(machine_id=machine, timestamp=T0 + 60, increment=1, part_count=11),
                   PartCompleted(machine_id=machine, timestamp=T0 + 150, increment=1, part_count=12))

        parts = await wait_for(lambda: _with_len(parts_of(api, machine_id=machine), 2))
        first, second = sorted(parts.values(), key=lambda p: p["finished"])
        assert first["process_id"] == process and first["program_id"] == program
        assert first["count"] == 2 and first["cycles"] == 1
        assert first["cycle_time"] is None and second["cycle_time"] == 90.0
        assert first["tool_locations"] == ["T1"]
        recorded = await api.events("process.part_recorded")
        assert [e.data["count"] for e in recorded] == [2, 2]
        assert recorded[1].data["time_per_cycle"] == 2.0 and recorded[1].data["cycle_time"] == 90.0
        # Built without the model on PostgreSQL (UnitOfWork.emit_data): exactly the model's JSON form.
        for event in recorded:
            assert PartRecorded.model_validate(event.data).model_dump(mode="json") == event.data
            assert [type(v) for v in event.data.values()] == [
                type(v) for v in PartRecorded.model_validate(event.data).model_dump(mode="json").values()]
        view = await api.ok("GET", f"/api/processes/{process}")
        assert view["last_cycle"] == {"finished": T0 + 150, "program_id": program}
        assert view["loaded"] is True

    async def test_the_same_message_twice_records_one_part(self, api: Harness) -> None:
        machine, _, _ = await setup_line(api)
        envelope = Envelope.wrap(PartCompleted(machine_id=machine, timestamp=T0, increment=1), "collector")
        message = OutboundMessage.from_envelope(envelope)
        await api.transport.publish([message, message])
        await send(api, PartCompleted(machine_id=machine, timestamp=T0 + 30, increment=1))  # a marker after both
        parts = await wait_for(lambda: _with_len(parts_of(api, machine_id=machine), 2))
        assert sorted(p["finished"] for p in parts.values()) == [T0, T0 + 30]

    async def test_a_jump_over_the_report_limit_is_not_production(self, api: Harness) -> None:
        machine, _, _ = await setup_line(api)
        await api.ok("PATCH", "/api/settings", json={"part_report_limit": 10})
        await send(api, PartCompleted(machine_id=machine, timestamp=T0, increment=500),
                   PartCompleted(machine_id=machine, timestamp=T0 + 5, increment=3))
        parts = await wait_for(lambda: _with_len(parts_of(api, machine_id=machine), 1))
        assert [p["count"] for p in parts.values()] == [3]

    async def test_an_unknown_program_filename_becomes_a_program(self, api: Harness) -> None:
        machine, _, _ = await setup_line(api)
        await send(api, PartCompleted(machine_id=machine, timestamp=T0, increment=1, program="O9999.nc"))
        parts = await wait_for(lambda: _with_len(parts_of(api, machine_id=machine), 1))
        programs = await api.ok("GET", "/api/programs/", params={"machine_id": machine})
        new = [p for p in programs.values() if p["filename"] == "O9999.nc"]
        assert len(new) == 1 and new[0]["process_id"] is None
        assert next(iter(parts.values()))["program_id"] == new[0]["id"]

    async def test_the_program_named_in_the_report_decides_the_process(self, api: Harness) -> None:
        machine, process, program = await setup_line(api)
        other = await api.process(machine, "Other op")
        await api.ok("POST", f"/api/processes/{other['id']}/changeover/{other['id']}", params={"planned": 1})
        await send(api, PartCompleted(machine_id=machine, timestamp=T0, increment=1, program="O1000.nc"))
        parts = await wait_for(lambda: _with_len(parts_of(api, machine_id=machine), 1))
        assert [(p["process_id"], p["program_id"]) for p in parts.values()] == [(process, program)]

    async def test_unparseable_messages_are_dead_lettered_and_the_rest_flows(self, api: Harness) -> None:
        machine, _, _ = await setup_line(api)
        await api.transport.publish([
            OutboundMessage("telemetry.part_completed", b"{not json", "bad-1"),
            OutboundMessage("telemetry.part_completed",
                            Envelope(type="telemetry.part_completed", producer="x", data={"machine_id": "?"})
                            .to_bytes(), "bad-2"),
        ])
        await send(api, PartCompleted(machine_id=machine, timestamp=T0, increment=1))
        await wait_for(lambda: _with_len(parts_of(api, machine_id=machine), 1))
        dead = await wait_for(lambda: _ready(len(api.transport.dead_letters("process")) == 2))
        assert dead


class TestVariables:
    async def test_part_count_cv_counts_parts_from_the_variable(self, api: Harness) -> None:
        machine, process, _ = await setup_line(api, part_count_cv=500, cv_map={"Serial": {"number": 5}})
        await send(api, ProgramLoaded(machine_id=machine, timestamp=T0, program="O1000.nc"),
                   VariablesChanged(machine_id=machine, timestamp=T0, variables={"500": 7, "5": 1001}),
                   PartCompleted(machine_id=machine, timestamp=T0 + 1, increment=1),  # ignored for this process
                   VariablesChanged(machine_id=machine, timestamp=T0 + 60, variables={"500": 9, "5": 1002}),
                   VariablesChanged(machine_id=machine, timestamp=T0 + 90, variables={"500": 0}))  # reset: no part
        await send(api, ProgramLoaded(machine_id=machine, timestamp=T0 + 99, program="O2.nc"))  # marker: all applied
        await wait_for(lambda: _has_program(api, machine, "O2.nc"))
        parts = await parts_of(api, process_id=process)
        assert [(p["cycles"], p["variables"]) for p in parts.values()] == [(2, {"Serial": 1002})]
        assert "Serial" in await api.ok("GET", "/api/processes/variables")


class TestTools:
    async def test_tools_outside_the_process_are_recorded_as_unassigned(self, api: Harness) -> None:
        machine, process, _ = await setup_line(api)
        await api.assembly(machine, "T1", process)
        await send(api, ProgramLoaded(machine_id=machine, timestamp=T0, program="O1000.nc"),
                   ToolChanged(machine_id=machine, timestamp=T0 + 1, tool="T1"),
                   ToolChanged(machine_id=machine, timestamp=T0 + 2, tool="T7"))

        async def unassigned() -> dict[str, float]:
            return (await api.ok("GET", f"/api/processes/{process}"))["unassigned_tools_used"]

        assert await wait_for(unassigned) == {"T7": T0 + 2}


class TestInterlockAndSync:
    async def test_interlock_blocks_and_releases_the_machine(self, api: Harness) -> None:
        machine, _, _ = await setup_line(api)
        await send(api, InterlockChanged(machine_id=machine, blocked=True, item_ids=[4, 2]), producer="maintenance")

        async def blocked() -> Any:
            m = await api.ok("GET", f"/api/machines/{machine}")
            return m if m["blocked"] else None

        assert (await wait_for(blocked))["blocking_items"] == [2, 4]
        await send(api, InterlockChanged(machine_id=machine, blocked=False), producer="maintenance")
        await wait_for(lambda: _not(blocked()))

    async def test_sync_request_republishes_machines_processes_and_settings(self, api: Harness) -> None:
        machine, process, _ = await setup_line(api)
        before = len(await api.events())
        await send(api, SyncRequested(requester="maintenance", domains=[]), producer="maintenance")

        async def republished() -> list[Envelope]:
            return [e for e in (await api.events())[before:]
                    if e.type in ("machine.upserted", "process.upserted", "settings.updated")]

        events = await wait_for(lambda: _with_len(republished(), 3))
        assert {(e.type, e.data.get("machine_id"), e.data.get("process_id")) for e in events} == {
            ("machine.upserted", machine, None),
            ("process.upserted", machine, process),
            ("settings.updated", None, None),
        }


async def _with_len(awaitable: Any, n: int) -> Any:
    value = await awaitable
    return value if len(value) == n else None


async def _ready(value: bool) -> bool:
    return value


async def _not(awaitable: Any) -> bool:
    return not await awaitable


async def _has_program(api: Harness, machine: int, filename: str) -> bool:
    programs = await api.ok("GET", "/api/programs/", params={"machine_id": machine})
    return any(p["filename"] == filename for p in programs.values())
