"""machine_state.version: the optimistic lock of the HTTP push (docs/decisions/0010)

Revision ID: 0003_machine_state_version
Revises: 0002_outbox_unsent_partial
Create Date: 2026-11-22
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_machine_state_version"
down_revision: str | None = "0002_outbox_unsent_partial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("machine_state") as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default=sa.text("0"), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("machine_state") as batch_op:
        batch_op.drop_column("version")
