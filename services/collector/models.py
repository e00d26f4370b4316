"""Tables the collector owns: sources, latest state per machine, alarm history, interlocks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import JSONType, UTCDateTime, make_metadata, utcnow
from shared.inbox import make_inbox_table
from shared.outbox import make_outbox_table

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
KINDS = ("mtconnect", "shdr", "http", "simulator")


class Base(DeclarativeBase):
    metadata = make_metadata()


outbox = make_outbox_table(Base.metadata)
inbox = make_inbox_table(Base.metadata)


class Source(Base):
    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    machine_id: Mapped[int] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(20))
    address: Mapped[str | None] = mapped_column(String(500), default=None)  # agent URL, or host:port
    device: Mapped[str | None] = mapped_column(String(200), default=None)
    mapping: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # overrides of the defaults
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Status, written by the source's runner.
    connected: Mapped[bool] = mapped_column(Boolean, default=False)
    last_data_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Where reading resumes: agent "instanceId:nextSequence", adapter's last timestamp.
    position: Mapped[str | None] = mapped_column(String(100), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MachineState(Base):
    __tablename__ = "machine_state"

    machine_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    execution: Mapped[str | None] = mapped_column(String(50), default=None)
    program: Mapped[str | None] = mapped_column(String(500), default=None)
    part_count: Mapped[int | None] = mapped_column(Integer, default=None)
    tool: Mapped[str | None] = mapped_column(String(100), default=None)
    variables: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Moved by every write: the HTTP push derives without a lock and writes only if it is unchanged.
    version: Mapped[int] = mapped_column(Integer, server_default=text("0"))

    __mapper_args__ = {"version_id_col": version}


class Alarm(Base):
    __tablename__ = "alarms"
    __table_args__ = (Index("ix_alarms_machine_active", "machine_id", "cleared_at"),
                      Index("ix_alarms_raised_at", "raised_at"))

    id: Mapped[int] = mapped_column(primary_key=True)  # travels as alarm_id / trigger_alarm_id
    machine_id: Mapped[int] = mapped_column(Integer)
    source_id: Mapped[int | None] = mapped_column(Integer, default=None)
    key: Mapped[str] = mapped_column(String(300))  # data item | native code, while active
    item: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(20))
    native_code: Mapped[str | None] = mapped_column(String(100), default=None)
    severity: Mapped[str | None] = mapped_column(String(100), default=None)
    message: Mapped[str] = mapped_column(Text, default="")
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class Interlock(Base):
    __tablename__ = "interlocks"

    machine_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    item_ids: Mapped[list[int]] = mapped_column(JSONType, default=list)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
