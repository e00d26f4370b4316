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
    assert time.monotonic() - started >= 1.0  # it kept trying until the startup timeout
    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert [r.getMessage().rsplit(" ", 1)[-1] for r in retries][:2] == ["0.5s", "1.0s"]
    assert len(retries) <= 3  # and then gave up: 0.5 + 1.0 s of backoff fit in 1.6 s, 2.0 more do not
    assert not await transport.ready()


async def test_reconnect_delay_grows_with_the_outage_and_resets() -> None:
    import asyncio

    from yarl import URL

    from shared.transport.rabbitmq import _BackoffConnection

    connection = _BackoffConnection(URL("amqp://guest:guest@127.0.0.1:1/"), reconnect_interval=1.0)
    now = asyncio.get_running_loop().time()
    assert connection.reconnect_interval == 1.0
    connection._lost_at = now - 0.2
    assert connection.reconnect_interval == 1.0  # never below the base
    connection._lost_at = now - 6
    assert 6 <= connection.reconnect_interval < 7  # as long as the outage so far: doubling attempts
    connection._lost_at = now - 600
    assert connection.reconnect_interval == _BackoffConnection.MAX_RECONNECT_INTERVAL
    connection._lost_at = None  # what _on_connected does
    assert connection.reconnect_interval == 1.0
