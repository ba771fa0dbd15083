"""Past cardiac arrests: a private layer for the staff's analyses, never published.

One row per out-of-hospital cardiac arrest the emergency services attended: when (local time of
the city), the kind of place (home, public place, other), optional outcomes and a position
*coarsened* on import to the centre of a grid cell (``cell_m`` metres in the city's metric CRS):
the raw position is never stored. ``(source, source_id)`` identifies a row of an imported file.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLACE_TYPES = ("home", "public", "other")


def upgrade() -> None:
    allowed = ", ".join(f"'{place}'" for place in PLACE_TYPES)
    op.create_table(
        "cardiac_arrests",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("place_type", sa.String(16), nullable=False),
        sa.Column("bystander_cpr", sa.Boolean()),
        sa.Column("aed_used", sa.Boolean()),
        sa.Column("survived_30d", sa.Boolean()),
        sa.Column("discharged_alive", sa.Boolean()),
        sa.Column("cell_m", sa.Float(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("source_id", sa.Text()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=True), nullable=False),
        sa.CheckConstraint(
            f"place_type IN ({allowed})", name=op.f("ck_cardiac_arrests_place_type")
        ),
        sa.CheckConstraint("cell_m > 0", name=op.f("ck_cardiac_arrests_cell_m")),
        sa.UniqueConstraint("source", "source_id", name=op.f("uq_cardiac_arrests_source")),
    )
    op.create_index(op.f("ix_cardiac_arrests_occurred_at"), "cardiac_arrests", ["occurred_at"])


def downgrade() -> None:
    op.drop_table("cardiac_arrests")
