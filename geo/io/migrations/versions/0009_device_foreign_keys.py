"""Uses and problem reports point at devices that exist: foreign keys, and a quarantine.

``device_uses.device_id`` and ``problem_reports.device_id`` become foreign keys to
``defibrillators.id`` (no action on delete: a device with uses or reports cannot be deleted, the
database refuses). ``device_private_notes`` already had one (0003).

A database written before this revision may hold uses or reports of devices that no longer exist
(``load --replace`` used to delete every device). They cannot take the key, and they are not
deleted either: each one is moved, whole (as JSON), to ``quarantined_records`` with the reason,
and the upgrade logs how many and of which devices. Restoring the device (from a backup) and
copying the row back is a manual decision. The downgrade puts them back where they were.

On SQLite the two tables are rebuilt (Alembic batch mode) from their definitions below, with
``PRAGMA foreign_keys = ON`` (set on every connection by ``geo.io.store``) checking the copy.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects.postgresql import JSONB

from geo.clock import SYSTEM_CLOCK

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("cardiomapa.migrations")

QUARANTINE = "quarantined_records"
#: Table → the kind of record quarantined_records names it by.
CHILDREN = {"device_uses": "use", "problem_reports": "report"}
_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
REPORT_KINDS = ("missing", "broken", "moved", "wrong_hours", "other")
REPORT_STATUS = ("pending", "accepted", "rejected")
SEX = ("female", "male", "unknown")


def _choice(table: str, column: str, values: Sequence[str]) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{value}'" for value in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=f"ck_{table}_{column}")


def _tables(*, keyed: bool) -> dict[str, sa.Table]:
    """The two tables as 0003 made them (``keyed``: with this revision's foreign key): batch mode
    on SQLite rebuilds them from these."""
    meta = sa.MetaData()
    sa.Table("defibrillators", meta, sa.Column("id", sa.Text(), primary_key=True))

    def device_id(table: str) -> sa.Column[Any]:
        if not keyed:
            return sa.Column("device_id", sa.Text(), nullable=False, index=True)
        key = sa.ForeignKey("defibrillators.id", name=f"fk_{table}_device_id")
        return sa.Column("device_id", sa.Text(), key, nullable=False, index=True)

    reports = sa.Table(
        "problem_reports",
        meta,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        device_id("problem_reports"),
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
    uses = sa.Table(
        "device_uses",
        meta,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        device_id("device_uses"),
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
        sa.CheckConstraint("people_attended >= 1", name="ck_device_uses_people_attended"),
        sa.CheckConstraint("shocks >= 0", name="ck_device_uses_shocks"),
        sa.CheckConstraint(
            "patient_age_years >= 0 AND patient_age_years <= 120",
            name="ck_device_uses_patient_age_years",
        ),
        _choice("device_uses", "patient_sex", SEX),
    )
    return {"device_uses": uses, "problem_reports": reports}


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime | dt.date) else value


def upgrade() -> None:
    bind = op.get_bind()
    quarantine = op.create_table(
        QUARANTINE,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("record_type", sa.String(32), nullable=False),
        sa.Column("record_id", sa.Text(), nullable=False),
        sa.Column("device_id", sa.Text(), nullable=False),
        sa.Column("data", _JSON, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("quarantined_at", sa.DateTime(), nullable=False),
    )
    # The clock of the command or server that migrates (a test's pinned one too).
    clock = context.config.attributes.get("clock", SYSTEM_CLOCK)
    now = clock.now().astimezone(dt.UTC).replace(tzinfo=None)
    tables = _tables(keyed=False)
    devices = sa.table("defibrillators", sa.column("id"))
    for name, kind in CHILDREN.items():
        table = tables[name]
        orphan = ~sa.exists().where(devices.c.id == table.c.device_id)
        rows = bind.execute(sa.select(table).where(orphan).order_by(table.c.id)).all()
        if not rows:
            continue
        reason = (
            f"La migración 0009 añade la clave ajena {name}.device_id → defibrillators.id y "
            "este registro apuntaba a un desfibrilador que no existe."
        )
        bind.execute(
            quarantine.insert(),
            [
                {
                    "record_type": kind,
                    "record_id": str(row.id),
                    "device_id": row.device_id,
                    "data": {key: _jsonable(value) for key, value in row._mapping.items()},
                    "reason": reason,
                    "quarantined_at": now,
                }
                for row in rows
            ],
        )
        bind.execute(table.delete().where(table.c.id.in_([row.id for row in rows])))
        devices_named = sorted({str(row.device_id) for row in rows})
        shown = ", ".join(devices_named[:10]) + (" …" if len(devices_named) > 10 else "")
        log.warning(
            "Migración 0009: %d registros de %s apuntaban a desfibriladores que no existen "
            "(%s); se han movido a la tabla %s (cuarentena), no se ha borrado nada.",
            len(rows), name, shown, QUARANTINE,
        )  # fmt: skip
    for name, table in tables.items():
        with op.batch_alter_table(name, copy_from=table) as batch:
            batch.create_foreign_key(
                f"fk_{name}_device_id", "defibrillators", ["device_id"], ["id"]
            )
        _keep_index(name)


def downgrade() -> None:
    bind = op.get_bind()
    tables = _tables(keyed=True)
    for name, table in tables.items():
        with op.batch_alter_table(name, copy_from=table) as batch:
            batch.drop_constraint(f"fk_{name}_device_id", type_="foreignkey")
        _keep_index(name)
    quarantine = sa.table(
        QUARANTINE,
        sa.column("id"),
        sa.column("record_type"),
        sa.column("data", _JSON),
    )
    for name, kind in CHILDREN.items():
        table = tables[name]
        rows = bind.execute(
            sa.select(quarantine.c.data)
            .where(quarantine.c.record_type == kind)
            .order_by(quarantine.c.id)
        ).all()
        if rows:
            bind.execute(table.insert(), [_row(table, dict(row.data)) for row in rows])
            if bind.dialect.name == "postgresql":  # explicit ids: move the sequence past them
                bind.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"(SELECT MAX(id) FROM {name}))"
                    )
                )
    op.drop_table(QUARANTINE)


def _keep_index(name: str) -> None:
    """The device_id index 0003 made: a rebuilt SQLite table loses it (batch mode)."""
    index = f"ix_{name}_device_id"
    if index not in {i["name"] for i in sa.inspect(op.get_bind()).get_indexes(name)}:
        op.create_index(index, name, ["device_id"])


def _row(table: sa.Table, data: dict[str, Any]) -> dict[str, Any]:
    """A quarantined row as it was: ISO texts back into datetimes."""
    for column in table.columns:
        value = data.get(column.name)
        if isinstance(column.type, sa.DateTime) and isinstance(value, str):
            data[column.name] = dt.datetime.fromisoformat(value)
    return data
