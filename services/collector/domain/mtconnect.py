"""MTConnect agent documents (probe, current, sample) parsed safely into data items and observations.

Parsing goes through defusedxml: no DTDs, no entity expansion, no external access; the
caller bounds the document size before it gets here (`max_bytes`). Namespaces and
versions (1.0 to 2.x) are ignored: elements are matched by local name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from defusedxml import ElementTree

from services.collector.domain.mapping import Mapping
from services.collector.domain.observations import Condition, Observation, parse_timestamp, value_or_none

MAX_BYTES = 16 * 1024 * 1024
CONDITION_TAGS = {"Normal": "NORMAL", "Warning": "WARNING", "Fault": "FAULT", "Unavailable": "UNAVAILABLE"}


class DocumentError(ValueError):
    """Not a usable MTConnect document (too big, not XML, unsafe, or an MTConnectError)."""

    def __init__(self, message: str, codes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.codes = codes


@dataclass(frozen=True, slots=True)
class DataItem:
    id: str
    name: str | None
    type: str
    sub_type: str | None
    category: str
    device: str

    @property
    def key(self) -> str:
        return self.name or self.id


@dataclass
class Streams:
    instance_id: int
    first_sequence: int
    last_sequence: int
    next_sequence: int
    observations: list[Observation] = field(default_factory=list)  # in sequence order


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_xml(data: bytes, max_bytes: int = MAX_BYTES) -> Element:
    if len(data) > max_bytes:
        raise DocumentError(f"document of {len(data)} bytes exceeds the limit of {max_bytes}")
    try:
        root: Element = ElementTree.fromstring(data.removeprefix(b"\xef\xbb\xbf"), forbid_dtd=True)
    except Exception as exc:  # ParseError and defusedxml's DTD/entity refusals
        raise DocumentError(f"unusable XML: {exc}") from exc
    if _local(root.tag) == "MTConnectError":
        errors = [e for e in root.iter() if _local(e.tag) == "Error"]
        codes = tuple(e.get("errorCode", "") for e in errors)
        raise DocumentError("agent error: " + "; ".join(f"{e.get('errorCode')}: {e.text}" for e in errors), codes)
    return root


def parse_probe(data: bytes, max_bytes: int = MAX_BYTES) -> list[DataItem]:
    """Every DataItem of every Device (a bare `<Device>` fragment is accepted too)."""
    root = parse_xml(data, max_bytes)
    devices = [root] if _local(root.tag) == "Device" else [e for e in root.iter() if _local(e.tag) == "Device"]
    items: list[DataItem] = []
    for device in devices:
        name = device.get("name") or device.get("uuid") or ""
        for element in device.iter():
            if _local(element.tag) == "DataItem" and element.get("id"):
                items.append(DataItem(element.get("id", ""), element.get("name"), element.get("type", ""),
                                      element.get("subType"), element.get("category", ""), name))
    return items


def _first(items: list[DataItem], *types: str, avoid_sub_types: tuple[str, ...] = ()) -> list[str]:
    for type_ in types:
        found = [i for i in items if i.type == type_ and (i.sub_type or "").upper() not in avoid_sub_types]
        if found:
            # Prefer the whole count / the main program over per-path or partial variants.
            found.sort(key=lambda i: (i.sub_type not in (None, "ALL", "MAIN"), items.index(i)))
            return [found[0].key]
    return []


def default_mapping(items: list[DataItem], device: str | None = None) -> Mapping:
    """The mapping an agent's probe implies for one device (the first one when none is named)."""
    if device is None and items:
        device = items[0].device
    mine = [i for i in items if i.device == device]
    return Mapping(
        part_count=_first(mine, "PART_COUNT", avoid_sub_types=("TARGET", "REMAINING", "BAD", "FAILED", "REJECT")),
        program=_first(mine, "PROGRAM", avoid_sub_types=("X:SUB", "SCHEDULE", "INITIAL")),
        execution=_first(mine, "EXECUTION"),
        tool=_first(mine, "TOOL_NUMBER", "TOOL_ID", "TOOL_ASSET_ID"),
        availability=_first(mine, "AVAILABILITY"),
        conditions=[i.key for i in mine if i.category == "CONDITION"] + [i.key for i in mine if i.type == "ALARM"],
        messages=[i.key for i in mine if i.type == "MESSAGE"],
        alarms=[i.key for i in mine if i.type == "ALARM"],
        auto=False,
    )


def _int(element: Element, name: str) -> int:
    try:
        return int(element.get(name, "0"))
    except ValueError as exc:
        raise DocumentError(f"header attribute {name} is not an integer") from exc


def parse_streams(data: bytes, device: str | None = None, max_bytes: int = MAX_BYTES) -> Streams:
    """A /current or /sample document: its header and the observations (of `device`, or all)."""
    root = parse_xml(data, max_bytes)
    if _local(root.tag) != "MTConnectStreams":
        raise DocumentError(f"expected MTConnectStreams, got {_local(root.tag)}")
    header = next((e for e in root if _local(e.tag) == "Header"), None)
    if header is None:
        raise DocumentError("MTConnectStreams without a Header")
    streams = Streams(_int(header, "instanceId"), _int(header, "firstSequence"), _int(header, "lastSequence"),
                      _int(header, "nextSequence"))
    found: list[tuple[int, Observation]] = []
    for stream in root.iter():
        if _local(stream.tag) != "DeviceStream":
            continue
        if device is not None and device not in (stream.get("name"), stream.get("uuid")):
            continue
        for group in stream.iter():
            kind = _local(group.tag)
            if kind not in ("Samples", "Events", "Condition"):
                continue
            for element in group:
                observation = _observation(element, kind)
                if observation is not None:
                    found.append((int(observation.position), observation))
    # Agents group observations by component; derivation needs them in sequence order.
    found.sort(key=lambda pair: pair[0])
    streams.observations = [o for _, o in found]
    return streams


def _observation(element: Element, kind: str) -> Observation | None:
    sequence, stamp = element.get("sequence"), element.get("timestamp")
    if sequence is None or stamp is None:
        return None
    try:
        timestamp = parse_timestamp(stamp)
        int(sequence)
    except ValueError:
        return None
    key = element.get("name") or element.get("dataItemId", "")
    tag = _local(element.tag)
    text = (element.text or "").strip()
    if kind == "Condition":
        level = CONDITION_TAGS.get(tag)
        if level is None:
            return None
        return Observation(timestamp, key, condition=Condition(level, element.get("nativeCode", ""),
                           element.get("nativeSeverity", ""), element.get("qualifier", ""), text), position=sequence)
    if tag == "Alarm":  # legacy (MTConnect 1.0/1.1) alarm event
        active = (element.get("state") or "").upper() == "ACTIVE" and text.upper() != "UNAVAILABLE"
        return Observation(timestamp, key, condition=Condition(
            "FAULT" if active else "NORMAL", element.get("nativeCode") or element.get("code", ""),
            element.get("severity", ""), "", text), position=sequence)
    if len(element):  # data sets, tables, time series: not forwarded
        return None
    return Observation(timestamp, key, value_or_none(text), position=sequence)
