"""read revision: a counter the process reads are cached by, moved by triggers

Revision ID: 0002_read_revision
Revises: 667a96d482a2
Create Date: 2026-11-22
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.read_revision import drop_statements, trigger_statements

revision: str = "0002_read_revision"
down_revision: str | None = "667a96d482a2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What GET /api/processes/ and /{id} show (services/process/usecases/processes.py): a process,
# its programs and tool assemblies with their tools; `loaded`/`active` from the machines; and,
# for the detail's unused_tool_locations, recent parts and the settings.
WATCHED: dict[str, list[str] | None] = {
    "processes": None,
    "programs": None,
    "tool_assemblies": None,
    "tools": None,
    "parts": None,
    "settings": None,
    "machines": ["active_process_id", "loaded_program_id"],
}


def upgrade() -> None:
    op.create_table(
        "read_revision",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("epoch", sa.String(length=32), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_read_revision")),
    )
    for statement in trigger_statements(op.get_bind().dialect.name, WATCHED):
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_statements(op.get_bind().dialect.name, WATCHED):
        op.execute(statement)
    op.drop_table("read_revision")
