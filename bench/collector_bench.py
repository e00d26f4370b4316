"""Benchmark of the collector: observations parsed per second (SHDR, agent XML), derivation, and
events published per second to RabbitMQ with publisher confirms.

Run with `.venv/bin/python bench/collector_bench.py` (reads ../shared/fixtures/mtconnect; the
RabbitMQ part needs TAKTLINE_TEST_AMQP_URL or a broker on 127.0.0.1:5672 and is skipped without).
Not a test: it prints the figures.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.collector.domain.derive import MachineView, derive
from services.collector.domain.mapping import Mapping
from services.collector.domain.mtconnect import parse_streams
from services.collector.domain.shdr import ShdrError, ShdrParser
from shared.events import Envelope, PartCompleted
from shared.transport.base import OutboundMessage

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "mtconnect"
SHDR = FIXTURES / "agpl-3.0" / "mtconnectR_nist_testbed_data_truncated.shdr.log"  # 14,838 records, 798 kB
SHDR_OKUMA = FIXTURES / "shdr" / "cppagent_demo_okuma.shdr.txt"  # 10,770 lines, wide snapshot lines
XML = FIXTURES / "streams" / "nist_dtl_ur5e_sample_cppagent2.0.xml"  # 9,435 observations, 1.9 MB


def rate(label: str, count: int, seconds: float) -> None:
    print(f"{label:<48} {count:>9,} in {seconds:6.3f} s = {count / seconds:>12,.0f}/s")


def bench_shdr(path: Path, rounds: int = 3) -> list:
    lines = path.read_text(encoding="utf-8").splitlines()
    best, observations = float("inf"), []
    for _ in range(rounds):
        parser, found = ShdrParser(), []
        started = time.perf_counter()
        for n, line in enumerate(lines):
            try:
                found += parser.feed(line, str(n)).observations
            except ShdrError:
                pass
        best, observations = min(best, time.perf_counter() - started), found
    rate(f"SHDR parsed ({path.name[:28]})", len(observations), best)
    return observations


def bench_xml(rounds: int = 3) -> None:
    data = XML.read_bytes()
    best, count = float("inf"), 0
    for _ in range(rounds):
        started = time.perf_counter()
        count = len(parse_streams(data).observations)
        best = min(best, time.perf_counter() - started)
    rate("agent XML parsed (UR5e /sample, defusedxml)", count, best)


def bench_derive(observations: list) -> None:
    started = time.perf_counter()
    outputs = derive(MachineView(), Mapping(), 1, observations)
    rate(f"observations derived ({len(outputs)} events)", len(observations), time.perf_counter() - started)


async def bench_publish(total: int = 20_000, batch: int = 500) -> None:
    from shared.testing.infra import find_amqp_url
    from shared.testing.plugin import _remove_topology
    from shared.transport.rabbitmq import RabbitMQTransport

    url, reason = find_amqp_url()
    if url is None:
        print(f"RabbitMQ publish: skipped ({reason})")
        return
    name = f"taktline.bench.{uuid.uuid4().hex[:8]}"
    transport = RabbitMQTransport(url, exchange=name, dead_exchange=f"{name}.dead")
    await transport.start()
    try:
        queue = f"{name}.sink"  # a real quorum queue, so confirms include its replication and disk write
        await transport.declare(queue, ["telemetry.#"])
        messages = [OutboundMessage.from_envelope(Envelope.wrap(PartCompleted(
            machine_id=1, timestamp=1.7e9 + n, part_count=n, program="O1000"), "collector")) for n in range(total)]
        started = time.perf_counter()
        for start in range(0, total, batch):
            await transport.publish(messages[start:start + batch])
        rate(f"events published, confirmed (batches of {batch})", total, time.perf_counter() - started)
    finally:
        await _remove_topology(transport, [f"{name}.sink", f"{name}.sink.dead"])


async def bench_pipeline(total: int = 10_000, batch: int = 500) -> None:
    """The live-source path end to end: derive, store (SQLite), publish with confirms, save the position."""
    import tempfile

    from services.collector.app import spec
    from services.collector.domain.observations import Observation
    from services.collector.models import Source
    from services.collector.usecases.publishing import commit_batch
    from shared.runtime import ServiceRuntime
    from shared.settings import Settings
    from shared.testing.infra import find_amqp_url
    from shared.testing.plugin import _remove_topology
    from shared.transport.rabbitmq import RabbitMQTransport

    url, _ = find_amqp_url()
    if url is None:
        return
    name = f"taktline.bench.{uuid.uuid4().hex[:8]}"
    transport = RabbitMQTransport(url, exchange=name, dead_exchange=f"{name}.dead")
    await transport.start()
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(database_url=f"sqlite:///{folder}/c.db", data_dir=Path(folder),
                            _env_file=None)  # type: ignore[call-arg]
        runtime = ServiceRuntime(spec(), settings, transport)
        try:
            await runtime.migrate()
            await transport.declare(f"{name}.sink", ["telemetry.#"])
            async with runtime.uow() as uow:
                uow.session.add(Source(id=1, machine_id=1, kind="shdr", address="127.0.0.1:7878", mapping={}))
                await uow.commit()
            # Every observation a new part count: one event per observation, the worst case.
            observations = [Observation(1.7e9 + n, "PartCountAct", str(n), position=str(n)) for n in range(total + 1)]
            started, published = time.perf_counter(), 0
            for start in range(0, len(observations), batch):
                published += await commit_batch(runtime, 1, stream="bench", mapping=Mapping(),
                                                observations=observations[start:start + batch], position=str(start))
            rate(f"collector pipeline: events (SQLite, batches of {batch})", published, time.perf_counter() - started)
        finally:
            await runtime.engine.dispose()
            await _remove_topology(transport, [f"{name}.sink", f"{name}.sink.dead"])


def main() -> None:
    if not FIXTURES.is_dir():
        sys.exit(f"no fixtures at {FIXTURES}")
    observations = bench_shdr(SHDR)
    bench_shdr(SHDR_OKUMA)
    bench_xml()
    bench_derive(observations)
    if os.environ.get("BENCH_NO_RABBITMQ") != "1":
        asyncio.run(bench_publish())
        asyncio.run(bench_pipeline())


if __name__ == "__main__":
    main()
