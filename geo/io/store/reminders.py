"""Maintenance reminders the mail server accepted: one row per device and reason."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from geo.io.store.audit import audit
from geo.io.store.base import StoreBase, naive_utc
from geo.io.store.tables import REMINDERS_SENT


class ReminderRepository(StoreBase):
    """Noting and listing the reminders sent."""

    def reminders_sent(self, *, since: dt.datetime) -> list[dict[str, Any]]:
        """Reminders sent at or after ``since`` (UTC): entity, device, reason, recipient, when."""
        table = REMINDERS_SENT
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(table).where(table.c.sent_at >= naive_utc(since)).order_by(table.c.id)
            ).all()
        return [dict(row._mapping) for row in rows]

    def record_reminders(
        self, rows: Sequence[Mapping[str, Any]], *, actor: str, at: dt.datetime | None = None
    ) -> None:
        """Note reminders the mail server accepted (``entity_id``, ``device_id``, ``reason``,
        ``recipient``), in one transaction."""
        if not rows:
            return
        now = naive_utc(at) or self.utcnow()
        values = [
            {"entity_id": r["entity_id"], "device_id": r["device_id"], "reason": r["reason"],
             "recipient": r["recipient"], "sent_at": now}
            for r in rows
        ]  # fmt: skip
        with self._transaction() as connection:
            connection.execute(REMINDERS_SENT.insert(), values)
            for entity_id in sorted({v["entity_id"] for v in values}):
                mine = [v for v in values if v["entity_id"] == entity_id]
                after = {
                    "recipient": mine[0]["recipient"],
                    "items": [{"device_id": v["device_id"], "reason": v["reason"]} for v in mine],
                    "sent_at": now,
                }
                audit(connection, self.utcnow(), actor, "send", "reminder", entity_id, None, after)
