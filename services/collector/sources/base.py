"""What every live source runner shares: its configuration snapshot, backoff, and a batch commit
that keeps retrying through a broker outage (the runner stops reading meanwhile: backpressure)."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from typing import Any

from services.collector.domain.mapping import Mapping
from services.collector.domain.observations import Observation
from services.collector.usecases.publishing import commit_batch, set_status
from shared.runtime import ServiceRuntime
from shared.transport.base import PublishError

log = logging.getLogger("taktline.collector.sources")


@dataclass(frozen=True)
class SourceConfig:
    id: int
    machine_id: int
    kind: str
    address: str | None
    device: str | None
    mapping: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> tuple[object, ...]:
        return (self.machine_id, self.kind, self.address, self.device, sorted(self.mapping.items(), key=str))


def raise_if_cancelled() -> None:
    """Re-raise a cancellation a library swallowed (3.11's wait_for, drivers): loops call this each turn."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class Backoff:
    """Exponential with jitter, capped; `reset()` once a connection works."""

    def __init__(self, base: float = 0.5, cap: float = 30.0) -> None:
        self.base, self.cap, self.attempt = base, cap, 0

    def next(self) -> float:
        delay = min(self.cap, self.base * 2 ** self.attempt)
        self.attempt += 1
        return delay * random.uniform(0.8, 1.0)

    def reset(self) -> None:
        self.attempt = 0


async def commit_until_confirmed(runtime: ServiceRuntime, config: SourceConfig, *, stream: str, mapping: Mapping,
                                 observations: list[Observation], position: str | None) -> int:
    backoff = Backoff(cap=runtime.settings.collector_backoff_max)
    failed = False
    while True:
        try:
            published = await commit_batch(runtime, config.id, stream=stream, mapping=mapping,
                                           observations=observations, position=position)
            if failed:
                await set_status(runtime, config.id, clear_error=True)
            return published
        except PublishError as exc:
            # Nothing was saved: the same batch, derived again, yields the same event ids.
            raise_if_cancelled()
            failed = True
            log.warning("source %s: publish not confirmed (%s); retrying", config.id, exc)
            await set_status(runtime, config.id, error=f"publish not confirmed: {exc}")
            await asyncio.sleep(backoff.next())
