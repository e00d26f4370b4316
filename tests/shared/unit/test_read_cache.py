"""The read cache's parts without a database: bodies by revision, ETag matching, the request keys
of the process reads, and the revision reader's promise (an answer from a query begun after the
caller asked)."""

from __future__ import annotations

import asyncio
import gzip

import pytest

from services.process.api.processes import read_key
from shared.read_cache import ReadCache, _answer, _matches, _wants_gzip
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
    ('"e.1-gzip"', True), ('W/"e.1-gzip"', True), ('"e.2-gzip"', False), ("*", False), ("e.1", False),
])
def test_if_none_match(header, matches):
    assert (_matches(header, "e.1") is not None) is matches


@pytest.mark.parametrize(("header", "wanted"), [
    (None, False), ("", False), ("gzip", True), ("gzip, deflate, br", True), ("br;q=1.0, GZIP;q=0.5", True),
    ("gzip;q=0", False), ("gzip; q=0.000", False), ("deflate", False), ("identity", False),
])
def test_accept_encoding(header, wanted):
    assert _wants_gzip(header) is wanted


def test_a_large_body_goes_gzipped_to_who_takes_it_and_both_forms_revalidate():
    cache = ReadCache(max_bytes=1 << 20)
    body = b'{"x": "' + b"y" * 5000 + b'"}'
    status, headers, sent = _answer(cache, "k", "e.1", {"accept-encoding": "gzip"}, body)
    assert status == 200 and gzip.decompress(sent) == body and len(sent) < 200
    assert dict(headers)[b"content-encoding"] == b"gzip" and dict(headers)[b"etag"] == b'"e.1-gzip"'
    status, headers, sent = _answer(cache, "k", "e.1", {}, None)  # from the cache, as it is
    assert status == 200 and sent == body and b"content-encoding" not in dict(headers)
    assert dict(headers)[b"etag"] == b'"e.1"' and dict(headers)[b"vary"] == b"accept-encoding"
    for tag in ('"e.1"', '"e.1-gzip"'):
        status, headers, _ = _answer(cache, "k", "e.1", {"if-none-match": tag, "accept-encoding": "gzip"}, None)
        assert status == 304 and dict(headers)[b"etag"] == tag.encode()  # the tag the client holds
    small = _answer(cache, "s", "e.1", {"accept-encoding": "gzip"}, b"{}")
    assert small is not None and small[2] == b"{}"  # not worth compressing
    assert _answer(cache, "k", "e.2", {}, None) is None  # another revision: built again


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
