import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest_plugins = ["shared.testing.plugin", "shared.testing.hangdump"]


@pytest.fixture
async def webhook_receiver() -> AsyncIterator[tuple[str, list[Any]]]:
    """(url, received): a minimal HTTP server on 127.0.0.1 recording each JSON body it is sent."""
    received: list[Any] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        received.append(json.loads(await reader.readexactly(length)))
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}/hook", received


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Everything under */integration/ or */system/ needs real infrastructure.
    for item in items:
        path = item.path.as_posix()
        if "/integration/" in path or "/system/" in path:
            item.add_marker(pytest.mark.integration)
