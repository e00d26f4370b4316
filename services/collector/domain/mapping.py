"""Which data items mean what: part count, program, execution, tool, alarms, variables.

Defaults come from an agent's probe (by DataItem type) or from common SHDR key names; a
source's stored mapping overrides them item by item.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# Lower-case SHDR key names adapters commonly use (Mazak, Okuma, Fanuc, Haas adapters).
COMMON_KEYS: dict[str, frozenset[str]] = {
    "part_count": frozenset({"partcount", "partcountact", "part_count", "ppartcount", "partcount_act"}),
    "program": frozenset({"program", "pprogram", "main_program"}),
    "execution": frozenset({"execution", "pexecution"}),
    "tool": frozenset({"tool_number", "toolnumber", "tool_id", "toolid", "p1currenttool", "tool"}),
    "availability": frozenset({"avail", "availability"}),
}


class Mapping(BaseModel):
    """Keys are SHDR keys / DataItem names (the id when an item has no name)."""

    model_config = ConfigDict(extra="forbid")
    part_count: list[str] = Field(default_factory=list)
    program: list[str] = Field(default_factory=list)
    execution: list[str] = Field(default_factory=list)
    tool: list[str] = Field(default_factory=list)
    availability: list[str] = Field(default_factory=list)
    conditions: list[str] | None = Field(
        default=None, description="Condition / legacy alarm items that raise alarms; null: every condition.")
    messages: list[str] = Field(default_factory=list)
    alarms: list[str] = Field(default_factory=list, description="Legacy ALARM items (SHDR 5-field form).")
    variables: dict[str, str] = Field(default_factory=dict, description="Item key -> variable name forwarded.")
    auto: bool = Field(default=True, description="Also recognise common SHDR key names not listed here.")

    def merged(self, overrides: Mapping | dict[str, object] | None) -> Mapping:
        if not overrides:
            return self
        values = overrides if isinstance(overrides, dict) else overrides.model_dump(exclude_unset=True)
        return self.model_copy(update=Mapping.model_validate(values).model_dump(include=set(values)))

    def role_of(self, key: str) -> str | None:
        for role in ("part_count", "program", "execution", "tool", "availability"):
            if key in getattr(self, role):
                return role
        if self.auto:
            lowered = key.lower()
            for role, names in COMMON_KEYS.items():
                if lowered in names:
                    return role
        return None
