"""Entities' private contacts: for staff and the entity only, never public."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from geo.io.store.audit import audit
from geo.io.store.base import StoreBase, require_entities
from geo.io.store.tables import CONTACT_FIELDS, ENTITY_CONTACTS


class ContactRepository(StoreBase):
    """Reading and setting entities' private contacts."""

    def contacts(self, entity_ids: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """Private contacts by entity id (``person``, ``email``, ``phone``, ``updated_*``)."""
        table = ENTITY_CONTACTS
        query = sa.select(table)
        if entity_ids is not None:
            query = query.where(table.c.entity_id.in_(list(entity_ids)))
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return {row.entity_id: dict(row._mapping) for row in rows}

    def contact(self, entity_id: str) -> dict[str, Any] | None:
        return self.contacts([entity_id]).get(entity_id)

    def set_contacts(self, rows: Sequence[Mapping[str, Any]], *, actor: str) -> dict[str, str]:
        """Insert or replace contacts (``entity_id`` + :data:`CONTACT_FIELDS`) in one transaction.

        Returns
        -------
        dict
            Entity id → ``insert``, ``update`` or ``unchanged``.

        Raises
        ------
        InputError
            An entity is not in the entities layer (nothing is written).
        """
        table = ENTITY_CONTACTS
        result: dict[str, str] = {}
        now = self.utcnow()
        with self._transaction() as connection:
            require_entities(connection, [str(row["entity_id"]) for row in rows])
            for row in rows:
                entity_id = str(row["entity_id"])
                values = {name: row.get(name) or None for name in CONTACT_FIELDS}
                before = connection.execute(
                    sa.select(table).where(table.c.entity_id == entity_id)
                ).first()
                if before is not None and all(
                    getattr(before, name) == values[name] for name in CONTACT_FIELDS
                ):
                    result[entity_id] = "unchanged"
                    continue
                stamp = {"updated_at": now, "updated_by": actor}
                if before is None:
                    connection.execute(
                        table.insert().values(entity_id=entity_id, **values, **stamp)
                    )
                    result[entity_id] = "insert"
                else:
                    connection.execute(
                        table.update()
                        .where(table.c.entity_id == entity_id)
                        .values(**values, **stamp)
                    )
                    result[entity_id] = "update"
                old = None if before is None else {n: getattr(before, n) for n in CONTACT_FIELDS}
                audit(
                    connection,
                    self.utcnow(),
                    actor,
                    result[entity_id],
                    "contact",
                    entity_id,
                    old,
                    values,
                )
        return result
