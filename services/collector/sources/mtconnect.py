"""MTConnect agent client over HTTP: probe, current, then sample from nextSequence.

The position saved is `instanceId:nextSequence`. A different instanceId (the agent
restarted) or a sequence the agent no longer holds (its buffer moved past us: an
OUT_OF_RANGE error or firstSequence beyond ours) is logged and recovered by reading
/current again, so the latest values are never skipped silently. Event ids derive from the
agent instance and the observation's sequence.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from services.collector.domain.mapping import Mapping
from services.collector.domain.mtconnect import DocumentError, Streams, default_mapping, parse_probe, parse_streams
from services.collector.sources.base import Backoff, SourceConfig, commit_until_confirmed, raise_if_cancelled
from services.collector.usecases.publishing import position_of, set_status
from shared.runtime import ServiceRuntime

log = logging.getLogger("taktline.collector.mtconnect")


class AgentClient:
    def __init__(self, base_url: str, device: str | None, *, timeout: float, max_bytes: int) -> None:
        self.base = base_url.rstrip("/") + (f"/{device}" if device else "")
        self.device = device
        self.max_bytes = max_bytes
        self.http = httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    async def _get(self, path: str, params: dict[str, int] | None = None) -> bytes:
        # Streamed so a huge answer is cut off at max_bytes instead of filling memory.
        async with self.http.stream("GET", self.base + path, params=params) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self.max_bytes:
                    raise DocumentError(f"{path}: answer exceeds {self.max_bytes} bytes")
            if response.status_code >= 400 and not body.lstrip().startswith(b"<"):
                response.raise_for_status()
            return bytes(body)

    async def probe(self) -> Mapping:
        items = parse_probe(await self._get("/probe"), self.max_bytes)
        return default_mapping(items, self.device)

    async def current(self) -> Streams:
        return parse_streams(await self._get("/current"), self.device, self.max_bytes)

    async def sample(self, start: int, count: int) -> Streams:
        return parse_streams(await self._get("/sample", {"from": start, "count": count}), self.device, self.max_bytes)

    async def close(self) -> None:
        await self.http.aclose()


def _parse_position(position: str | None) -> tuple[int, int] | None:
    try:
        instance, sequence = (position or "").split(":")
        return int(instance), int(sequence)
    except ValueError:
        return None


async def run(runtime: ServiceRuntime, config: SourceConfig, overrides: Mapping | None = None) -> None:
    settings = runtime.settings
    backoff = Backoff(cap=settings.collector_backoff_max)
    while True:
        client = AgentClient(config.address or "", config.device, timeout=settings.collector_timeout,
                             max_bytes=settings.collector_max_document_bytes)
        try:
            await _follow(runtime, config, client, backoff)
        except (httpx.HTTPError, DocumentError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("source %s (%s): %s", config.id, config.address, error)
            await set_status(runtime, config.id, connected=False, error=error)
        finally:
            await client.close()
        raise_if_cancelled()
        await asyncio.sleep(backoff.next())


async def _follow(runtime: ServiceRuntime, config: SourceConfig, client: AgentClient, backoff: Backoff) -> None:
    settings = runtime.settings
    mapping = (await client.probe()).merged(config.mapping)
    await set_status(runtime, config.id, connected=True)
    saved = _parse_position(await position_of(runtime, config.id))
    instance, next_sequence = await _from_current(runtime, config, client, mapping, saved)
    backoff.reset()
    while True:
        try:
            streams = await client.sample(next_sequence, settings.collector_sample_count)
        except DocumentError as exc:
            if "OUT_OF_RANGE" not in exc.codes:
                raise
            log.warning("source %s: sequence %d is out of the agent's buffer (%s); re-reading /current",
                        config.id, next_sequence, exc)
            instance, next_sequence = await _from_current(runtime, config, client, mapping, None)
            continue
        if streams.instance_id != instance:
            log.warning("source %s: agent restarted (instance %d -> %d); re-reading /current",
                        config.id, instance, streams.instance_id)
            instance, next_sequence = await _from_current(runtime, config, client, mapping, None)
            continue
        if streams.first_sequence > next_sequence:
            log.warning("source %s: gap, sequences %d..%d are gone from the agent's buffer; re-reading /current",
                        config.id, next_sequence, streams.first_sequence - 1)
            instance, next_sequence = await _from_current(runtime, config, client, mapping, None)
            continue
        await commit_until_confirmed(runtime, config, stream=f"agent:{config.id}:{instance}", mapping=mapping,
                                     observations=streams.observations,
                                     position=f"{instance}:{streams.next_sequence}")
        caught_up = streams.next_sequence > streams.last_sequence
        next_sequence = streams.next_sequence
        if caught_up:
            await asyncio.sleep(settings.collector_poll_interval)


async def _from_current(runtime: ServiceRuntime, config: SourceConfig, client: AgentClient, mapping: Mapping,
                        saved: tuple[int, int] | None) -> tuple[int, int]:
    """Where to sample from: the saved position when the agent still holds it, else /current applied."""
    current = await client.current()
    if saved is not None and saved[0] == current.instance_id and current.first_sequence <= saved[1]:
        return saved
    if saved is not None:
        log.warning("source %s: saved position %s:%s is not resumable (agent instance %s, first sequence %s); "
                    "re-reading /current", config.id, *saved, current.instance_id, current.first_sequence)
    await commit_until_confirmed(runtime, config, stream=f"agent:{config.id}:{current.instance_id}", mapping=mapping,
                                 observations=current.observations,
                                 position=f"{current.instance_id}:{current.next_sequence}")
    return current.instance_id, current.next_sequence
