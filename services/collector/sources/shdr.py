"""SHDR adapter client (TCP, usually port 7878): read lines, heartbeat, reconnect with backoff.

The collector pings (`* PING`); an adapter that answers `* PONG <ms>` has promised a line at
least that often, so silence for twice that long means it is gone. Adapters that never
answer get the configured heartbeat as their silence limit. An incoming `* PING` is
answered with `* PONG <ms>`. Lines that are not SHDR are counted and reported in the
source's status; an adapter sending nothing but garbage is disconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.collector.domain.mapping import Mapping
from services.collector.domain.observations import Observation
from services.collector.domain.shdr import ShdrError, ShdrParser
from services.collector.sources.base import Backoff, SourceConfig, commit_until_confirmed, raise_if_cancelled
from services.collector.usecases.publishing import set_status
from shared.runtime import ServiceRuntime

log = logging.getLogger("taktline.collector.shdr")
MAX_LINE = 1024 * 1024  # a line longer than this is garbage, not data
GARBAGE_LIMIT = 50  # consecutive bad lines before the connection is dropped


class AdapterSilent(Exception):
    pass


class AdapterGarbage(Exception):
    pass


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class ShdrSession:
    """One connection's reading: lines -> observations batches, with positions."""

    def __init__(self, mapping: Mapping) -> None:
        self.parser = ShdrParser(mapping.conditions or (), mapping.messages, mapping.alarms)
        self.last_stamp = ""
        self.same_stamp = 0
        self.bad_in_a_row = 0
        self.bad_total = 0
        self.last_bad: str | None = None

    def lines(self, lines: list[str]) -> tuple[list[Observation], bool, list[str]]:
        """Observations, whether a PING came, and commands seen."""
        observations: list[Observation] = []
        ping, commands = False, []
        for line in lines:
            stamp = line.split("|", 1)[0]
            self.same_stamp = self.same_stamp + 1 if stamp == self.last_stamp else 0
            self.last_stamp = stamp
            try:
                parsed = self.parser.feed(line, f"{stamp}/{self.same_stamp}")
            except ShdrError as exc:
                self.bad_in_a_row += 1
                self.bad_total += 1
                self.last_bad = str(exc)
                continue
            self.bad_in_a_row = 0
            ping = ping or parsed.ping
            if parsed.command:
                commands.append(parsed.command)
            observations += parsed.observations
        return observations, ping, commands


async def run(runtime: ServiceRuntime, config: SourceConfig, mapping: Mapping) -> None:
    """Connect, read, reconnect; returns only when cancelled."""
    settings = runtime.settings
    host, port = split_address(config.address or "")
    backoff = Backoff(cap=settings.collector_backoff_max)
    while True:
        try:
            await _connection(runtime, config, mapping, host, port, backoff)
            error = "adapter closed the connection"
        except (OSError, TimeoutError, AdapterSilent, AdapterGarbage, UnicodeDecodeError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise_if_cancelled()
        log.warning("source %s (%s): %s", config.id, config.address, error)
        await set_status(runtime, config.id, connected=False, error=error)
        await asyncio.sleep(backoff.next())


async def _connection(runtime: ServiceRuntime, config: SourceConfig, mapping: Mapping, host: str, port: int,
                      backoff: Backoff) -> None:
    settings = runtime.settings
    async with asyncio.timeout(settings.collector_timeout):
        reader, writer = await asyncio.open_connection(host, port, limit=MAX_LINE)
    session = ShdrSession(mapping)
    silence = 2 * settings.collector_heartbeat
    stream = f"shdr:{config.id}"
    await set_status(runtime, config.id, connected=True)
    pinger = asyncio.create_task(_ping(writer, settings.collector_heartbeat))
    buffer = b""
    try:
        while True:
            try:
                async with asyncio.timeout(silence):
                    chunk = await reader.read(256 * 1024)
            except TimeoutError as exc:
                raise AdapterSilent(f"no data for {silence:g} s") from exc
            if not chunk:
                return
            backoff.reset()
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            if len(buffer) > MAX_LINE:
                raise AdapterGarbage(f"a line longer than {MAX_LINE} bytes")
            bad_before = session.bad_total
            observations, ping, commands = session.lines([c.decode("utf-8", errors="replace") for c in complete])
            if ping:
                writer.write(f"* PONG {int(settings.collector_heartbeat * 1000)}\n".encode())
                async with asyncio.timeout(settings.collector_timeout):
                    await writer.drain()
            for command in commands:
                if command.upper().startswith("PONG"):
                    with contextlib.suppress(ValueError, IndexError):
                        silence = 2 * int(command.split()[1]) / 1000
            if session.bad_total > bad_before:
                await set_status(runtime, config.id, error=f"{session.bad_total} line(s) not SHDR, last: "
                                                           f"{session.last_bad}")
            if session.bad_in_a_row >= GARBAGE_LIMIT:
                raise AdapterGarbage(f"{session.bad_in_a_row} lines in a row are not SHDR")
            if observations:
                await commit_until_confirmed(runtime, config, stream=stream, mapping=mapping,
                                             observations=observations, position=session.last_stamp)
    finally:
        pinger.cancel()
        # asyncio.wait, not `await pinger`: a cancellation of this task itself must not be swallowed here.
        await asyncio.wait([pinger], timeout=1)
        writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1):
                await writer.wait_closed()


async def _ping(writer: asyncio.StreamWriter, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        writer.write(b"* PING\n")
        async with asyncio.timeout(interval):
            await writer.drain()
