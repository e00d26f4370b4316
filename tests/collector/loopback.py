"""Loopback servers that replay recordings: an SHDR adapter (TCP) and an MTConnect agent (HTTP)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


class ShdrServer:
    """Sends `lines` to every client (in chunks, `pause` between them), answers `* PING`, keeps the socket open."""

    def __init__(self, lines: list[str], *, chunk: int = 200, pause: float = 0.0,
                 on_chunk: Callable[[int], object] | None = None, answer_pings: bool = True) -> None:
        self.lines, self.chunk, self.pause, self.on_chunk = lines, chunk, pause, on_chunk
        self.answer_pings = answer_pings
        self.connections = 0
        self.open = 0  # connections not yet closed by the client
        self.received: list[bytes] = []  # every line the client sent
        self.pings = 0
        self.sent = 0
        self._server: asyncio.Server | None = None
        self._clients: list[asyncio.StreamWriter] = []

    @classmethod
    def from_file(cls, path: Path, **kwargs: object) -> ShdrServer:
        return cls(path.read_text(encoding="utf-8").splitlines(), **kwargs)  # type: ignore[arg-type]

    async def __aenter__(self) -> ShdrServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._clients:
            writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await self._server.wait_closed()

    @property
    def address(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self._clients.append(writer)
        answering = asyncio.create_task(self._answer(reader, writer))
        try:
            for start in range(0, len(self.lines), self.chunk):
                part = self.lines[start:start + self.chunk]
                writer.write(("\n".join(part) + "\n").encode())
                await writer.drain()
                self.sent = start + len(part)
                if self.on_chunk:
                    self.on_chunk(self.sent)
                if self.pause:
                    await asyncio.sleep(self.pause)
            await answering  # stay connected until the client goes
        except (ConnectionError, OSError):
            pass
        finally:
            answering.cancel()
            self.open -= 1
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            self.received.append(line.strip())
            if line.strip() == b"* PING":
                self.pings += 1
                if not self.answer_pings:
                    continue
                writer.write(b"* PONG 10000\n")
                await writer.drain()


@dataclass
class AgentServer:
    """A minimal MTConnect agent: fixed /probe and /current documents, /sample from `samples`.

    `samples` maps a `from` sequence to the document answered; any other `from` gets `empty(from)`,
    or an OUT_OF_RANGE error when it is below `first_sequence`.
    """

    probe: bytes
    current: bytes
    samples: dict[int, bytes] = field(default_factory=dict)
    empty: Callable[[int], bytes] | None = None
    first_sequence: int = 1
    requests: list[str] = field(default_factory=list)
    _server: asyncio.Server | None = None

    async def __aenter__(self) -> AgentServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = (await reader.readline()).decode()
            while (await reader.readline()).strip():
                pass
            target = urlsplit(request.split(" ")[1])
            self.requests.append(target.path + ("?" + target.query if target.query else ""))
            body, status = self._answer(target.path.rsplit("/", 1)[-1], parse_qs(target.query))
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {len(body)}\r\n"
                         f"Connection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except (ConnectionError, OSError, IndexError):
            pass
        finally:
            writer.close()

    def _answer(self, what: str, query: dict[str, list[str]]) -> tuple[bytes, str]:
        if what == "probe":
            return self.probe, "200 OK"
        if what == "current":
            return self.current, "200 OK"
        if what == "sample":
            start = int(query["from"][0])
            if start in self.samples:
                return self.samples[start], "200 OK"
            if start < self.first_sequence:
                return (b'<MTConnectError xmlns="urn:mtconnect.org:MTConnectError:1.3"><Header instanceId="1"/>'
                        b'<Errors><Error errorCode="OUT_OF_RANGE">from is too small</Error></Errors>'
                        b'</MTConnectError>'), "400 Bad Request"
            assert self.empty is not None
            return self.empty(start), "200 OK"
        return b"<nothing/>", "404 Not Found"


def streams_document(instance: int, first: int, next_sequence: int, device: str, events: list[str]) -> bytes:
    """An MTConnectStreams document with `events` (XML elements) in one component of `device`."""
    events_xml = "\n".join(e for e in events if "<Fault" not in e and "<Normal" not in e)
    conditions = "\n".join(e for e in events if "<Fault" in e or "<Normal" in e)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<MTConnectStreams xmlns="urn:mtconnect.org:MTConnectStreams:1.3">
  <Header creationTime="2024-01-01T00:00:00Z" sender="test" instanceId="{instance}" version="1.3.0"
          bufferSize="131072" nextSequence="{next_sequence}" firstSequence="{first}"
          lastSequence="{next_sequence - 1}"/>
  <Streams><DeviceStream name="{device}" uuid="{device}-uuid"><ComponentStream component="Controller" name="ctrl">
    <Events>{events_xml}</Events><Condition>{conditions}</Condition>
  </ComponentStream></DeviceStream></Streams>
</MTConnectStreams>""".encode()
