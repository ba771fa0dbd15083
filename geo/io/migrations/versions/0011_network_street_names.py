"""Street names on the walking network: ``network_edges.name``, nullable.

Each edge keeps the ``name`` of the OSM way it comes from, so that a proposed site far from
every known place can still say which street it is on ("a 30 m de Calle Mayor"). A network
stored before this migration keeps its edges, with no names (``NULL``); loading the network
file again stores them.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-15
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("network_edges", sa.Column("name", sa.Text(), nullable=True))


def downgrade() -> None:
    # a plain DROP COLUMN (SQLite ≥ 3.35 has it): a batch rebuild would copy the geometry
    # column, which SpatiaLite registers apart
    op.drop_column("network_edges", "name")
