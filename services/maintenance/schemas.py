"""API models (request and response) of the maintenance service, named after the seed."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from shared.schemas import INT32_MAX, UNIX_MAX, Int32, Writable

Id = Annotated[int, Field(ge=1, le=INT32_MAX)]
Unix = Annotated[float, Field(ge=0, le=UNIX_MAX, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Hours = Annotated[float, Field(ge=0, le=1_000_000, allow_inf_nan=False)]
Minutes = Annotated[float, Field(ge=0, le=1_000_000_000, allow_inf_nan=False)]
MEASUREMENT_ONLY = ("unit", "threshold_lower", "threshold_upper", "threshold_notify_id")


# --- items ---------------------------------------------------------------------------------

ITEM_READ_ONLY = frozenset({"id", "trigger_alarm_id"})


class ScheduleFields(Writable):
    """The fields that decide when an item comes due (also the body of previewSchedule)."""

    schedule_mode: Literal[0, 1, 2] = 0
    timer_interval: Hours = 0.0
    warning_interval: Hours = 0.0
    cycle_timer: Minutes = 0.0
    frequency: Literal["Y", "M", "W", "D", "H"] = "D"
    interval: int = Field(default=1, ge=1, le=10_000)
    indices: list[int] = Field(default_factory=list, max_length=400)
    months: int = Field(default=4095, ge=0, le=4095)
    weekdays: int = Field(default=127, ge=0, le=127)
    time_of_day: str = Field(default="00:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    initial_entry: Unix | None = None

    @field_validator("indices")
    @classmethod
    def _indices(cls, value: list[int]) -> list[int]:
        for index in value:
            if index == 0 or not -366 <= index <= 366:
                raise ValueError("each index is a non-zero number from -366 to 366")
        return value


class ItemCreate(ScheduleFields):
    read_only = ITEM_READ_ONLY
    item_type: Literal["task", "measurement"]
    name: str = Field(min_length=1, max_length=200)
    instructions: str = ""
    machine_id: Id | None = None
    equipment_id: Id | None = None
    process_id: Id | None = None
    is_critical: bool = False
    needed_when_archived: bool = False
    needed_when_not_archived: bool = True
    remind_channel_id: Id | None = None
    difficulty: int = Field(default=2, ge=1, le=4)
    completion_duration: Minutes = 0.0
    inventory_items: dict[Id, int] = Field(default_factory=dict, max_length=500)
    trigger_alarms: list[Annotated[str, Field(max_length=500)]] = Field(default_factory=list, max_length=500)
    unit: str = Field(default="", max_length=50)
    threshold_lower: Finite | None = None
    threshold_upper: Finite | None = None
    threshold_notify_id: Id | None = None

    @field_validator("inventory_items")
    @classmethod
    def _quantities(cls, value: dict[int, int]) -> dict[int, int]:
        if any(not 0 <= qty <= INT32_MAX for qty in value.values()):
            raise ValueError("quantities are whole numbers from 0")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ItemCreate:
        if self.machine_id is not None and self.equipment_id is not None:
            raise ValueError("equipment_id: only one of machine_id or equipment_id may be set")
        if self.item_type == "task":
            for name in MEASUREMENT_ONLY:
                if name in self.model_fields_set and getattr(self, name) not in (None, ""):
                    raise ValueError(f"{name}: only measurement items have this field")
        if (self.threshold_lower is not None and self.threshold_upper is not None
                and self.threshold_lower > self.threshold_upper):
            raise ValueError("threshold_upper: must not be below threshold_lower")
        return self


# PATCH: every writable field optional; the merged item is validated as an ItemCreate.
ItemUpdate: type[Writable] = create_model(  # type: ignore[call-overload]
    "ItemUpdate", __base__=Writable,
    **{name: (Any, None) for name in ItemCreate.model_fields},
)
ItemUpdate.read_only = ITEM_READ_ONLY | {"item_type"}


class TaskRead(BaseModel):
    id: int
    item_type: str
    name: str
    instructions: str
    machine_id: int | None
    equipment_id: int | None
    process_id: int | None
    schedule_mode: int
    timer_interval: float
    warning_interval: float
    cycle_timer: float
    frequency: str
    interval: int
    indices: list[int]
    months: int
    weekdays: int
    time_of_day: str
    initial_entry: float | None
    is_critical: bool
    needed_when_archived: bool
    needed_when_not_archived: bool
    remind_channel_id: int | None
    difficulty: int
    completion_duration: float
    inventory_items: dict[str, int]
    trigger_alarms: list[str]
    trigger_alarm_id: int | None


class MeasurementRead(TaskRead):
    unit: str
    threshold_lower: float | None
    threshold_upper: float | None
    threshold_notify_id: int | None


ItemRead = MeasurementRead | TaskRead


class PreviewRequest(ScheduleFields):
    """A partial item: scheduling fields, `id` and `initial_entry` are used, the rest ignored."""

    model_config = ConfigDict(extra="ignore")
    read_only = frozenset()
    id: Int32 | None = None


# --- entries -------------------------------------------------------------------------------


class EntryCreate(Writable):
    item_id: Id
    time: Unix | None = Field(default=None, description="UNIX seconds; now when left out")
    success: bool | None = None
    value: Finite | None = None
    duration: Minutes | None = None
    notes: str = ""


class EntryUpdate(Writable):
    read_only = frozenset({"id", "item_id", "user"})
    time: Unix | None = None
    success: bool | None = None
    value: Finite | None = None
    duration: Minutes | None = None
    notes: str | None = None


class EntryRead(BaseModel):
    id: int
    item_id: int
    time: float
    user: str
    success: bool | None
    value: float | None
    duration: float | None
    notes: str
