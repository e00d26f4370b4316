"""API models of the supporting resources: equipment, inventory, channels, alerts, deliveries."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from services.maintenance.schemas import Id, Int32, Writable


class EquipmentCreate(Writable):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    machine_id: Id | None = None


class EquipmentUpdate(Writable):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = None
    machine_id: Id | None = None


class EquipmentRead(BaseModel):
    id: int
    name: str
    description: str
    machine_id: int | None


class InventoryCreate(Writable):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    quantity: int = Field(default=0, ge=0, le=2**31 - 1)
    unit: str = Field(default="", max_length=50)


class InventoryUpdate(Writable):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = None
    quantity: int | None = Field(default=None, ge=0, le=2**31 - 1)
    unit: str | None = Field(default=None, max_length=50)


class InventoryRead(BaseModel):
    id: int
    name: str
    description: str
    quantity: int
    unit: str


ChannelKind = Literal["slack", "teams", "webhook"]


def _http_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value


class ChannelCreate(Writable):
    name: str = Field(min_length=1, max_length=200)
    kind: ChannelKind
    url: str = Field(min_length=8, max_length=2000)

    _url = field_validator("url")(_http_url)


class ChannelUpdate(Writable):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: ChannelKind | None = None
    url: str | None = Field(default=None, min_length=8, max_length=2000)

    _url = field_validator("url")(_http_url)


class ChannelRead(BaseModel):
    id: int
    name: str
    kind: str
    url: str


class AlertRead(BaseModel):
    id: int
    item_id: int | None
    machine_id: int | None
    kind: str
    message: str
    created: float
    dismissed: bool
    dismissed_at: float | None
    dismissed_by: str | None


class DeliveryRead(BaseModel):
    id: int
    channel_id: int
    payload: dict[str, object]
    status: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    created: float
    sent_at: float | None


__all__ = ["Int32"]
