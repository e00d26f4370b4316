"""API models of the collector (request and response)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.collector.domain.mapping import Mapping
from services.collector.models import INT32_MAX, INT32_MIN

Int32 = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]
Kind = Literal["mtconnect", "shdr", "http", "simulator"]
Timestamp = Annotated[float, Field(ge=0, le=253_402_300_799, allow_inf_nan=False)]


def check_address(kind: str, address: str | None) -> str | None:
    """The problem with `address` for `kind`, or None."""
    if kind == "mtconnect":
        parts = urlsplit(address or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return "an MTConnect source needs the agent's http(s) URL"
    elif kind == "simulator":
        from services.collector.sources.simulated import parse_parameters

        try:
            parse_parameters(address)
        except ValueError as exc:
            return f"simulator parameters: {exc}"
    elif kind == "shdr":
        host, _, port = (address or "").rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            return "an SHDR source needs host:port (adapters usually listen on 7878)"
    return None


class SourceStatus(BaseModel):
    connected: bool
    last_data: float | None = Field(description="UNIX seconds of the last data received.")
    last_error: str | None
    last_error_at: float | None


class SourceRead(BaseModel):
    id: int
    machine_id: int
    kind: Kind
    address: str | None
    device: str | None
    mapping: dict[str, Any] = Field(description="Overrides of the default data item mapping.")
    enabled: bool
    status: SourceStatus
    position: str | None = Field(description="Where reading resumes (agent instanceId:sequence, adapter time).")


class SourceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    machine_id: Int32
    kind: Kind
    address: str | None = Field(default=None, max_length=500)
    device: str | None = Field(default=None, max_length=200)
    mapping: Mapping | None = None
    enabled: bool = True

    @model_validator(mode="after")
    def _address_fits_kind(self) -> SourceCreate:
        problem = check_address(self.kind, self.address)
        if problem:
            raise ValueError(problem)
        return self


class SourceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    machine_id: Int32 | None = None
    kind: Kind | None = None
    address: str | None = Field(default=None, max_length=500)
    device: str | None = Field(default=None, max_length=200)
    mapping: Mapping | None = None
    enabled: bool | None = None


class AlarmRead(BaseModel):
    id: int
    machine_id: int
    source_id: int | None
    item: str
    level: str
    native_code: str | None
    severity: str | None
    message: str
    raised_at: float
    cleared_at: float | None
    active: bool


class MachineStateRead(BaseModel):
    machine_id: int
    execution: str | None
    program: str | None
    part_count: int | None
    tool: str | None
    variables: dict[str, Any]
    active_alarms: list[AlarmRead]
    last_seen: float | None


class InterlockRead(BaseModel):
    machine_id: int
    blocked: bool
    item_ids: list[int]
    changed_at: float | None


class PushCondition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: Literal["NORMAL", "WARNING", "FAULT", "UNAVAILABLE"]
    native_code: str = Field(default="", max_length=100)
    severity: str = Field(default="", max_length=100)
    qualifier: str = Field(default="", max_length=50)
    message: str = Field(default="", max_length=2000)


class PushItem(BaseModel):
    """One observation from an edge adapter: a value (null = UNAVAILABLE) or a condition."""

    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(default=None, max_length=100,
                           description="The adapter's id for this item; a resent id is not applied twice.")
    timestamp: Timestamp
    key: str = Field(min_length=1, max_length=200, description="Data item key, as in the source's mapping.")
    value: str | int | float | None = None
    condition: PushCondition | None = None


class PushRejected(BaseModel):
    index: int
    detail: str


class PushResult(BaseModel):
    accepted: int
    rejected: list[PushRejected]
    events: int = Field(description="Telemetry events the accepted items produced.")
