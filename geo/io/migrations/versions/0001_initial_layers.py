"""The five layers: CEAS zones, entities, defibrillators, cohousing sites, population units.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACCESS = ("yes", "permissive", "customers", "permit", "private", "no", "unknown")
DEVICE_STATUS = ("active", "out_of_service", "removed")
VERIFICATION = ("pending", "verified", "rejected")
ENTITY_KIND = (
    "residence", "day_centre", "association", "foundation", "clinic", "health_centre",
    "hospital", "pharmacy", "school", "sports_centre", "public_building", "social_centre",
    "company", "other",
)  # fmt: skip
COHOUSING_STATUS = ("idea", "planned", "building", "active")


def _choice(table: str, column: str, values: Sequence[str]) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{value}'" for value in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=op.f(f"ck_{table}_{column}"))


def _minimum(table: str, column: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(f"{column} >= 0", name=op.f(f"ck_{table}_{column}"))


def _geometry(kind: str) -> sa.Column:
    return sa.Column("geom", Geometry(kind, srid=4326, spatial_index=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "ceas_zones",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("centre_name", sa.Text()),
        sa.Column("centre_address", sa.Text()),
        sa.Column("source", sa.Text(), nullable=False),
        _geometry("MULTIPOLYGON"),
    )
    op.create_table(
        "entities",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("address", sa.Text()),
        sa.Column("member_since", sa.Date()),
        sa.Column("people_served", sa.Integer()),
        sa.Column("source", sa.Text(), nullable=False),
        _geometry("POINT"),
        _choice("entities", "kind", ENTITY_KIND),
        _minimum("entities", "people_served"),
    )
    op.create_table(
        "defibrillators",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("location_text", sa.Text()),
        sa.Column("address", sa.Text()),
        sa.Column("access", sa.String(32), nullable=False),
        sa.Column("opening_hours", sa.Text()),
        sa.Column("indoor", sa.Boolean()),
        sa.Column("level", sa.Text()),
        sa.Column(
            "operator_entity_id",
            sa.Text(),
            sa.ForeignKey("entities.id", ondelete="SET NULL"),
        ),
        sa.Column("phone", sa.Text()),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("verification", sa.String(32), nullable=False),
        sa.Column("installed_on", sa.Date()),
        sa.Column("removed_on", sa.Date()),
        sa.Column("check_date", sa.Date()),
        sa.Column("battery_expiry", sa.Date()),
        sa.Column("pads_expiry", sa.Date()),
        sa.Column("is_mobile", sa.Boolean(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("source_id", sa.Text()),
        sa.Column("tags", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=False),
        _geometry("POINT"),
        _choice("defibrillators", "access", ACCESS),
        _choice("defibrillators", "status", DEVICE_STATUS),
        _choice("defibrillators", "verification", VERIFICATION),
    )
    op.create_table(
        "cohousing_sites",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("address", sa.Text()),
        sa.Column("dwellings", sa.Integer()),
        sa.Column("residents", sa.Integer()),
        sa.Column("source", sa.Text(), nullable=False),
        _geometry("POINT"),
        _choice("cohousing_sites", "status", COHOUSING_STATUS),
        _minimum("cohousing_sites", "dwellings"),
        _minimum("cohousing_sites", "residents"),
    )
    op.create_table(
        "population_units",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("residents", sa.Integer(), nullable=False),
        sa.Column("residents_65_plus", sa.Integer(), nullable=False),
        sa.Column("section_code", sa.Text()),
        sa.Column("source", sa.Text(), nullable=False),
        _geometry("POINT"),
        _minimum("population_units", "residents"),
        _minimum("population_units", "residents_65_plus"),
    )


def downgrade() -> None:
    tables = ("population_units", "cohousing_sites", "defibrillators", "entities", "ceas_zones")
    for table in tables:
        op.drop_table(table)
