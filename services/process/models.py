"""Tables the process service owns (one database, its own schema on PostgreSQL)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import JSONType, UTCDateTime, make_metadata, utcnow
from shared.inbox import make_inbox_table
from shared.outbox import make_outbox_table
from shared.read_revision import make_read_revision_table

# The range of an INTEGER column (PostgreSQL int4): ids and numbers from clients outside it are
# invalid input, and must not reach the driver (which would fail with a server error).


class Base(DeclarativeBase):
    metadata = make_metadata()


outbox = make_outbox_table(Base.metadata)
inbox = make_inbox_table(Base.metadata)
read_revision = make_read_revision_table(Base.metadata)


class Machine(Base):
    __tablename__ = "machines"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[str] = mapped_column(String(200), default="")
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    # No FK constraints on these two: they point back into tables that point here, and the
    # use cases clear them when a process or program goes away.
    active_process_id: Mapped[int | None] = mapped_column(Integer, default=None)
    loaded_program_id: Mapped[int | None] = mapped_column(Integer, default=None)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    blocking_items: Mapped[list[int]] = mapped_column(JSONType, default=list)
    # Telemetry state needed to derive parts.
    variables: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    current_tool: Mapped[str | None] = mapped_column(String(50), default=None)
    tools_used: Mapped[list[str]] = mapped_column(JSONType, default=list)
    last_part_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Process(Base):
    __tablename__ = "processes"

    id: Mapped[int] = mapped_column(primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    cv_map: Mapped[dict[str, dict[str, Any]]] = mapped_column(JSONType, default=dict)
    display_variable: Mapped[int | None] = mapped_column(Integer, default=None)
    part_count_cv: Mapped[int | None] = mapped_column(Integer, default=None)
    part_material_cost: Mapped[float] = mapped_column(Float, default=0.0)
    part_sell_price: Mapped[float] = mapped_column(Float, default=0.0)
    parts_per_cycle: Mapped[int] = mapped_column(Integer, default=1)
    setup_instructions: Mapped[str] = mapped_column(Text, default="")
    teardown_instructions: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    time_per_cycle: Mapped[float | None] = mapped_column(Float, default=None)  # minutes
    unassigned_tools_used: Mapped[dict[str, float]] = mapped_column(JSONType, default=dict)
    # The newest part's finish time and program (the seed's `last_cycle`), kept on the row so
    # listing processes never scans the parts table.
    last_cycle_finished: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_cycle_program_id: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Program(Base):
    __tablename__ = "programs"
    __table_args__ = (UniqueConstraint("machine_id", "filename"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(500))
    name: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    process_id: Mapped[int | None] = mapped_column(
        ForeignKey("processes.id", ondelete="SET NULL"), default=None, index=True
    )
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    last_loaded: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProcessToolRequirement(Base):
    __tablename__ = "process_tool_requirements"
    __table_args__ = (UniqueConstraint("process_id", "location"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[int] = mapped_column(ForeignKey("processes.id", ondelete="CASCADE"), index=True)
    location: Mapped[str] = mapped_column(String(50))
    description: Mapped[str] = mapped_column(Text, default="")
    tool_type: Mapped[str] = mapped_column(String(100), default="")


class ToolAssembly(Base):
    __tablename__ = "tool_assemblies"

    id: Mapped[int] = mapped_column(primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[str | None] = mapped_column(String(50), default=None)
    process_id: Mapped[int | None] = mapped_column(
        ForeignKey("processes.id", ondelete="SET NULL"), default=None, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Tool(Base):
    __tablename__ = "tools"

    id: Mapped[int] = mapped_column(primary_key=True)
    assembly_id: Mapped[int] = mapped_column(
        ForeignKey("tool_assemblies.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    tool_type: Mapped[str] = mapped_column(String(100), default="")
    part_number: Mapped[str] = mapped_column(String(100), default="")
    diameter: Mapped[float | None] = mapped_column(Float, default=None)
    length: Mapped[float | None] = mapped_column(Float, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Part(Base):
    __tablename__ = "parts"
    __table_args__ = (
        Index("ix_parts_process_finished", "process_id", "finished"),
        Index("ix_parts_machine_finished", "machine_id", "finished"),
        Index("ix_parts_program_finished", "program_id", "finished"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"))
    process_id: Mapped[int | None] = mapped_column(
        ForeignKey("processes.id", ondelete="SET NULL"), default=None
    )
    program_id: Mapped[int | None] = mapped_column(
        ForeignKey("programs.id", ondelete="SET NULL"), default=None
    )
    count: Mapped[int] = mapped_column(Integer, default=1)
    cycles: Mapped[int] = mapped_column(Integer, default=1)
    finished: Mapped[datetime] = mapped_column(UTCDateTime)
    cycle_time: Mapped[float | None] = mapped_column(Float, default=None)  # seconds
    tool_locations: Mapped[list[str]] = mapped_column(JSONType, default=list)
    variables: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class Changeover(Base):
    __tablename__ = "changeovers"

    id: Mapped[int] = mapped_column(primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"), index=True)
    from_process_id: Mapped[int | None] = mapped_column(
        ForeignKey("processes.id", ondelete="SET NULL"))
    to_process_id: Mapped[int | None] = mapped_column(
        ForeignKey("processes.id", ondelete="SET NULL"))
    planned: Mapped[bool] = mapped_column(Boolean, default=False)
    user: Mapped[str | None] = mapped_column(String(200), default=None)
    removed_tool_assemblies: Mapped[list[int]] = mapped_column(JSONType, default=list)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Setting(Base):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONType)
