"""What every protocol is parsed into: one observation of one data item at one time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

UNAVAILABLE = "UNAVAILABLE"
CONDITION_LEVELS = frozenset({"NORMAL", "WARNING", "FAULT", UNAVAILABLE})


@dataclass(frozen=True, slots=True)
class Condition:
    """One condition activation (MTConnect Condition / SHDR condition line)."""

    level: str  # NORMAL, WARNING, FAULT or UNAVAILABLE (upper case)
    native_code: str = ""
    severity: str = ""
    qualifier: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class Observation:
    """`value` is None for UNAVAILABLE; `condition` is set for condition items only."""

    timestamp: float
    key: str  # SHDR key / DataItem name (or id when it has no name)
    value: str | None = None
    condition: Condition | None = None
    # Stable position inside its source (agent sequence, or stream line number), for event ids.
    position: str = ""


def parse_timestamp(text: str) -> float:
    """ISO 8601 as adapters write it: 0-7 fractional digits, `Z` or no zone (taken as UTC)."""
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1]
    head, dot, fraction = text.partition(".")
    if dot:
        # Python keeps microseconds; adapters send up to 7 digits.
        digits = "".join(c for c in fraction if c.isdigit())
        rest = fraction[len(digits):]
        text = f"{head}.{(digits + '000000')[:6]}{rest}"
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def value_or_none(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return None if text.upper() == UNAVAILABLE else text
