"""API models (request and response) of the process service, named after the seed."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.process.models import INT32_MAX, INT32_MIN

Comparison = Literal["EQ", "NE", "LT", "LE", "GT", "GE"]


@cache
def iana_zones() -> frozenset[str]:
    """IANA zone names (the tz database also ships aliases like "localtime" that are not)."""
    return frozenset(available_timezones() - {"localtime", "posixrules", "Factory"})
# Integers a client sends that reach an INTEGER column or a lookup by id (400 outside its range).
Int32 = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]


class CvMapEntry(BaseModel):
    model_config = ConfigDict(extra="allow")
    number: int = Field(ge=0)
    notifyComparison: Comparison | None = None
    notifyValue: float | str | None = None


class Writable(BaseModel):
    """Request bodies: unknown fields are an error; read-only fields sent back are ignored."""

    model_config = ConfigDict(extra="forbid")
    read_only: ClassVar[frozenset[str]] = frozenset({"id"})

    @model_validator(mode="before")
    @classmethod
    def _drop_read_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            _reject_nul(data, "")
            return {k: v for k, v in data.items() if k not in cls.read_only}
        return data


def _reject_nul(value: Any, where: str) -> None:
    """PostgreSQL text cannot hold NUL characters: reject them, naming the field."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{where or 'body'}: text must not contain NUL characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            _reject_nul(key, where or str(key))
            _reject_nul(item, where or str(key))
    elif isinstance(value, list):
        for item in value:
            _reject_nul(item, where)


# --- processes -------------------------------------------------------------------------------

PROCESS_READ_ONLY = frozenset({
    "id", "loaded", "last_cycle", "unassigned_tools_used", "active", "programs", "tools",
    "efficiency", "unused_tool_locations", "tool_requirements",
})


class ProcessFields(Writable):
    read_only = PROCESS_READ_ONLY
    name: str = Field(default="", max_length=200)
    description: str = ""
    archived: bool = False
    cv_map: dict[str, CvMapEntry] = Field(default_factory=dict)
    display_variable: int | None = Field(default=None, ge=0, le=INT32_MAX)
    part_count_cv: int | None = Field(default=None, ge=0, le=INT32_MAX)
    part_material_cost: float = Field(default=0.0, ge=0)
    part_sell_price: float = Field(default=0.0, ge=0)
    parts_per_cycle: int = Field(default=1, ge=1, le=INT32_MAX)
    setup_instructions: str = ""
    teardown_instructions: str = ""
    tags: list[str] = Field(default_factory=list)
    time_per_cycle: float | None = Field(default=None, ge=0, description="minutes")


class ProcessCreate(ProcessFields):
    machine_id: Int32
    name: str = Field(min_length=1, max_length=200)


class ProcessUpdate(Writable):
    read_only = PROCESS_READ_ONLY
    machine_id: Int32 | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = None
    archived: bool | None = None
    cv_map: dict[str, CvMapEntry] | None = None
    display_variable: int | None = Field(default=None, ge=0, le=INT32_MAX)
    part_count_cv: int | None = Field(default=None, ge=0, le=INT32_MAX)
    part_material_cost: float | None = Field(default=None, ge=0)
    part_sell_price: float | None = Field(default=None, ge=0)
    parts_per_cycle: int | None = Field(default=None, ge=1, le=INT32_MAX)
    setup_instructions: str | None = None
    teardown_instructions: str | None = None
    tags: list[str] | None = None
    time_per_cycle: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _not_null(self) -> ProcessUpdate:
        nullable = {"machine_id", "display_variable", "part_count_cv", "time_per_cycle"}
        for name in self.model_fields_set - nullable:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class LastCycle(BaseModel):
    finished: float
    program_id: int | None


class ProcessRead(BaseModel):
    id: int
    machine_id: int
    name: str
    description: str
    archived: bool
    cv_map: dict[str, dict[str, Any]]
    display_variable: int | None
    part_count_cv: int | None
    part_material_cost: float
    part_sell_price: float
    parts_per_cycle: int
    setup_instructions: str
    teardown_instructions: str
    tags: list[str]
    time_per_cycle: float | None
    unassigned_tools_used: dict[str, float]
    loaded: bool
    last_cycle: LastCycle | None
    active: bool = Field(description="This process is the machine's confirmed active process.")
    programs: dict[str, ProgramRead] | None = None
    tools: dict[str, ToolRead] | None = None
    efficiency: dict[str, Any] | None = None
    unused_tool_locations: list[str] | None = None


class ToolRequirementCreate(Writable):
    read_only = frozenset({"id", "process_id"})
    location: str = Field(min_length=1, max_length=50)
    description: str = ""
    tool_type: str = Field(default="", max_length=100)


class ToolRequirementRead(BaseModel):
    id: int
    process_id: int
    location: str
    description: str
    tool_type: str


class DuplicateRequest(Writable):
    machine_id: Int32
    name: str = Field(min_length=1, max_length=200)


class ChangeoverRequest(Writable):
    remove_tool_assemblies: list[Int32] = Field(default_factory=list)


# --- machines --------------------------------------------------------------------------------

MACHINE_READ_ONLY = frozenset({
    "id", "active_process_id", "loaded_program_id", "blocked", "blocking_items", "variables",
    "current_tool", "last_seen",
})


class MachineCreate(Writable):
    read_only = MACHINE_READ_ONLY
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    location: str = Field(default="", max_length=200)
    archived: bool = False


class MachineUpdate(Writable):
    read_only = MACHINE_READ_ONLY
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = None
    location: str | None = Field(default=None, max_length=200)
    archived: bool | None = None

    @model_validator(mode="after")
    def _not_null(self) -> MachineUpdate:
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class MachineRead(BaseModel):
    id: int
    name: str
    description: str
    location: str
    archived: bool
    active_process_id: int | None
    loaded_program_id: int | None
    blocked: bool
    blocking_items: list[int]
    current_tool: str | None
    variables: dict[str, Any]
    last_seen: float | None


# --- programs --------------------------------------------------------------------------------


class ProgramCreate(Writable):
    read_only = frozenset({"id", "last_loaded", "loaded"})
    machine_id: Int32
    filename: str = Field(min_length=1, max_length=500)
    name: str = Field(default="", max_length=200)
    description: str = ""
    process_id: Int32 | None = None
    archived: bool = False


class ProgramUpdate(Writable):
    read_only = frozenset({"id", "last_loaded", "loaded"})
    machine_id: Int32 | None = None
    filename: str | None = Field(default=None, min_length=1, max_length=500)
    name: str | None = Field(default=None, max_length=200)
    description: str | None = None
    process_id: Int32 | None = None
    archived: bool | None = None


class ProgramRead(BaseModel):
    id: int
    machine_id: int
    filename: str
    name: str
    description: str
    process_id: int | None
    archived: bool
    loaded: bool
    last_loaded: float | None


# --- tools -----------------------------------------------------------------------------------


class ToolFields(Writable):
    read_only = frozenset({"id", "location", "process_id", "machine_id"})
    name: str = Field(default="", max_length=200)
    description: str = ""
    tool_type: str = Field(default="", max_length=100)
    part_number: str = Field(default="", max_length=100)
    diameter: float | None = Field(default=None, ge=0)
    length: float | None = Field(default=None, ge=0)


class ToolCreate(ToolFields):
    assembly_id: Int32


class ToolInAssembly(ToolFields):
    pass


class ToolUpdate(Writable):
    read_only = frozenset({"id", "location", "process_id", "machine_id"})
    assembly_id: Int32 | None = None
    name: str | None = Field(default=None, max_length=200)
    description: str | None = None
    tool_type: str | None = Field(default=None, max_length=100)
    part_number: str | None = Field(default=None, max_length=100)
    diameter: float | None = Field(default=None, ge=0)
    length: float | None = Field(default=None, ge=0)


class ToolRead(BaseModel):
    id: int
    assembly_id: int
    machine_id: int
    location: str | None
    process_id: int | None
    name: str
    description: str
    tool_type: str
    part_number: str
    diameter: float | None
    length: float | None


class ToolAssemblyCreate(Writable):
    machine_id: Int32
    name: str = Field(default="", max_length=200)
    description: str = ""
    location: str | None = Field(default=None, max_length=50)
    process_id: Int32 | None = None
    tools: list[ToolInAssembly] = Field(default_factory=list)


class ToolAssemblyUpdate(Writable):
    read_only = frozenset({"id", "tools"})
    machine_id: Int32 | None = None
    name: str | None = Field(default=None, max_length=200)
    description: str | None = None
    location: str | None = Field(default=None, max_length=50)
    process_id: Int32 | None = None


class ToolAssemblyRead(BaseModel):
    id: int
    machine_id: int
    name: str
    description: str
    location: str | None
    process_id: int | None
    tools: dict[str, ToolRead]


# --- parts and settings ----------------------------------------------------------------------


class PartRead(BaseModel):
    id: int
    machine_id: int
    process_id: int | None
    program_id: int | None
    count: int
    cycles: int
    finished: float
    cycle_time: float | None = Field(description="seconds since the machine's previous part")
    tool_locations: list[str]
    variables: dict[str, Any]


class SettingsRead(BaseModel):
    check_unused_tools_parts: int
    part_report_limit: int
    time_zone: str


class SettingsUpdate(Writable):
    check_unused_tools_parts: int | None = Field(default=None, ge=0, le=10_000)
    part_report_limit: int | None = Field(default=None, ge=0)
    time_zone: str | None = None

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None and value not in iana_zones():
            raise ValueError(f"unknown IANA time zone {value!r}")
        return value

    @model_validator(mode="after")
    def _not_null(self) -> SettingsUpdate:
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


ProcessRead.model_rebuild()


class ChartRead(BaseModel):
    process: ProcessRead
    parts: dict[str, PartRead]
