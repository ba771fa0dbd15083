"""Citizens' reports about devices: a moderation queue, reviewed by staff, never applied."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geo.core.availability import DOWNGRADING_REPORTS, ReportFlag
from geo.errors import ConflictError, NotFoundError
from geo.io.store.audit import audit
from geo.io.store.base import StoreBase, bump_revision, device_must_exist
from geo.io.store.tables import PROBLEM_REPORTS


class ModerationRepository(StoreBase):
    """Queueing, listing, reviewing and resolving citizens' reports."""

    def insert_report(self, values: Mapping[str, Any], *, actor: str) -> int:
        """Queue a citizen's report about a device (status ``pending``); returns its id."""
        row = {**values, "status": "pending", "created_at": self.utcnow()}
        with device_must_exist(values["device_id"]), self._transaction() as connection:
            self._require_device(connection, str(values["device_id"]))
            key = connection.execute(PROBLEM_REPORTS.insert().values(**row)).inserted_primary_key
            assert key is not None
            report_id = int(key[0])
            public = {k: v for k, v in row.items() if k != "contact"}
            audit(
                connection, self.utcnow(), actor, "create", "report", str(report_id), None, public
            )
            if values["kind"] in DOWNGRADING_REPORTS:
                bump_revision(connection, "defibrillators")  # the map shows it at once
        return report_id

    def reports(
        self,
        *,
        status: Sequence[str] | None = None,
        device_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """Reports, newest first, and how many match in all."""
        table = PROBLEM_REPORTS
        conditions: list[sa.ColumnElement[bool]] = []
        if status:
            conditions.append(table.c.status.in_(list(status)))
        if device_id is not None:
            conditions.append(table.c.device_id == device_id)
        return self._page(table, conditions, table.c.id.desc(), limit, offset)

    def report(self, report_id: int) -> dict[str, Any] | None:
        """One citizen's report (with the reporter's contact: for staff only)."""
        table = PROBLEM_REPORTS
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(table).where(table.c.id == report_id)).first()
        return None if row is None else dict(row._mapping)

    def review_report(
        self, report_id: int, *, status: str, note: str | None, actor: str
    ) -> dict[str, Any]:
        """Accept or reject a pending report.

        Raises
        ------
        NotFoundError, ConflictError
            No such report, or it was already reviewed.
        """
        table = PROBLEM_REPORTS
        now = self.utcnow()
        with self._transaction() as connection:
            before = connection.execute(sa.select(table).where(table.c.id == report_id)).first()
            if before is None:
                msg = f"No existe el aviso {report_id}."
                raise NotFoundError(msg)
            changed = connection.execute(
                table.update()
                .where(table.c.id == report_id, table.c.status == "pending")
                .values(status=status, reviewed_at=now, reviewed_by=actor, review_note=note)
            ).rowcount
            if changed != 1:
                msg = f"El aviso {report_id} ya fue revisado ({before.status})."
                raise ConflictError(msg)
            after = connection.execute(sa.select(table).where(table.c.id == report_id)).one()
            audit(connection, self.utcnow(), actor, "review", "report", str(report_id),
                  dict(before._mapping), dict(after._mapping))  # fmt: skip
            if before.kind in DOWNGRADING_REPORTS:
                bump_revision(connection, "defibrillators")
        return dict(after._mapping)

    def downgrading_reports(self) -> dict[str, ReportFlag]:
        """The pending "missing"/"broken" reports, the earliest one per device.

        These take a device out of the usable set until staff review them or the device's
        entity confirms it (:data:`geo.core.availability.DOWNGRADING_REPORTS`).

        Returns
        -------
        dict
            ``{device_id: ReportFlag}``; ``reported_at`` is timezone-aware UTC.
        """
        table = PROBLEM_REPORTS
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(table.c.device_id, table.c.kind, table.c.created_at)
                .where(table.c.status == "pending", table.c.kind.in_(sorted(DOWNGRADING_REPORTS)))
                .order_by(table.c.created_at, table.c.id)
            ).all()
        flags: dict[str, ReportFlag] = {}
        for device_id, kind, created_at in rows:
            if device_id not in flags:
                flags[device_id] = ReportFlag(device_id, kind, created_at.replace(tzinfo=dt.UTC))
        return flags

    def resolve_reports(self, device_id: str, *, note: str, actor: str) -> list[int]:
        """Resolve (accept) the device's pending "missing"/"broken" reports, with ``note``.

        For when the device is known to be there and working (its entity checked it, staff put
        it back in service). Each report is audited; returns their ids.
        """
        with self._transaction() as connection:
            return close_reports(connection, device_id, note=note, actor=actor, at=self.utcnow())


def close_reports(
    connection: Connection, device_id: str, *, note: str, actor: str, at: dt.datetime
) -> list[int]:
    """Accept the device's pending "missing"/"broken" reports with ``note`` at ``at`` (naive
    UTC); audited."""
    table = PROBLEM_REPORTS
    pending = connection.execute(
        sa.select(table)
        .where(
            table.c.device_id == device_id,
            table.c.status == "pending",
            table.c.kind.in_(sorted(DOWNGRADING_REPORTS)),
        )
        .order_by(table.c.id)
    ).all()
    if not pending:
        return []
    now = at
    for before in pending:
        connection.execute(
            table.update()
            .where(table.c.id == before.id, table.c.status == "pending")
            .values(status="accepted", reviewed_at=now, reviewed_by=actor, review_note=note)
        )
        after = connection.execute(sa.select(table).where(table.c.id == before.id)).one()
        audit(connection, now, actor, "review", "report", str(before.id),
              dict(before._mapping), dict(after._mapping))  # fmt: skip
    bump_revision(connection, "defibrillators")
    return [int(row.id) for row in pending]
