"""The people's registration loop: entity contacts, invitation links, reminders sent, token use.

- ``entity_contacts``: a private contact (person, e-mail, phone) per entity, never published.
- ``entity_invitations``: one-use sign-in links for an entity, stored as a SHA-256 of their
  secret, with an expiry; redeeming one issues the entity's session token.
- ``reminders_sent``: which maintenance reminder (device, reason) went to whom and when, so a
  reminder is not repeated within its quiet period.
- ``api_tokens.last_used_at``: when a token was last accepted (kept to the minute).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("last_used_at", sa.DateTime()))
    op.create_table(
        "entity_contacts",
        sa.Column("entity_id", sa.Text(), primary_key=True),
        sa.Column("person", sa.Text()),
        sa.Column("email", sa.Text()),
        sa.Column("phone", sa.Text()),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
    )
    op.create_table(
        "entity_invitations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("entity_id", sa.Text(), nullable=False, index=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime()),
        sa.Column("revoked_at", sa.DateTime()),
        sa.Column("token_id", sa.Integer()),
    )
    op.create_table(
        "reminders_sent",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("entity_id", sa.Text(), nullable=False),
        sa.Column("device_id", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.Index("ix_reminders_sent_device", "device_id", "reason"),
    )


def downgrade() -> None:
    op.drop_table("reminders_sent")
    op.drop_table("entity_invitations")
    op.drop_table("entity_contacts")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("last_used_at")
