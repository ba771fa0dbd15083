"""A token role for the 112 dispatch centre: ``api_tokens.role`` may be ``dispatch``.

The CHECK constraint 0003 put on ``api_tokens.role`` is widened. A ``dispatch`` token reads only
the dispatch feed (``/api/dispatch/defibrillators.geojson``); like planners' and
administrators' tokens it names no entity (``ck_api_tokens_entity`` is unchanged).

On SQLite the table is rebuilt (Alembic batch mode) from its definition below, as 0006 left it;
PostgreSQL drops and adds the constraint in place.

The downgrade narrows the constraint back. A database that holds ``dispatch`` tokens cannot
keep them under the old one, and an older cardiomapa would not know what they may do: they are
deleted (credentials, not data; their creation stays in the audit log) and the downgrade logs
which.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-14
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("cardiomapa.migrations")

OLD_ROLES = ("entity", "planner", "admin")
NEW_ROLES = (*OLD_ROLES, "dispatch")
CHECK = "ck_api_tokens_role"


def _roles(values: Sequence[str]) -> str:
    return "role IN ({})".format(", ".join(f"'{value}'" for value in values))


def _tokens(roles: Sequence[str]) -> sa.Table:
    """``api_tokens`` as 0003 and 0006 made it, with ``roles`` allowed: batch mode on SQLite
    rebuilds it from this."""
    return sa.Table(
        "api_tokens",
        sa.MetaData(),
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("entity_id", sa.Text()),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime()),
        sa.Column("revoked_at", sa.DateTime()),
        sa.Column("last_used_at", sa.DateTime()),
        sa.CheckConstraint(_roles(roles), name=CHECK),
        sa.CheckConstraint(
            "(role = 'entity') = (entity_id IS NOT NULL)", name="ck_api_tokens_entity"
        ),
    )


def _replace_check(*, before: Sequence[str], after: Sequence[str]) -> None:
    with op.batch_alter_table("api_tokens", copy_from=_tokens(before)) as batch:
        # op.f: the name as written (the models' naming convention would prefix it again)
        batch.drop_constraint(op.f(CHECK), type_="check")
        batch.create_check_constraint(op.f(CHECK), _roles(after))


def upgrade() -> None:
    _replace_check(before=OLD_ROLES, after=NEW_ROLES)


def downgrade() -> None:
    bind = op.get_bind()
    tokens = sa.table("api_tokens", sa.column("id"), sa.column("role"), sa.column("label"))
    dispatch = tokens.c.role.not_in(OLD_ROLES)
    rows = bind.execute(
        sa.select(tokens.c.id, tokens.c.label).where(dispatch).order_by(tokens.c.id)
    ).all()
    if rows:
        bind.execute(tokens.delete().where(dispatch))
        log.warning(
            "Migración 0010 (vuelta atrás): se han borrado %d tokens del centro coordinador "
            "(rol dispatch), que la versión anterior no admite: %s.",
            len(rows), ", ".join(f"{row.id} ({row.label})" for row in rows),
        )  # fmt: skip
    _replace_check(before=NEW_ROLES, after=OLD_ROLES)
