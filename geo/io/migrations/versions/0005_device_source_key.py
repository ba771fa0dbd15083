"""Imported devices are recognised by where they come from: ``(source, source_id)`` is unique.

Importing the same file again (OpenStreetMap, a regional register) must update the devices it
brought, never add them twice. Devices without ``source_id`` (sample data, registrations through
the API) are not constrained: a partial unique index, which SQLite and PostgreSQL both support.

A database that already holds two devices with the same source and source id cannot take the
index: the upgrade stops and names them, so they are merged by hand first.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_defibrillators_source_id"
WHERE = "source_id IS NOT NULL"


def upgrade() -> None:
    repeated = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT source, source_id, COUNT(*) FROM defibrillators "
                f"WHERE {WHERE} GROUP BY source, source_id HAVING COUNT(*) > 1"
            )
        )
        .all()
    )
    if repeated:
        listed = "; ".join(f"{source!r} {source_id!r} ({n})" for source, source_id, n in repeated)
        msg = (
            "No se puede actualizar la base de datos: hay desfibriladores repetidos con la misma "
            f"procedencia (source, source_id): {listed}. Unifíquelos y vuelva a intentarlo."
        )
        raise RuntimeError(msg)
    op.create_index(
        INDEX,
        "defibrillators",
        ["source", "source_id"],
        unique=True,
        sqlite_where=sa.text(WHERE),
        postgresql_where=sa.text(WHERE),
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="defibrillators")
