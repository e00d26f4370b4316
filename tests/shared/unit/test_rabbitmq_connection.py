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


class FakeStreamWriter:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.drained = self.closed = 0

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    async def drain(self) -> None:
        self.drained += 1

    def close(self) -> None:
        self.closed += 1

    def is_closing(self) -> bool:
        return self.closed > 0


async def test_frames_written_in_one_loop_pass_go_out_in_one_send_in_order() -> None:
    import asyncio

    from shared.transport.rabbitmq import _CoalescingWriter

    inner = FakeStreamWriter()
    writer = _CoalescingWriter(inner)  # type: ignore[arg-type]
    for n in range(5):
        writer.write(b"frame%d;" % n)
    assert inner.writes == []  # nothing sent until the pass ends
    await asyncio.sleep(0)
    assert inner.writes == [b"frame0;frame1;frame2;frame3;frame4;"]
    writer.write(b"next;")
    await asyncio.sleep(0)
    assert inner.writes[1:] == [b"next;"]  # a later pass sends again
    assert (writer.frames, writer.sends) == (6, 2)


async def test_drain_and_close_send_what_is_pending_first() -> None:
    from shared.transport.rabbitmq import _CoalescingWriter

    inner = FakeStreamWriter()
    writer = _CoalescingWriter(inner)  # type: ignore[arg-type]
    writer.write(b"a")
    writer.write(b"b")
    await writer.drain()
    assert (inner.writes, inner.drained) == ([b"ab"], 1)
    writer.write(b"c")
    writer.close()
    assert (inner.writes, inner.closed) == ([b"ab", b"c"], 1)
    assert writer.is_closing()  # the rest is the stream writer's own
