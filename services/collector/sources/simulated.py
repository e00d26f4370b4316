"""A `simulator` source: the deterministic simulated machine (sources/simulator.py) read like an adapter.

Its payloads are turned back into observations (part count, program, execution, tool, a
`system` condition) so they go through the same derivation, alarm ids and confirmed
publishing as a real machine. `address` holds the parameters, e.g.
`seed=7;cycle=90;programs=O1000.nc,O1001.nc` (all optional).
"""

from __future__ import annotations

import asyncio
import time

from services.collector.domain.mapping import Mapping
from services.collector.domain.observations import Condition, Observation
from services.collector.sources.base import SourceConfig, commit_until_confirmed
from services.collector.sources.simulator import Emitted, SimulatedMachine, Simulator
from services.collector.usecases.publishing import set_status
from shared.events import AlarmCleared, AlarmRaised, ExecutionChanged, PartCompleted, ProgramLoaded, ToolChanged
from shared.runtime import ServiceRuntime


def parse_parameters(address: str | None) -> dict[str, str]:
    """`key=value;…` -> dict; raises ValueError naming what is wrong."""
    params: dict[str, str] = {}
    for part in (address or "").split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in ("seed", "cycle", "programs"):
            raise ValueError(f"unknown simulator parameter {part.strip()!r} (seed, cycle, programs)")
        params[key.strip()] = value.strip()
    if "seed" in params:
        int(params["seed"])
    if "cycle" in params and not 0 < float(params["cycle"]) <= 86400:
        raise ValueError("cycle must be between 0 and 86400 seconds")
    if "programs" in params and not [p for p in params["programs"].split(",") if p.strip()]:
        raise ValueError("programs must name at least one program")
    return params


def observation(emitted: Emitted) -> Observation:
    payload, position = emitted.payload, str(emitted.sequence)
    ts = payload.timestamp  # type: ignore[attr-defined]
    if isinstance(payload, PartCompleted):
        return Observation(ts, "PartCountAct", str(payload.part_count), position=position)
    if isinstance(payload, ProgramLoaded):
        return Observation(ts, "program", payload.program or "", position=position)
    if isinstance(payload, ExecutionChanged):
        return Observation(ts, "execution", payload.execution, position=position)
    if isinstance(payload, ToolChanged):
        return Observation(ts, "Tool_number", payload.tool, position=position)
    if isinstance(payload, AlarmRaised):
        return Observation(ts, "system", condition=Condition("FAULT", payload.native_code or "", "", "",
                                                             payload.message), position=position)
    assert isinstance(payload, AlarmCleared)
    return Observation(ts, "system", condition=Condition("NORMAL"), position=position)


async def run(runtime: ServiceRuntime, config: SourceConfig) -> None:
    params = parse_parameters(config.address)
    programs = [p.strip() for p in params.get("programs", "O1000.nc,O1001.nc").split(",") if p.strip()]
    start = time.time()
    simulator = Simulator([SimulatedMachine(config.machine_id, programs, cycle_seconds=float(params.get("cycle", 90)))],
                          seed=int(params.get("seed", config.id)), start=start)
    stream, mapping = f"sim:{config.id}:{start!r}", Mapping().merged(config.mapping)
    await set_status(runtime, config.id, connected=True, clear_error=True)
    # The simulated counter starts at 0, so its first part is a part and not the baseline.
    pending = [Observation(start, "PartCountAct", "0", position="0")]
    while True:
        pending += [observation(e) for e in simulator.advance(time.time())]
        if pending:
            await commit_until_confirmed(runtime, config, stream=stream, mapping=mapping, observations=pending,
                                         position=f"{start!r}:{pending[-1].position}")
            pending = []
        await asyncio.sleep(min(1.0, runtime.settings.collector_poll_interval))
