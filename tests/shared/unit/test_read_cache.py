"""The read cache's parts without a database: bodies by revision, ETag matching, the request keys
of the process reads, and the revision reader's promise (an answer from a query begun after the
caller asked)."""

from __future__ import annotations

import asyncio

import pytest

from services.process.api.processes import read_key
from shared.read_cache import ReadCache, _matches
from shared.read_revision import RevisionReader


def test_bodies_live_for_one_revision_and_within_the_byte_budget():
    cache = ReadCache(max_bytes=10)
    cache.put("a", "e.1", b"aaaa")
    cache.put("b", "e.1", b"bbbb")
    assert cache.get("a", "e.1") == b"aaaa" and cache.get("a", "e.2") is None
    cache.put("c", "e.1", b"cccc")  # over 10 bytes: the least recently used ("b") goes
    assert cache.get("b", "e.1") is None and cache.get("a", "e.1") == b"aaaa" and cache.get("c", "e.1") == b"cccc"
    cache.put("d", "e.1", b"x" * 11)  # larger than the budget: not kept
    assert cache.get("d", "e.1") is None
    cache.put("a", "e.2", b"new")  # a newer revision drops the rest
    assert len(cache) == 1 and cache.get("c", "e.2") is None and cache.get("a", "e.2") == b"new"


@pytest.mark.parametrize(("header", "matches"), [
    (None, False), ("", False), ('"e.1"', True), ('W/"e.1"', True), ('"x", "e.1"', True), ('"e.2"', False),
    ("*", False), ("e.1", False),
])
def test_if_none_match(header, matches):
    assert _matches(header, '"e.1"') is matches


@pytest.mark.parametrize(("path", "query", "key"), [
    ("/api/processes/", b"", ("/api/processes/", False, False)),
    ("/api/processes/", b"programs=1&tools=0", ("/api/processes/", True, False)),
    ("/api/processes/", b"efficiency=0&tools=1", ("/api/processes/", False, True)),
    ("/api/processes/12", b"programs=1&tools=1", ("/api/processes/{process_id}", 12, True, True)),
    ("/api/processes/", b"efficiency=1", None),  # depends on the clock
    ("/api/processes/", b"programs=2", None),  # the route answers 400
    ("/api/processes/", b"programs=1&programs=0", None),
    ("/api/processes/", b"other=1", None),
    ("/api/processes/99999999999", b"", None),  # out of range: the route's answer
    ("/api/processes/-1", b"", None),
    ("/api/processes/variables", b"", None),
    ("/api/processes/1/tools", b"", None),
    ("/api/processes", b"", None),
])
def test_process_read_keys(path, query, key):
    assert read_key(path, query) == key


async def test_each_caller_gets_a_query_begun_after_it_asked():
    reader = RevisionReader.__new__(RevisionReader)
    reader._next, reader._task, reader._conn = None, None, None
    started: list[int] = []
    release = asyncio.Event()

    async def query() -> str:
        started.append(len(started) + 1)
        number = len(started)
        await release.wait()
        release.clear()
        return f"e.{number}"

    reader._query = query  # type: ignore[method-assign]
    first = asyncio.create_task(reader.get())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert started == [1]
    later = [asyncio.create_task(reader.get()) for _ in range(3)]  # asked while query 1 runs
    await asyncio.sleep(0)
    release.set()
    assert await first == "e.1"
    await asyncio.sleep(0)
    assert started == [1, 2]  # one more query for all three
    release.set()
    assert await asyncio.gather(*later) == ["e.2"] * 3
    assert reader._task is not None
    await reader._task
    assert started == [1, 2]
