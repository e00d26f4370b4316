"""Tables the maintenance service owns, plus its read model of the process service."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import JSONType, UTCDateTime, make_metadata, utcnow
from shared.inbox import make_inbox_table
from shared.outbox import make_outbox_table


class Base(DeclarativeBase):
    metadata = make_metadata()


outbox = make_outbox_table(Base.metadata)
inbox = make_inbox_table(Base.metadata)


class Equipment(Base):
    __tablename__ = "equipment"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    machine_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)


class InventoryItem(Base):
    __tablename__ = "inventory_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    quantity: Mapped[int] = mapped_column(Integer, default=0)  # on hand
    unit: Mapped[str] = mapped_column(String(50), default="")


class Channel(Base):
    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # slack | teams | webhook
    url: Mapped[str] = mapped_column(String(2000))


class Item(Base):
    """Both item types (task, measurement) in one table, so ids are unique across both."""

    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_type: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    instructions: Mapped[str] = mapped_column(Text, default="")
    machine_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    equipment_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    process_id: Mapped[int | None] = mapped_column(Integer, default=None)
    schedule_mode: Mapped[int] = mapped_column(Integer, default=0)
    timer_interval: Mapped[float] = mapped_column(Float, default=0.0)  # hours
    warning_interval: Mapped[float] = mapped_column(Float, default=0.0)  # hours
    cycle_timer: Mapped[float] = mapped_column(Float, default=0.0)  # minutes
    frequency: Mapped[str] = mapped_column(String(1), default="D")
    interval: Mapped[int] = mapped_column(Integer, default=1)
    indices: Mapped[list[int]] = mapped_column(JSONType, default=list)
    months: Mapped[int] = mapped_column(Integer, default=4095)
    weekdays: Mapped[int] = mapped_column(Integer, default=127)
    time_of_day: Mapped[str] = mapped_column(String(5), default="00:00")
    initial_entry: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    is_critical: Mapped[bool] = mapped_column(Boolean, default=False)
    needed_when_archived: Mapped[bool] = mapped_column(Boolean, default=False)
    needed_when_not_archived: Mapped[bool] = mapped_column(Boolean, default=True)
    remind_channel_id: Mapped[int | None] = mapped_column(Integer, default=None)
    difficulty: Mapped[int] = mapped_column(Integer, default=2)
    completion_duration: Mapped[float] = mapped_column(Float, default=0.0)  # minutes
    inventory_items: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict)
    trigger_alarms: Mapped[list[str]] = mapped_column(JSONType, default=list)
    trigger_alarm_id: Mapped[int | None] = mapped_column(Integer, default=None)
    # measurement only
    unit: Mapped[str] = mapped_column(String(50), default="")
    threshold_lower: Mapped[float | None] = mapped_column(Float, default=None)
    threshold_upper: Mapped[float | None] = mapped_column(Float, default=None)
    threshold_notify_id: Mapped[int | None] = mapped_column(Integer, default=None)
    # bookkeeping: when the triggering alarm happened, the last completion, and which
    # occurrence (its due time) the scheduler already warned / raised due for.
    trigger_alarm_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_done: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # mode 1: when the accumulated cycle_timer reached timer_interval (the engine cannot know)
    run_time_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    warned_for: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    due_raised_for: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    blocking: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Entry(Base):
    __tablename__ = "entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime)
    user: Mapped[str] = mapped_column(String(200), default="")
    success: Mapped[bool | None] = mapped_column(Boolean, default=None)
    value: Mapped[float | None] = mapped_column(Float, default=None)
    duration: Mapped[float | None] = mapped_column(Float, default=None)  # minutes
    notes: Mapped[str] = mapped_column(Text, default="")


class Alert(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id", ondelete="SET NULL"), index=True)
    machine_id: Mapped[int | None] = mapped_column(Integer, default=None)
    kind: Mapped[str] = mapped_column(String(20))  # due | warning | threshold
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    dismissed: Mapped[bool] = mapped_column(Boolean, default=False)
    dismissed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    dismissed_by: Mapped[str | None] = mapped_column(String(200), default=None)


class Delivery(Base):
    """A notification waiting to be (or already) sent: the persisted queue of the notifier."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


# --- read model of the process service (kept from its events) ------------------------------


class KnownMachine(Base):
    __tablename__ = "known_machines"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(200), default="")
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    active_process_id: Mapped[int | None] = mapped_column(Integer, default=None)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)


class KnownProcess(Base):
    __tablename__ = "known_processes"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    machine_id: Mapped[int] = mapped_column(Integer, index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    time_per_cycle: Mapped[float | None] = mapped_column(Float, default=None)  # minutes
    parts_per_cycle: Mapped[int] = mapped_column(Integer, default=1)


class ShopSetting(Base):
    __tablename__ = "shop_settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
