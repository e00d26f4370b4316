"""`taktline run --simulate N`: demo machines in the process service, fed by the simulator.

On first start it creates N machines, each with a process, two programs and four tool
assemblies, and a collector `simulator` source for each (skipped when they exist); the
collector then reads them like real machines, so parts, cycle times, tool use and alarms
show up in the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.collector.schemas import SourceCreate
from services.collector.sources.simulator import SimulatedMachine
from services.collector.usecases import sources
from services.maintenance.schemas import ItemCreate
from services.maintenance.usecases import items
from services.process import repository
from services.process.schemas import (
    ChangeoverRequest,
    MachineCreate,
    ProcessCreate,
    ProgramCreate,
    ToolAssemblyCreate,
    ToolInAssembly,
)
from services.process.usecases import changeovers, machines, processes, programs, tools
from shared.db import utcnow
from shared.errors import InvalidInput
from shared.runtime import ServiceRuntime

log = logging.getLogger("taktline.demo")
CYCLE_SECONDS = 20.0


async def seed_machines(runtime: ServiceRuntime, count: int) -> list[SimulatedMachine]:
    simulated: list[SimulatedMachine] = []
    async with runtime.uow() as uow:
        existing = {m.name: m for m in await repository.list_machines(uow.session)}
        for n in range(1, count + 1):
            name = f"Simulated VMC-{n}"
            files = [f"O{1000 + n * 10}.nc", f"O{1000 + n * 10 + 1}.nc"]
            if name in existing:
                simulated.append(SimulatedMachine(existing[name].id, files, cycle_seconds=CYCLE_SECONDS))
                continue
            machine = await machines.create_machine(uow, MachineCreate(name=name, location="Demo cell"))
            process = await processes.create_process(uow, ProcessCreate(
                machine_id=machine.id, name=f"Bracket {n} op10", time_per_cycle=CYCLE_SECONDS / 60,
                part_sell_price=24.0, part_material_cost=6.5, tags=["demo"]))
            for filename in files:
                await programs.create_program(uow, ProgramCreate(
                    machine_id=machine.id, filename=filename, process_id=process.id))
            for location, kind in (("T1", "face mill"), ("T2", "drill"), ("T3", "end mill"), ("T4", "tap")):
                await tools.create_assembly(uow, ToolAssemblyCreate(
                    machine_id=machine.id, location=location, process_id=process.id, name=f"{kind} {location}",
                    tools=[ToolInAssembly(name=kind, tool_type=kind)]))
            await changeovers.change_over(uow, process.id, process.id, ChangeoverRequest(), planned=True,
                                          user="simulator", now=utcnow())
            simulated.append(SimulatedMachine(machine.id, files, cycle_seconds=CYCLE_SECONDS))
        await uow.commit()
    return simulated


async def seed_sources(collector: ServiceRuntime, machines: list[SimulatedMachine], seed: int) -> None:
    """One collector `simulator` source per demo machine, so its telemetry takes the same path
    (derivation, alarm ids, confirmed publishing) as a real machine's."""
    async with collector.uow() as uow:
        existing = await sources.list_sources(uow.session, None, "simulator")
        covered = {s.machine_id for s in existing.values()}
        for n, machine in enumerate(machines, start=1):
            if machine.machine_id not in covered:
                address = f"seed={seed + n};cycle={machine.cycle_seconds};programs={','.join(machine.programs)}"
                await sources.create_source(uow, SourceCreate(machine_id=machine.machine_id, kind="simulator",
                                                              address=address), cache=None)  # not serving yet
        await uow.commit()


def demo_items(machine_id: int) -> list[ItemCreate]:
    """One item per schedule kind: run time, an alarm trigger, and a daily calendar round."""
    return [
        ItemCreate(item_type="task", name="Lubricate ways", machine_id=machine_id, schedule_mode=1,
                   timer_interval=0.5, warning_interval=0.1, instructions="Top up way oil; wipe the ways."),
        ItemCreate(item_type="task", name="Check coolant", machine_id=machine_id, schedule_mode=0,
                   timer_interval=168, trigger_alarms=["LOW COOLANT LEVEL"], instructions="Refill to the mark."),
        ItemCreate(item_type="measurement", name="Spindle temperature", machine_id=machine_id, schedule_mode=2,
                   frequency="D", time_of_day="07:00", unit="°C", threshold_upper=45.0),
    ]


async def seed_items(maintenance: ServiceRuntime, machine_ids: list[int], within: float = 60.0) -> None:
    """Demo maintenance items, once maintenance has heard of the machines (machine.upserted
    arrives through the bus, so the first attempts may find them unknown)."""
    deadline = asyncio.get_running_loop().time() + within
    pending = list(machine_ids)
    while pending and asyncio.get_running_loop().time() < deadline:
        try:
            async with maintenance.uow() as uow:
                existing = await items.list_items(uow.session, item_types=[], machine_ids=pending, equipment_ids=[])
                have = {i.machine_id for i in existing.values()}
                for machine_id in (m for m in pending if m not in have):
                    for item in demo_items(machine_id):
                        await items.create_item(uow, item)
                await uow.commit()
                pending = []
        except InvalidInput:  # maintenance has not heard of a machine yet; wait outside the transaction
            await asyncio.sleep(0.5)


@asynccontextmanager
async def simulation(process: ServiceRuntime, collector: ServiceRuntime, count: int, seed: int = 1,
                     maintenance: ServiceRuntime | None = None) -> AsyncIterator[None]:
    simulated = await seed_machines(process, count)
    await seed_sources(collector, simulated, seed)
    log.info("simulating %d machine(s): %s", count, ", ".join(str(m.machine_id) for m in simulated))
    task = asyncio.create_task(seed_items(maintenance, [m.machine_id for m in simulated])) if maintenance else None
    try:
        yield
    finally:
        if task:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
