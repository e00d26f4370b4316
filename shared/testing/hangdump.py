"""Say where a hung test waits, before pytest-timeout fails it.

pytest-timeout shows only the main thread, which in an asyncio test is always the selector's
poll. Shortly before the timeout this prints every running event loop's tasks with their
stacks and the test database's sessions (state, wait, blocking pids, last statement) to stderr,
which pytest shows under the failed test's captured output.
"""

from __future__ import annotations

import asyncio
import gc
import io
import sys
import threading
from collections.abc import Iterator

import pytest

from shared.testing import infra

MARGIN = 20.0  # seconds before the timeout


def _running_loops() -> list[asyncio.AbstractEventLoop]:
    return [o for o in gc.get_objects() if isinstance(o, asyncio.BaseEventLoop) and o.is_running()]


def _tasks_report() -> str:
    out = io.StringIO()
    for loop in _running_loops():
        for attempt in range(3):  # the set may change under us: the loop thread is live
            try:
                tasks = list(asyncio.all_tasks(loop))
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        out.write(f"--- {len(tasks)} task(s) on {loop!r}\n")
        for task in tasks:
            out.write(f"{task!r}\n")
            task.print_stack(limit=12, file=out)
    return out.getvalue()


async def _sessions(url: str) -> str:
    import asyncpg
    from sqlalchemy.engine import make_url

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        rows = await conn.fetch(
            "SELECT pid, application_name, state, wait_event_type, wait_event, pg_blocking_pids(pid) AS blocked_by,"
            " now() - xact_start AS in_transaction, left(query, 200) AS query FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
            timeout=5,
        )
    finally:
        await conn.close()
    return "".join(f"{dict(r)}\n" for r in rows) or "(none)\n"


def _database_report() -> str:
    url, _ = infra.found("database")
    if not url:
        return "(no test database in use)\n"
    try:
        return asyncio.run(_sessions(url))
    except Exception as exc:  # a diagnostic must not fail the run
        return f"(could not read pg_stat_activity: {exc!r})\n"


def _dump(nodeid: str, after: float) -> None:
    try:
        report = _tasks_report()
    except Exception as exc:
        report = f"(could not list tasks: {exc!r})\n"
    sys.stderr.write(f"\n=== hang dump: {nodeid} still running after {after:.0f} s ===\n{report}"
                     f"--- database sessions\n{_database_report()}=== end of hang dump ===\n")
    sys.stderr.flush()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    try:
        timeout = float(item.config.getini("timeout") or 0)
    except (ValueError, TypeError):
        timeout = 0.0
    marker = item.get_closest_marker("timeout")
    if marker and marker.args:
        timeout = float(marker.args[0])
    if timeout <= 0:
        yield
        return
    after = max(timeout - MARGIN, timeout / 2)
    timer = threading.Timer(after, _dump, (item.nodeid, after))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
