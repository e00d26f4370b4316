"""A consumer batch of telemetry for several machines, applied in one transaction: what it
records, and the statements it costs (SQLite and PostgreSQL)."""

from __future__ import annotations

from shared.events import PartCompleted, ProgramLoaded
from tests.process.conftest import Delivery, Harness, statements_of

T0 = 1_790_000_000.0


async def test_a_batch_over_several_machines_locks_them_in_one_statement_and_flushes_parts_once(
        api: Harness) -> None:
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
    inserts = [n for n, s in enumerate(statements) if s.startswith("INSERT INTO parts")]
    # One flush at commit, after every read: on PostgreSQL one statement for all rows, with the
    # ids reserved before (no RETURNING, the same text for any batch size); a row each on SQLite.
    postgres = api.runtime.engine.dialect.name == "postgresql"
    assert len(inserts) == (1 if postgres else len(batch)), statements
    if postgres:
        assert "RETURNING" not in statements[inserts[0]]
        assert len([s for s in statements if "nextval" in s]) == 1
    assert not [s for s in statements[inserts[0]:] if s.startswith("SELECT")], statements[inserts[0]:]
    assert not [s for s in statements if s.startswith("SELECT") and " FROM parts" in s]

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
    assert [s for s in again if s.startswith("INSERT INTO parts")] == [statements[inserts[0]]] * (
        1 if postgres else 2)
    assert len(await api.ok("GET", "/api/parts/", params={"limit": 100})) == len(parts) + 2
