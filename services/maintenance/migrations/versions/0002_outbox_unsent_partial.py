"""outbox: partial indexes, unsent rows by id (the relay) and sent rows by published_at (the purge)

Revision ID: 0002_outbox_unsent_partial
Revises: 0001
Create Date: 2026-11-22
"""
from collections.abc import Sequence

from alembic import op

from shared.outbox import downgrade_indexes, upgrade_indexes

revision: str = "0002_outbox_unsent_partial"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    upgrade_indexes(op)


def downgrade() -> None:
    downgrade_indexes(op)
