"""Request-model building blocks every service uses, so bad input is a 400 naming the field."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, ClassVar
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The range of an INTEGER column: a client's integer outside it is a 400, never a driver error.
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
Int32 = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]
# UNIX seconds a datetime can hold (1970 to the end of 9999).
UNIX_MAX = 253_402_300_799


class Writable(BaseModel):
    """Request bodies: unknown fields are an error; read-only fields sent back are ignored;
    text with NUL characters (which PostgreSQL cannot store) is rejected."""

    model_config = ConfigDict(extra="forbid")
    read_only: ClassVar[frozenset[str]] = frozenset({"id"})

    @model_validator(mode="before")
    @classmethod
    def _drop_read_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            _reject_nul(data, "")
            return {k: v for k, v in data.items() if k not in cls.read_only}
        return data


class Patch(Writable):
    """A partial update: fields default to None meaning "unchanged"; an explicit null is only
    accepted for the fields listed in `nullable`."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_nulls(self) -> Patch:
        for name in self.model_fields_set - self.nullable:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


def _reject_nul(value: Any, where: str) -> None:
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


@cache
def iana_zones() -> frozenset[str]:
    """IANA zone names (the tz database also ships aliases like "localtime" that are not)."""
    return frozenset(available_timezones() - {"localtime", "posixrules", "Factory"})
