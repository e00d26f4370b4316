"""The one contract file: the envelope and every event payload (docs/events.md lists them).

Routing key == event type == `<domain>.<name>`. A breaking change to a payload is a new
`version`; consumers validate the payload against the class registered for its type and
dead-letter what does not parse.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError


class Payload(BaseModel):
    """Base of every event payload."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    type: ClassVar[str]
    version: ClassVar[int] = 1


class Envelope(BaseModel):
    """What travels on the wire: metadata around one payload."""

    model_config = ConfigDict(extra="ignore")
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str
    version: int = 1
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    producer: str
    data: dict[str, Any]

    @classmethod
    def wrap(
        cls,
        payload: Payload,
        producer: str,
        *,
        id: uuid.UUID | None = None,
        occurred_at: datetime | None = None,
    ) -> Envelope:
        return cls.wrap_data(type(payload), payload.model_dump(mode="json"), producer, id=id,
                             occurred_at=occurred_at)

    @classmethod
    def wrap_data(
        cls,
        payload_type: type[Payload],
        data: dict[str, Any],
        producer: str,
        *,
        id: uuid.UUID | None = None,
        occurred_at: datetime | None = None,
    ) -> Envelope:
        """An envelope around `data`, the JSON form of a `payload_type` (as `model_dump(mode="json")`
        gives it): for a hot path that has the values at hand, without building the model."""
        # Built without validation: the payload is validated already, and every event a service
        # emits passes here (a consumer batch's worth at a time).
        return cls.model_construct(
            id=id or uuid.uuid4(),
            type=payload_type.type,
            version=payload_type.version,
            occurred_at=occurred_at or datetime.now(UTC),
            producer=producer,
            data=data,
        )

    def payload(self) -> Payload:
        """Validate `data` against the registered class (raises on unknown type or bad data)."""
        model = REGISTRY.get(self.type)
        if model is None:
            raise UnknownEventType(self.type)
        return model.model_validate(self.data)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, body: bytes) -> Envelope:
        return cls.model_validate_json(body)


class UnknownEventType(ValueError):
    pass


# --- message bodies: one envelope, or several of one type (docs/events.md, decision 0011) -----


def join_bodies(bodies: Sequence[bytes]) -> bytes:
    """Envelopes of one type as one message body: a JSON array of them in order; one alone
    stays a bare envelope, the form every consumer reads."""
    if len(bodies) == 1:
        return bodies[0]
    return b"[" + b",".join(bodies) + b"]"


def envelopes_in(body: bytes) -> list[Envelope]:
    """The envelopes of a message body, in order; raises ValueError if any does not parse."""
    found = read_body(body)
    for envelope in found:
        if isinstance(envelope, ValueError):
            raise envelope
    return found  # type: ignore[return-value]


_ENVELOPES: TypeAdapter[list[Envelope]] = TypeAdapter(list[Envelope])


def read_body(body: bytes) -> list[Envelope | ValueError]:
    """The envelopes of a message body, in order: a bare envelope or a JSON array of them.

    An element of an array that is no envelope stands as its error in its place, so the
    others can still be applied; a body that is neither form raises ValueError."""
    head = body[:1]
    if head.isspace():
        head = body.lstrip()[:1]
    if head != b"[":
        return [Envelope.from_bytes(body)]
    try:
        return list(_ENVELOPES.validate_json(body))
    except ValidationError:
        pass  # one bad element fails the whole fast path: sort them out one by one
    try:
        elements = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    found: list[Envelope | ValueError] = []
    for element in elements:
        try:
            found.append(Envelope.model_validate(element))
        except ValidationError as exc:
            found.append(exc)
    return found


# --- telemetry.* (producer: collector) ------------------------------------------------------


class Telemetry(Payload):
    machine_id: int
    timestamp: float = Field(description="UNIX seconds when the machine reported it.")


class PartCompleted(Telemetry):
    type = "telemetry.part_completed"
    increment: int = Field(default=1, ge=1, description="Parts (cycles) since the previous report.")
    part_count: int | None = Field(default=None, description="The control's counter after the rise.")
    program: str | None = Field(default=None, description="Program filename running at the time.")


class ProgramLoaded(Telemetry):
    type = "telemetry.program_loaded"
    program: str | None = Field(description="Program filename; null when none is loaded.")


class ExecutionChanged(Telemetry):
    type = "telemetry.execution_changed"
    execution: str = Field(description="MTConnect Execution: ACTIVE, READY, STOPPED, FEED_HOLD, …")


class AlarmRaised(Telemetry):
    type = "telemetry.alarm_raised"
    alarm_id: int = Field(description="The collector's alarm id (trigger_alarm_id in maintenance).")
    level: Literal["FAULT", "WARNING"] = "FAULT"
    native_code: str | None = None
    severity: str | None = None
    message: str = ""


class AlarmCleared(Telemetry):
    type = "telemetry.alarm_cleared"
    alarm_id: int
    native_code: str | None = None


class ToolChanged(Telemetry):
    type = "telemetry.tool_changed"
    tool: str = Field(description="Tool location (pocket / T number) now in the spindle.")


class VariablesChanged(Telemetry):
    type = "telemetry.variables_changed"
    variables: dict[str, float | int | str | None] = Field(
        description="Common variable number (as text) to its new value."
    )


# --- machine.* / process.* / settings.* (producer: process) ------------------------------------


class MachineUpserted(Payload):
    type = "machine.upserted"
    machine_id: int
    name: str
    archived: bool
    active_process_id: int | None = None
    blocked: bool = False


class MachineDeleted(Payload):
    type = "machine.deleted"
    machine_id: int


class ProcessUpserted(Payload):
    type = "process.upserted"
    process_id: int
    machine_id: int
    name: str
    archived: bool
    time_per_cycle: float | None = Field(default=None, description="Minutes per cycle.")
    parts_per_cycle: int = 1


class ProcessDeleted(Payload):
    type = "process.deleted"
    process_id: int
    machine_id: int


class ProcessChangedOver(Payload):
    type = "process.changed_over"
    machine_id: int
    from_process_id: int
    to_process_id: int
    planned: bool = False
    changed_at: float
    user: str | None = None
    removed_tool_assemblies: list[int] = Field(default_factory=list)


class PartRecorded(Payload):
    type = "process.part_recorded"
    part_id: int
    machine_id: int
    process_id: int | None
    program_id: int | None
    finished: float
    count: int = Field(description="Parts made in this report (cycles x parts_per_cycle).")
    cycles: int = Field(default=1, description="Machine cycles this report stands for.")
    cycle_time: float | None = Field(
        default=None, description="Measured seconds since the machine's previous part report."
    )
    time_per_cycle: float | None = Field(default=None, description="The process's expected minutes per cycle.")
    parts_per_cycle: int = 1


class SettingsUpdated(Payload):
    type = "settings.updated"
    time_zone: str
    check_unused_tools_parts: int
    part_report_limit: int


# --- maintenance.* (producer: maintenance) ----------------------------------------------------


class ItemWarning(Payload):
    type = "maintenance.item_warning"
    item_id: int
    name: str
    machine_id: int | None = None
    equipment_id: int | None = None
    due_at: float


class ItemDue(Payload):
    type = "maintenance.item_due"
    item_id: int
    name: str
    machine_id: int | None = None
    equipment_id: int | None = None
    due_at: float
    is_critical: bool = False
    trigger_alarm_id: int | None = None


class EntryRecorded(Payload):
    type = "maintenance.entry_recorded"
    entry_id: int
    item_id: int
    machine_id: int | None = None
    time: float
    success: bool | None = None
    value: float | None = None


class ThresholdExceeded(Payload):
    type = "maintenance.threshold_exceeded"
    item_id: int
    entry_id: int
    machine_id: int | None = None
    value: float
    threshold_lower: float | None = None
    threshold_upper: float | None = None


class InterlockChanged(Payload):
    type = "maintenance.interlock_changed"
    machine_id: int
    blocked: bool
    item_ids: list[int] = Field(default_factory=list, description="Critical items now blocking the machine.")


# --- sync.* -----------------------------------------------------------------------------------


class SyncRequested(Payload):
    type = "sync.requested"
    requester: str = Field(description="The service whose read model is empty.")
    domains: list[str] = Field(default_factory=list, description="e.g. ['machine', 'process']")


REGISTRY: dict[str, type[Payload]] = {
    cls.type: cls
    for cls in (
        PartCompleted,
        ProgramLoaded,
        ExecutionChanged,
        AlarmRaised,
        AlarmCleared,
        ToolChanged,
        VariablesChanged,
        MachineUpserted,
        MachineDeleted,
        ProcessUpserted,
        ProcessDeleted,
        ProcessChangedOver,
        PartRecorded,
        SettingsUpdated,
        ItemWarning,
        ItemDue,
        EntryRecorded,
        ThresholdExceeded,
        InterlockChanged,
        SyncRequested,
    )
}
