"""A consumer batch of telemetry for several machines, applied in one transaction: what it
records, and the statements it costs (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from services.process.models import Machine, Part, Process
from services.process.usecases import settings as settings_usecases
from shared.db import from_unix
from shared.events import PartCompleted, ProgramLoaded, ToolChanged, VariablesChanged
from tests.process.conftest import Delivery, Harness, statements_of

T0 = 1_790_000_000.0


async def test_a_batch_over_several_machines_locks_them_in_one_statement_and_flushes_parts_once(
        api: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings_usecases, "CACHE_SECONDS", 600.0)  # however slow this run: kept
    lines = []
    for n in range(3):
        machine = (await api.machine(f"VMC {n}"))["id"]
        process = (await api.process(machine, f"Op {n}", time_per_cycle=1.0))["id"]
        lines.append((machine, process))
    (m0, p0), (m1, p1), (m2, _) = lines
    program = (await api.program(m0, "O1000.nc", p0))["id"]
    await api.ok("POST", f"/api/processes/{p1}/changeover/{p1}", params={"planned": 1})
    consumer = api.runtime.consumer
    assert consumer is not None
    await consumer.handle_batch([Delivery.of(ProgramLoaded(machine_id=m0, timestamp=T0, program="O1000.nc"))])

    # Interleaved and highest machine first: the locks must still be taken in id order.
    batch = [Delivery.of(PartCompleted(machine_id=machine, timestamp=T0 + 10 * k + machine, increment=1))
             for k in range(1, 4) for machine in (m2, m1, m0)]
    with statements_of(api) as statements:
        await consumer.handle_batch(batch)  # type: ignore[arg-type]

    assert all(d.settled == ["ack"] for d in batch)
    machine_reads = [s for s in statements if s.startswith("SELECT") and " FROM machines" in s]
    assert len(machine_reads) == 1, machine_reads
    if api.runtime.engine.dialect.name == "postgresql":
        assert machine_reads[0].endswith("ORDER BY machines.id FOR UPDATE OF machines"), machine_reads[0]
    # The machines' programs and processes come with them; the settings were read before.
    assert not [s for s in statements if s.startswith("SELECT") and (" FROM programs" in s or " FROM processes" in s
                                                                     or " FROM settings" in s)
                and s not in machine_reads], statements
    postgres = api.runtime.engine.dialect.name == "postgresql"
    # The batch's own writes (the relay of an earlier commit may run meanwhile, on the outbox).
    writes = [n for n, s in enumerate(statements) if s.startswith(
        ("INSERT INTO parts", "UPDATE machines", "UPDATE processes", "WITH new_parts"))]
    if postgres:
        # After every read, one statement writes the parts (ids reserved before, no RETURNING), what
        # they move on their machines and processes, and the outbox rows; its text is the same for
        # any batch size.
        assert len(writes) == 1, [statements[n] for n in writes]
        assert statements[writes[0]].startswith("WITH new_parts AS ( INSERT INTO parts"), statements[writes[0]]
        assert "RETURNING" not in statements[writes[0]]
        assert len([s for s in statements if "nextval" in s]) == 1
    else:  # the ORM's flush at commit: a row each
        assert len([s for s in statements if s.startswith("INSERT INTO parts")]) == len(batch)
    assert not [s for s in statements[writes[0]:] if s.startswith("SELECT")], statements[writes[0]:]
    assert not [s for s in statements if s.startswith("SELECT") and " FROM parts" in s]

    # Each machine's and process's last part moved with the batch (the 3rd report of each machine).
    async with api.runtime.sessions() as session:
        machines = {m.id: m for m in (await session.scalars(select(Machine))).all()}
        processes = {p.id: p for p in (await session.scalars(select(Process))).all()}
    for machine in (m0, m1, m2):
        assert machines[machine].last_part_at == from_unix(T0 + 30 + machine)
        assert machines[machine].last_seen == from_unix(T0 + 30 + machine)
        assert machines[machine].tools_used == []
    assert processes[p0].last_cycle_finished == from_unix(T0 + 30 + m0)
    assert processes[p0].last_cycle_program_id == program
    assert processes[p1].last_cycle_finished == from_unix(T0 + 30 + m1)

    parts = (await api.ok("GET", "/api/parts/", params={"limit": 100}))
    by_machine: dict[int, list[tuple[int | None, int | None]]] = {}
    for part in sorted(parts.values(), key=lambda p: p["finished"]):
        by_machine.setdefault(part["machine_id"], []).append((part["process_id"], part["program_id"]))
    assert by_machine == {m0: [(p0, program)] * 3,  # the loaded program's process
                          m1: [(p1, None)] * 3,  # the confirmed active process
                          m2: [(None, None)] * 3}  # nothing running
    recorded = await api.events("process.part_recorded")
    assert sorted(e.data["part_id"] for e in recorded) == sorted(int(i) for i in parts)
    assert [e.data["part_id"] for e in recorded] == sorted(e.data["part_id"] for e in recorded)  # in order

    smaller = [Delivery.of(PartCompleted(machine_id=m0, timestamp=T0 + 100 + k, increment=1)) for k in range(2)]
    with statements_of(api) as again:
        await consumer.handle_batch(smaller)  # type: ignore[arg-type]
    if postgres:
        assert [s for s in again if s.startswith("WITH new_parts")] == [statements[writes[0]]]
        assert not [s for s in again if "nextval" in s], again  # ids reserved ahead by the first batch
    assert len(await api.ok("GET", "/api/parts/", params={"limit": 100})) == len(parts) + 2


async def test_a_batch_mixing_parts_with_other_reports_keeps_every_change(api: Harness) -> None:
    machine = (await api.machine("VMC"))["id"]
    process = (await api.process(machine, "Op 10", time_per_cycle=1.0))["id"]
    await api.ok("POST", f"/api/processes/{process}/changeover/{process}", params={"planned": 1})
    consumer = api.runtime.consumer
    assert consumer is not None
    batch = [Delivery.of(ToolChanged(machine_id=machine, timestamp=T0 + 1, tool="T7")),
             Delivery.of(VariablesChanged(machine_id=machine, timestamp=T0 + 2, variables={"500": 3})),
             Delivery.of(PartCompleted(machine_id=machine, timestamp=T0 + 3, increment=1)),
             Delivery.of(ToolChanged(machine_id=machine, timestamp=T0 + 4, tool="T8"))]
    await consumer.handle_batch(batch)  # type: ignore[arg-type]
    assert all(d.settled == ["ack"] for d in batch)
    async with api.runtime.sessions() as session:
        row = await session.get(Machine, machine)
        assert row is not None
        # The part's columns and the tool and variable reports' columns, whichever statement wrote them.
        assert (row.current_tool, row.tools_used, row.variables) == ("T8", ["T7", "T8"], {"500": 3})
        assert (row.last_part_at, row.last_seen) == (from_unix(T0 + 3), from_unix(T0 + 4))
        (part,) = (await session.scalars(select(Part))).all()
        assert (part.process_id, part.tool_locations) == (process, ["T7"])
    assert [e.data["part_id"] for e in await api.events("process.part_recorded")] == [part.id]
