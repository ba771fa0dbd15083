"""Walking network: the pedestrian street graph coverage can measure distances on.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "network_nodes",
        sa.Column("node_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=True), nullable=False),
    )
    op.create_table(
        "network_edges",
        sa.Column("edge_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("u_id", sa.BigInteger(), nullable=False),
        sa.Column("v_id", sa.BigInteger(), nullable=False),
        sa.Column("length_m", sa.Float(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("geom", Geometry("LINESTRING", srid=4326, spatial_index=True), nullable=False),
        sa.CheckConstraint("length_m >= 0", name=op.f("ck_network_edges_length_m")),
    )


def downgrade() -> None:
    op.drop_table("network_edges")
    op.drop_table("network_nodes")
