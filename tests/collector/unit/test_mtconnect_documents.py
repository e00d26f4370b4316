"""Agent documents: probe -> mapping by type, current/sample -> observations in sequence, safety."""

from __future__ import annotations

import pytest

from services.collector.domain.derive import MachineView, derive
from services.collector.domain.mtconnect import DocumentError, default_mapping, parse_probe, parse_streams
from shared.events import PartCompleted, ProgramLoaded, ToolChanged
from tests.collector.fixtures import CURRENT_15, CURRENT_HCN, OKUMA_DEVICES, SAMPLE_UR5E, fixture

SMALL_STREAMS = b"""<?xml version="1.0"?>
<MTConnectStreams xmlns="urn:mtconnect.org:MTConnectStreams:1.3">
 <Header instanceId="7" firstSequence="1" lastSequence="5" nextSequence="6" bufferSize="100"/>
 <Streams><DeviceStream name="M1" uuid="m1"><ComponentStream component="Controller" name="c">
  <Events>
   <PartCount dataItemId="pc" name="PartCountAct" sequence="4" timestamp="2024-01-01T00:00:04Z">3</PartCount>
   <Program dataItemId="p" name="program" sequence="2" timestamp="2024-01-01T00:00:02Z">O100</Program>
   <PartCount dataItemId="pc" name="PartCountAct" sequence="3" timestamp="2024-01-01T00:00:03Z">2</PartCount>
   <Alarm dataItemId="a" name="alarm" sequence="5" timestamp="2024-01-01T00:00:05Z" code="OTHER"
          nativeCode="E1" state="ACTIVE">door</Alarm>
  </Events>
  <Condition><Fault dataItemId="s" sequence="1" timestamp="2024-01-01T00:00:01Z" nativeCode="9">hot</Fault></Condition>
 </ComponentStream></DeviceStream></Streams>
</MTConnectStreams>"""


def test_small_document_in_sequence_order() -> None:
    streams = parse_streams(SMALL_STREAMS)
    assert (streams.instance_id, streams.next_sequence) == (7, 6)
    assert [o.position for o in streams.observations] == ["1", "2", "3", "4", "5"]
    assert streams.observations[0].condition is not None and streams.observations[0].condition.message == "hot"
    assert streams.observations[4].condition is not None and streams.observations[4].condition.level == "FAULT"
    got = [o.item for o in derive(MachineView(), default_mapping([]).model_copy(update={"auto": True}), 1,
                                  streams.observations)]
    assert [(p.increment, p.part_count, p.program) for p in got if isinstance(p, PartCompleted)] == [(1, 3, "O100")]


def test_unsafe_or_oversized_documents_are_refused() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><MTConnectStreams>&a;</MTConnectStreams>'
    with pytest.raises(DocumentError):
        parse_streams(bomb)
    external = b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "http://example.com/x.dtd"><MTConnectStreams/>'
    with pytest.raises(DocumentError):
        parse_streams(external)
    with pytest.raises(DocumentError, match="exceeds"):
        parse_streams(SMALL_STREAMS, max_bytes=100)
    with pytest.raises(DocumentError):
        parse_streams(b"not xml at all")


def test_agent_error_document() -> None:
    error = b"""<MTConnectError xmlns="urn:mtconnect.org:MTConnectError:1.3"><Header instanceId="1"/>
      <Errors><Error errorCode="OUT_OF_RANGE">'from' must be greater than 5</Error></Errors></MTConnectError>"""
    with pytest.raises(DocumentError) as caught:
        parse_streams(error)
    assert caught.value.codes == ("OUT_OF_RANGE",)


def test_probe_mapping_by_type() -> None:
    items = parse_probe(fixture(OKUMA_DEVICES).read_bytes())
    okuma = default_mapping(items, "OKUMA")
    assert (okuma.part_count, okuma.program, okuma.execution, okuma.tool) == (
        ["ppartcount"], ["pprogram"], ["pexecution"], ["p1CurrentTool"])
    assert "system" in (okuma.conditions or [])
    assert default_mapping(items, "Mazak").part_count == ["PartCountAct"]


def test_current_mazak_15() -> None:
    streams = parse_streams(fixture(CURRENT_15).read_bytes())
    assert (streams.instance_id, streams.first_sequence, streams.next_sequence) == (1666332811, 1, 2869)
    assert len(streams.observations) == 110
    assert sum(o.value is None and o.condition is None for o in streams.observations) + sum(
        o.condition is not None and o.condition.level == "UNAVAILABLE" for o in streams.observations) == 47
    got = [o.item for o in derive(MachineView(), default_mapping([]).model_copy(update={"auto": True}), 1,
                                  streams.observations)]
    assert [p.program for p in got if isinstance(p, ProgramLoaded)] == ["480"]
    assert [t.tool for t in got if isinstance(t, ToolChanged)] == ["4"]


def test_current_hcn001_v20_and_sample_volume() -> None:
    hcn = parse_streams(fixture(CURRENT_HCN).read_bytes())
    assert hcn.next_sequence == 2703542
    counts = {o.value for o in hcn.observations if o.key == "PartCount" or "part" in o.key.lower()}
    assert "125" in counts
    sample = parse_streams(fixture(SAMPLE_UR5E).read_bytes())
    assert len(sample.observations) == 9435
    positions = [int(o.position) for o in sample.observations]
    assert positions == sorted(positions) and (positions[0], positions[-1]) == (643087, 652524)
