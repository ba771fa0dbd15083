"""The training register: actions of training in basic life support and defibrillator use.

Action 1.3 of the plan "Palencia, Ciudad de los Cuidados". ``entity_id`` names the cluster entity
that organised or hosted an action but is not a foreign key, for the reason given for
``api_tokens`` in 0003: reloading the layers must not silently delete the register with them. The
entity is checked against the entities layer when a record is written.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = ("bls_aed", "aed", "bls", "refresher")


def upgrade() -> None:
    allowed = ", ".join(f"'{kind}'" for kind in KINDS)
    op.create_table(
        "training_actions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("held_on", sa.Date(), nullable=False),
        sa.Column("entity_id", sa.Text()),
        sa.Column("place", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("people_trained", sa.Integer(), nullable=False),
        sa.Column("trainer", sa.Text()),
        sa.Column("notes", sa.Text()),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("source_id", sa.Text()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.CheckConstraint(f"kind IN ({allowed})", name=op.f("ck_training_actions_kind")),
        sa.CheckConstraint("people_trained > 0", name=op.f("ck_training_actions_people_trained")),
        sa.UniqueConstraint("source", "source_id", name=op.f("uq_training_actions_source")),
    )
    op.create_index(op.f("ix_training_actions_held_on"), "training_actions", ["held_on"])


def downgrade() -> None:
    op.drop_table("training_actions")
