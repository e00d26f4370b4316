"""A service that starts before its broker keeps trying, with backoff, for a bounded time."""

from __future__ import annotations

import socket
import time

import pytest

from shared.transport.rabbitmq import RabbitMQTransport


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens here once the socket is closed


async def test_start_retries_until_the_startup_timeout_then_raises(caplog: pytest.LogCaptureFixture) -> None:
    transport = RabbitMQTransport(f"amqp://guest:guest@127.0.0.1:{closed_port()}/", startup_timeout=1.6,
                                  connect_timeout=1)
    started = time.monotonic()
    with pytest.raises(Exception, match=r"Connect call failed|refused"):
        await transport.start()
    assert 1.0 <= time.monotonic() - started < 6
    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert [r.getMessage().rsplit(" ", 1)[-1] for r in retries][:2] == ["0.5s", "1.0s"]
    assert not await transport.ready()
