"""The audit log: every change made through the store, who made it, when, before and after."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geo.core.outputs import python_value
from geo.io.store.base import StoreBase
from geo.io.store.tables import AUDIT_LOG


class AuditRepository(StoreBase):
    """Reading the audit log (every repository writes it with :func:`audit`)."""

    def audit_entries(
        self,
        *,
        record_type: str | None = None,
        record_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """The audit log, newest first, and how many entries match in all."""
        table = AUDIT_LOG
        conditions: list[sa.ColumnElement[bool]] = []
        if record_type is not None:
            conditions.append(table.c.record_type == record_type)
        if record_id is not None:
            conditions.append(table.c.record_id == record_id)
        return self._page(table, conditions, table.c.id.desc(), limit, offset)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, shapely.Geometry):
        return shapely.geometry.mapping(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return python_value(value)


def audit(
    connection: Connection,
    at: dt.datetime,
    actor: str,
    action: str,
    record_type: str,
    record_id: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> None:
    connection.execute(
        AUDIT_LOG.insert().values(
            at=at,
            actor=actor,
            action=action,
            record_type=record_type,
            record_id=record_id,
            before=None if before is None else _jsonable(dict(before)),
            after=None if after is None else _jsonable(dict(after)),
        )
    )
