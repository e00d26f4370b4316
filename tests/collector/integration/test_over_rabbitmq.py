"""The collector over the real RabbitMQ: payloads arrive; a broker restart mid-replay loses nothing;
a collector restart mid-stream duplicates nothing that consumers' inboxes would not drop."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import pytest

from services.collector.domain.derive import MachineView, derive
from services.collector.domain.mapping import Mapping
from services.collector.domain.shdr import ShdrError, ShdrParser
from shared.events import Envelope, envelopes_in
from shared.testing.plugin import RabbitMQFactory, unique_name, wait_until
from shared.transport.base import InboundMessage
from tests.collector.conftest import collector_settings, serve
from tests.collector.fixtures import AGIE, fixture
from tests.collector.loopback import AgentServer, ShdrServer, streams_document
from tests.shared.integration.test_rabbitmq_resilience import local_broker, rabbitmqctl, until_port

pytestmark = pytest.mark.integration
assert local_broker  # fixture, imported for the broker restart test


class Received:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def __call__(self, message: InboundMessage) -> None:
        self.envelopes.extend(envelopes_in(message.body))
        await message.ack()

    def distinct(self) -> dict[str, Envelope]:
        return {str(e.id): e for e in self.envelopes}


def expected_from_recording(path: Path, machine_id: int) -> list[tuple[str, object]]:
    """What the recording should produce (alarm ids aside), derived without the collector's I/O."""
    parser, view, out = ShdrParser(), MachineView(), []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out += derive(view, Mapping(), machine_id, parser.feed(line).observations)
        except ShdrError:
            continue
    kinds = {"RaiseAlarm": "telemetry.alarm_raised", "ClearAlarm": "telemetry.alarm_cleared"}
    return [(kinds.get(type(o.item).__name__) or o.item.type, o.item.timestamp) for o in out]  # type: ignore[union-attr]


def summary(envelopes: list[Envelope]) -> list[tuple[str, object]]:
    return sorted((e.type, e.data["timestamp"]) for e in envelopes)


async def observer(factory: RabbitMQFactory, exchange: str) -> Received:
    transport = await factory(exchange=exchange, dead_exchange=f"{exchange}.dead")
    received = Received()
    await transport.consume(unique_name("observer"), ["telemetry.#"], received, prefetch=500)
    return received


async def test_replay_payloads_arrive(rabbitmq_transport_factory: RabbitMQFactory, tmp_path: Path) -> None:
    transport = await rabbitmq_transport_factory()
    received = await observer(rabbitmq_transport_factory, transport.exchange)
    settings = collector_settings(f"sqlite:///{tmp_path / 'c.db'}", "", tmp_path, queue_prefix=unique_name("c") + ".")
    async with ShdrServer.from_file(fixture(AGIE)) as adapter, serve(settings, transport) as harness:
        await harness.ok("PUT", "/api/collector/sources/", 201,
                         json={"machine_id": 11, "kind": "shdr", "address": adapter.address})
        expected = expected_from_recording(fixture(AGIE), 11)
        await wait_until(lambda: len(received.distinct()) >= len(expected), within=20)
    got = list(received.distinct().values())
    assert summary(got) == sorted(expected)
    raised = [e for e in got if e.type == "telemetry.alarm_raised"]
    assert {(e.data["native_code"], e.data["message"]) for e in raised} == {
        ("454A", "Limit switch Y+"), ("3AA", "Key non-functional")}
    assert all(e.producer == "collector" and e.data["machine_id"] == 11 for e in got)


async def test_broker_restart_mid_replay_loses_nothing(rabbitmq_transport_factory: RabbitMQFactory,
                                                       local_broker: tuple[str, int], tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    host, port = local_broker
    transport = await rabbitmq_transport_factory()
    received = await observer(rabbitmq_transport_factory, transport.exchange)
    settings = collector_settings(f"sqlite:///{tmp_path / 'c.db'}", "", tmp_path, queue_prefix=unique_name("c") + ".")
    expected = expected_from_recording(fixture(AGIE), 12)
    # Paced replay: ~650 lines in chunks of 40, so the outage falls in the middle of it.
    async with ShdrServer.from_file(fixture(AGIE), chunk=40, pause=0.15) as adapter, \
            serve(settings, transport) as harness:
        await harness.ok("PUT", "/api/collector/sources/", 201,
                         json={"machine_id": 12, "kind": "shdr", "address": adapter.address})
        await wait_until(lambda: adapter.sent >= 200, within=20)
        try:
            await rabbitmqctl("stop_app")
            await until_port(host, port, open_=False)
            await asyncio.sleep(1.0)  # the collector keeps reading, fails to publish, keeps its position
        finally:
            await rabbitmqctl("start_app")
            await until_port(host, port, open_=True)
        await wait_until(lambda: len(received.distinct()) >= len(expected), within=40)
    assert summary(list(received.distinct().values())) == sorted(expected)
    assert adapter.sent == len(adapter.lines)
    assert "publish not confirmed" in caplog.text, "the outage must have hit a publish"


def _counting_agent(total: int, page: int) -> AgentServer:
    """An agent whose part count equals the sequence number, 1..total, served `page` observations at a time."""
    def events(start: int, end: int) -> list[str]:
        return [f'<PartCount dataItemId="pc" name="PartCountAct" sequence="{n}" '
                f'timestamp="2024-01-01T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z">{n}</PartCount>'
                for n in range(start, end)]

    def sample(start: int) -> bytes:
        end = min(start + page, total + 1)
        return streams_document(5, 1, end, "M", events(start, end)).replace(
            f'lastSequence="{end - 1}"'.encode(), f'lastSequence="{total}"'.encode())
    probe = (b'<MTConnectDevices xmlns="urn:mtconnect.org:MTConnectDevices:1.3"><Devices><Device id="d" name="M">'
             b'<DataItems><DataItem id="pc" name="PartCountAct" type="PART_COUNT" category="EVENT"/></DataItems>'
             b'</Device></Devices></MTConnectDevices>')
    current = streams_document(5, 1, 1, "M", [])
    return AgentServer(probe=probe, current=current, empty=sample)


async def test_collector_restart_mid_stream_duplicates_nothing_new(
        rabbitmq_transport_factory: RabbitMQFactory, postgres_url: str, tmp_path: Path) -> None:
    from tests.process.conftest import _drop_schema

    total = 400
    first = await rabbitmq_transport_factory()
    received = await observer(rabbitmq_transport_factory, first.exchange)
    prefix = f"t{unique_name('')[-10:].replace('.', '')}_"
    settings = collector_settings(postgres_url, prefix, tmp_path, queue_prefix=unique_name("c") + ".",
                                  collector_sample_count=7)
    try:
        async with _counting_agent(total, 7) as agent:
            async with serve(settings, first) as harness:
                await harness.ok("PUT", "/api/collector/sources/", 201,
                                 json={"machine_id": 13, "kind": "mtconnect", "address": agent.url})
                await wait_until(lambda: len(received.distinct()) >= 100, within=20)
            stopped_at = len(received.distinct())
            assert stopped_at < total - 1, "the first collector must stop mid-stream"
            second = await rabbitmq_transport_factory(exchange=first.exchange, dead_exchange=first.dead_exchange)
            async with serve(settings, second):
                await wait_until(lambda: any(e.data["part_count"] == total for e in received.envelopes), within=30)
    finally:
        await _drop_schema(postgres_url, f"{prefix}collector")
    ids_by_part: dict[int, set[str]] = defaultdict(set)
    for envelope in received.envelopes:
        assert envelope.type == "telemetry.part_completed"
        ids_by_part[envelope.data["part_count"]].add(str(envelope.id))
    # Every part once (the count starts at 1, a baseline); a part seen twice came with the same id.
    assert sorted(ids_by_part) == list(range(2, total + 1))
    assert all(len(ids) == 1 for ids in ids_by_part.values())
