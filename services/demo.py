"""`taktline run --simulate N`: demo machines in the process service, fed by the simulator.

On first start it creates N machines, each with a process, two programs and four tool
assemblies (skipped when they exist), then publishes the simulator's telemetry through the
transport like the collector does, so parts, cycle times and tool use show up in the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.collector.sources.simulator import SimulatedMachine, Simulator
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
from shared.events import Envelope
from shared.runtime import ServiceRuntime
from shared.transport.base import OutboundMessage, PublishError, Transport

log = logging.getLogger("taktline.demo")
CYCLE_SECONDS = 20.0
NAMESPACE = uuid.UUID("6f1d2c8e-0d3a-4b53-9a57-2b7f3f8e9c11")


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


async def run_simulator(simulator: Simulator, transport: Transport, run_id: str) -> None:
    while True:
        emitted = simulator.advance(time.time())
        messages = [
            OutboundMessage.from_envelope(Envelope.wrap(
                e.payload, "collector", id=uuid.uuid5(NAMESPACE, f"{run_id}:{e.machine_id}:{e.sequence}")))
            for e in emitted
        ]
        while messages:
            try:
                await transport.publish(messages)
                break
            except PublishError as exc:  # the broker is away: keep the events, try again
                log.warning("simulator publish failed: %s", exc)
                await asyncio.sleep(2)
        await asyncio.sleep(1)


@asynccontextmanager
async def simulation(runtime: ServiceRuntime, transport: Transport, count: int, seed: int = 1) -> AsyncIterator[None]:
    machines_ = await seed_machines(runtime, count)
    start = time.time()
    simulator = Simulator(machines_, seed=seed, start=start)
    task = asyncio.create_task(run_simulator(simulator, transport, f"{seed}:{int(start)}"), name="simulator")
    log.info("simulating %d machine(s): %s", count, ", ".join(str(m.machine_id) for m in machines_))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
