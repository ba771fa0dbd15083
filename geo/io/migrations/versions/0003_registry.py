"""The device registry behind the API: versions, private notes, tokens, reports, uses, audit log.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES = ("entity", "planner", "admin")
REPORT_KINDS = ("missing", "broken", "moved", "wrong_hours", "other")
REPORT_STATUS = ("pending", "accepted", "rejected")
SEX = ("female", "male", "unknown")
LAYERS = ("ceas", "entities", "defibrillators", "cohousing", "population")


def _choice(table: str, column: str, values: Sequence[str]) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{value}'" for value in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=op.f(f"ck_{table}_{column}"))


def upgrade() -> None:
    op.add_column(
        "defibrillators",
        sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1")),
    )
    op.create_table(
        "device_private_notes",
        sa.Column(
            "device_id",
            sa.Text(),
            sa.ForeignKey("defibrillators.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("cabinet_code", sa.Text()),
        sa.Column("key_holder", sa.Text()),
        sa.Column("notes", sa.Text()),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("entity_id", sa.Text()),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime()),
        sa.Column("revoked_at", sa.DateTime()),
        _choice("api_tokens", "role", ROLES),
        sa.CheckConstraint(
            "(role = 'entity') = (entity_id IS NOT NULL)", name=op.f("ck_api_tokens_entity")
        ),
    )
    op.create_table(
        "problem_reports",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.Text(), nullable=False, index=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("contact", sa.Text()),
        sa.Column("lon", sa.Float()),
        sa.Column("lat", sa.Float()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("reviewed_at", sa.DateTime()),
        sa.Column("reviewed_by", sa.Text()),
        sa.Column("review_note", sa.Text()),
        _choice("problem_reports", "kind", REPORT_KINDS),
        _choice("problem_reports", "status", REPORT_STATUS),
    )
    op.create_table(
        "device_uses",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.Text(), nullable=False, index=True),
        sa.Column("used_at", sa.DateTime(), nullable=False),
        sa.Column("people_attended", sa.Integer(), nullable=False),
        sa.Column("emergency_called", sa.Boolean()),
        sa.Column("shock_delivered", sa.Boolean()),
        sa.Column("shocks", sa.Integer()),
        sa.Column("circulation_recovered", sa.Boolean()),
        sa.Column("transferred_to_hospital", sa.Boolean()),
        sa.Column("rescuer_trained", sa.Boolean()),
        sa.Column("patient_sex", sa.String(16)),
        sa.Column("patient_age_years", sa.Integer()),
        sa.Column("notes", sa.Text()),
        sa.Column("reported_by", sa.Text(), nullable=False),
        sa.Column("reported_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("people_attended >= 1", name=op.f("ck_device_uses_people_attended")),
        sa.CheckConstraint("shocks >= 0", name=op.f("ck_device_uses_shocks")),
        sa.CheckConstraint(
            "patient_age_years >= 0 AND patient_age_years <= 120",
            name=op.f("ck_device_uses_patient_age_years"),
        ),
        _choice("device_uses", "patient_sex", SEX),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("record_type", sa.String(32), nullable=False),
        sa.Column("record_id", sa.Text(), nullable=False),
        sa.Column("before", sa.JSON().with_variant(JSONB(), "postgresql")),
        sa.Column("after", sa.JSON().with_variant(JSONB(), "postgresql")),
    )
    op.create_index(op.f("ix_audit_log_record"), "audit_log", ["record_type", "record_id"])
    revisions = op.create_table(
        "data_revisions",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("revision", sa.Integer(), nullable=False),
    )
    op.bulk_insert(revisions, [{"name": name, "revision": 0} for name in LAYERS])


def downgrade() -> None:
    for table in (
        "data_revisions", "audit_log", "device_uses", "problem_reports", "api_tokens",
        "device_private_notes",
    ):  # fmt: skip
        op.drop_table(table)
    op.drop_column("defibrillators", "version")
