"""Throttling shared by every worker: what each client did recently, kept only as long as needed.

- ``throttle_events``: one row per counted action of a client (a citizen's report, …) under a
  ``scope``, with an optional ``subject`` (the device reported) so a limit can count distinct
  subjects. The client is stored as a SHA-256 of its address, never the address itself, and rows
  older than their window are deleted as new ones arrive.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "throttle_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("client_key", sa.String(64), nullable=False),
        sa.Column("subject", sa.Text()),
        sa.Column("at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_throttle_events_client", "throttle_events", ["scope", "client_key", "at"])
    op.create_index("ix_throttle_events_at", "throttle_events", ["at"])


def downgrade() -> None:
    op.drop_table("throttle_events")
