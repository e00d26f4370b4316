"""API models (request and response) of the process service, named after the seed."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.schemas import INT32_MAX, Int32, Patch, Writable, iana_zones

Comparison = Literal["EQ", "NE", "LT", "LE", "GT", "GE"]


class CvMapEntry(BaseModel):
    model_config = ConfigDict(extra="allow")
    number: int = Field(ge=0)
    notifyComparison: Comparison | None = None
    notifyValue: float | str | None = None


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


class ProcessUpdate(Patch):
    read_only = PROCESS_READ_ONLY
    nullable = frozenset({"machine_id", "display_variable", "part_count_cv", "time_per_cycle"})
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


class MachineUpdate(Patch):
    read_only = MACHINE_READ_ONLY
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = None
    location: str | None = Field(default=None, max_length=200)
    archived: bool | None = None


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


class SettingsUpdate(Patch):
    check_unused_tools_parts: int | None = Field(default=None, ge=0, le=10_000)
    part_report_limit: int | None = Field(default=None, ge=0)
    time_zone: str | None = None

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None and value not in iana_zones():
            raise ValueError(f"unknown IANA time zone {value!r}")
        return value


ProcessRead.model_rebuild()


class ChartRead(BaseModel):
    process: ProcessRead
    parts: dict[str, PartRead]
