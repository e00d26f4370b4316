"""Several events in one broker message (decision 0011): how producers pack and consumers read."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from shared.events import (
    Envelope,
    MachineDeleted,
    PartCompleted,
    Payload,
    ToolChanged,
    envelopes_in,
    join_bodies,
    read_body,
)
from shared.transport.base import MAX_PACKED_BYTES, pack


def row(payload: Payload) -> tuple[str, str, bytes]:
    envelope = Envelope.wrap(payload, "collector")
    return envelope.type, str(envelope.id), envelope.to_bytes()


def part(n: int) -> PartCompleted:
    return PartCompleted(machine_id=1, timestamp=float(n), part_count=n)


def tools(message_body: bytes) -> list[str]:
    return [e.data.get("tool") or str(e.data.get("part_count")) for e in envelopes_in(message_body)]


class TestPack:
    def test_consecutive_events_of_a_type_share_a_message_in_order(self) -> None:
        rows = [row(part(1)), row(part(2)), row(ToolChanged(machine_id=1, timestamp=3, tool="T3")), row(part(4))]
        messages = pack(rows, per_message=100, producer="collector")
        assert [m.routing_key for m in messages] == [PartCompleted.type, ToolChanged.type, PartCompleted.type]
        assert [tools(m.body) for m in messages] == [["1", "2"], ["T3"], ["4"]]
        # A message's events are the rows' envelopes, byte for byte.
        assert json.loads(messages[0].body) == [json.loads(rows[0][2]), json.loads(rows[1][2])]

    def test_a_lone_event_stays_a_bare_envelope_and_keeps_its_id(self) -> None:
        rows = [row(part(1)), row(ToolChanged(machine_id=1, timestamp=2, tool="T2"))]
        messages = pack(rows, per_message=100, producer="collector")
        assert [m.body for m in messages] == [rows[0][2], rows[1][2]]
        assert [m.message_id for m in messages] == [rows[0][1], rows[1][1]]
        assert messages[0].headers == {"producer": "collector"}

    def test_a_packed_message_says_how_many_events_it_holds(self) -> None:
        rows = [row(part(n)) for n in range(3)]
        (message,) = pack(rows, per_message=100, producer="process")
        assert message.headers == {"producer": "process", "events": 3}
        assert message.message_id == f"{rows[0][1]}+2"

    def test_per_message_bounds_a_message(self) -> None:
        messages = pack([row(part(n)) for n in range(7)], per_message=3, producer="collector")
        assert [tools(m.body) for m in messages] == [["0", "1", "2"], ["3", "4", "5"], ["6"]]

    def test_one_per_message_sends_every_event_alone(self) -> None:
        rows = [row(part(n)) for n in range(3)]
        assert [m.body for m in pack(rows, per_message=1, producer="collector")] == [r[2] for r in rows]

    def test_size_bounds_a_message(self) -> None:
        big = [row(ToolChanged(machine_id=1, timestamp=n, tool="T" * (MAX_PACKED_BYTES // 3))) for n in range(5)]
        messages = pack(big, per_message=100, producer="collector")
        assert [len(envelopes_in(m.body)) for m in messages] == [2, 2, 1]
        assert all(len(m.body) <= MAX_PACKED_BYTES for m in messages)

    def test_nothing_packs_to_no_message(self) -> None:
        assert pack([], per_message=100, producer="collector") == []


class TestReadBody:
    def test_a_bare_envelope_and_a_packed_array_read_alike(self) -> None:
        envelopes = [Envelope.wrap(part(n), "collector") for n in range(3)]
        assert read_body(envelopes[0].to_bytes()) == envelopes[:1]
        assert read_body(join_bodies([e.to_bytes() for e in envelopes])) == envelopes
        assert read_body(b"  \n" + join_bodies([e.to_bytes() for e in envelopes])) == envelopes

    def test_a_bad_element_stands_as_its_error_in_its_place(self) -> None:
        good = [Envelope.wrap(part(n), "collector") for n in range(2)]
        body = b"[" + good[0].to_bytes() + b',{"type": "x"},' + good[1].to_bytes() + b"]"
        found = read_body(body)
        assert found[0] == good[0] and found[2] == good[1]
        assert isinstance(found[1], ValidationError)
        with pytest.raises(ValidationError):
            envelopes_in(body)

    @pytest.mark.parametrize("body", [b"not json", b"[not json", b'{"type": "x"}', b"", b"42"])
    def test_a_body_of_neither_form_raises(self, body: bytes) -> None:
        with pytest.raises(ValueError):
            read_body(body)

    def test_an_empty_array_holds_no_event(self) -> None:
        assert read_body(b"[]") == []

    def test_a_message_of_another_type_reads_too(self) -> None:
        envelope = Envelope.wrap(MachineDeleted(machine_id=3), "process")
        assert envelopes_in(join_bodies([envelope.to_bytes()] * 2)) == [envelope, envelope]
