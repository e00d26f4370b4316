"""One task per enabled live source (agent, adapter), restarted when it fails or its
configuration changes, so a misbehaving source never stalls the others."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from services.collector import repository
from services.collector.domain.mapping import Mapping
from services.collector.sources import mtconnect, shdr, simulated
from services.collector.sources.base import Backoff, SourceConfig, raise_if_cancelled
from services.collector.usecases.publishing import SourceGone, set_status
from shared.runtime import ServiceRuntime

log = logging.getLogger("taktline.collector.supervisor")
LIVE_KINDS = ("mtconnect", "shdr", "simulator")


async def run_source(runtime: ServiceRuntime, config: SourceConfig) -> None:
    """Run one source's reader forever; an unexpected error is reported and the reader restarted."""
    runner: Callable[[], Awaitable[None]]
    if config.kind == "shdr":
        mapping = Mapping().merged(config.mapping)

        def runner() -> Awaitable[None]:
            return shdr.run(runtime, config, mapping)
    elif config.kind == "simulator":
        def runner() -> Awaitable[None]:
            return simulated.run(runtime, config)
    else:
        def runner() -> Awaitable[None]:
            return mtconnect.run(runtime, config)
    backoff = Backoff(cap=runtime.settings.collector_backoff_max)
    while True:
        try:
            await runner()
        except SourceGone:
            return
        except Exception as exc:  # a bug or a surprise in one source must not end the others
            raise_if_cancelled()
            log.exception("source %s failed; restarting it", config.id)
            with contextlib.suppress(Exception):
                await set_status(runtime, config.id, connected=False, error=f"{type(exc).__name__}: {exc}")
        await asyncio.sleep(backoff.next())


class Supervisor:
    def __init__(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime
        self.tasks: dict[int, tuple[tuple[object, ...], asyncio.Task[None]]] = {}

    async def sync(self) -> None:
        async with self.runtime.sessions() as session:
            wanted = {s.id: SourceConfig(s.id, s.machine_id, s.kind, s.address, s.device, dict(s.mapping or {}))
                      for s in await repository.list_sources(session, enabled=True) if s.kind in LIVE_KINDS}
        for source_id in list(self.tasks):
            fingerprint, task = self.tasks[source_id]
            config = wanted.get(source_id)
            if config is None or config.fingerprint != fingerprint or task.done():
                await self._stop(source_id)
        for source_id, config in wanted.items():
            if source_id not in self.tasks:
                task = asyncio.create_task(run_source(self.runtime, config), name=f"collector-source:{source_id}")
                self.tasks[source_id] = (config.fingerprint, task)

    async def _stop(self, source_id: int) -> None:
        _, task = self.tasks.pop(source_id)
        # Cancel until it is done: a library may swallow one cancellation.
        while not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=0.5)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            task.result()

    async def stop(self) -> None:
        for source_id in list(self.tasks):
            await self._stop(source_id)


async def supervise(runtime: ServiceRuntime) -> None:
    """Background job of the collector: keep the runners in line with the sources table."""
    supervisor = Supervisor(runtime)
    try:
        while True:
            try:
                await supervisor.sync()
            except Exception:  # the database may be away for a moment; the runners keep going
                log.exception("could not read the sources")
            await asyncio.sleep(runtime.settings.collector_supervise_interval)
    finally:
        await supervisor.stop()
