"""shared.db.dispose: an engine's disposal does not leave a connection close waiting forever."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import create_async_engine

from shared.db import dispose


class _StuckConnection:
    async def _terminate_graceful_close(self) -> None:
        """What aiosqlite's close does when its first await is cancelled: wait again, for a
        future nobody will answer."""
        forever = asyncio.get_running_loop().create_future()
        try:
            await asyncio.sleep(3600)
        finally:
            await forever


async def test_dispose_ends_a_graceful_close_that_swallowed_its_cancel(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stuck = asyncio.create_task(_StuckConnection()._terminate_graceful_close())
    await asyncio.sleep(0)
    stuck.cancel()  # what the runtime's cancelled user did; the close swallows it and waits on
    await asyncio.sleep(0.05)
    assert not stuck.done()
    other = asyncio.create_task(asyncio.sleep(3600))  # anything else is left alone
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await dispose(engine)
    assert stuck.done() and stuck.cancelled()
    assert not other.done()
    other.cancel()
