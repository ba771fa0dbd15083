"""The training register (plan action 1.3): one row per training action held."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geo.core.outputs import python_value
from geo.errors import ConflictError, NotFoundError
from geo.io.store.audit import audit
from geo.io.store.base import StoreBase, check_source_keys, require_entities
from geo.io.store.tables import TRAINING_ACTIONS, TRAINING_FIELDS


class TrainingRepository(StoreBase):
    """Registering, importing, listing and deleting training actions."""

    def insert_training(self, values: Mapping[str, Any], *, actor: str) -> int:
        """Store one validated training action; returns its id. Audited (``training``).

        Parameters
        ----------
        values
            :data:`TRAINING_FIELDS` plus ``source`` and ``source_id`` (may be ``None``).

        Raises
        ------
        InputError
            Its entity is not in the entities layer (``unknown_entity``).
        ConflictError
            A record with the same ``source`` and ``source_id`` exists.
        """
        row = _training_row(values)
        with self._transaction() as connection:
            require_entities(connection, [row["entity_id"]])
            key = (row["source"], row["source_id"])
            if row["source_id"] is not None and key in _trainings_by_key(connection, [row]):
                msg = (
                    f"Ya existe una formación de {row['source']!r} con id {row['source_id']!r}; "
                    "no se ha guardado nada."
                )
                raise ConflictError(msg)
            row |= {"created_at": self.utcnow(), "created_by": actor}
            new = connection.execute(TRAINING_ACTIONS.insert().values(**row)).inserted_primary_key
            assert new is not None
            training_id = int(new[0])
            audit(
                connection, self.utcnow(), actor, "create", "training", str(training_id), None, row
            )
        return training_id

    def upsert_trainings(
        self, rows: Sequence[Mapping[str, Any]], *, actor: str, dry_run: bool = False
    ) -> dict[str, int]:
        """Insert or update training actions matched on ``(source, source_id)``, all or nothing,
        and return how many were ``inserted``, ``updated`` and ``unchanged``.

        ``rows`` hold :data:`TRAINING_FIELDS` plus ``source`` and ``source_id`` (never ``None``
        here). A row whose key is not stored is inserted; one whose key is stored with other
        values replaces them (``created_at`` and ``created_by`` stay those of the first import);
        one stored with the same values is left alone. Every insert and update is audited. A
        ``dry_run`` only counts.

        Raises :class:`InputError` on a row without ``source_id``, two rows with the same key, or
        an unknown entity.
        """
        prepared = [_training_row(row) for row in rows]
        check_source_keys(
            prepared,
            missing="Cada fila importada necesita source_id para reconocerla al reimportar.",
            repeated="La formación {source_id!r} de {source!r} aparece dos veces.",
        )
        counts = {"inserted": 0, "updated": 0, "unchanged": 0}
        if dry_run:
            with self.engine.connect() as connection:
                require_entities(connection, [row["entity_id"] for row in prepared])
                stored = _trainings_by_key(connection, prepared)
            for row in prepared:
                counts[_change(stored.get((row["source"], row["source_id"])), row)] += 1
            return counts
        table = TRAINING_ACTIONS
        with self._transaction() as connection:
            require_entities(connection, [row["entity_id"] for row in prepared])
            stored = _trainings_by_key(connection, prepared)
            now = self.utcnow()
            for row in prepared:
                before = stored.get((row["source"], row["source_id"]))
                change = _change(before, row)
                counts[change] += 1
                if change == "inserted":
                    new = {**row, "created_at": now, "created_by": actor}
                    added = connection.execute(table.insert().values(**new)).inserted_primary_key
                    assert added is not None
                    audit(
                        connection,
                        self.utcnow(),
                        actor,
                        "create",
                        "training",
                        str(added[0]),
                        None,
                        new,
                    )
                elif change == "updated":
                    assert before is not None
                    connection.execute(
                        table.update().where(table.c.id == before["id"]).values(**row)
                    )
                    after = {**before, **row}
                    audit(connection, self.utcnow(), actor, "update", "training",
                          str(before["id"]), before, after)  # fmt: skip
        return counts

    def training_actions(
        self,
        *,
        year: int | None = None,
        entity_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """Training actions, newest first (by date held, then id), and how many match in all.

        Parameters
        ----------
        year
            Only actions held in this calendar year.
        entity_id
            Only actions of this entity.
        """
        table = TRAINING_ACTIONS
        conditions: list[sa.ColumnElement[bool]] = []
        if year is not None:
            conditions.append(table.c.held_on.between(dt.date(year, 1, 1), dt.date(year, 12, 31)))
        if entity_id is not None:
            conditions.append(table.c.entity_id == entity_id)
        with self.engine.connect() as connection:
            total = connection.execute(
                sa.select(sa.func.count()).select_from(table).where(*conditions)
            ).scalar_one()
            rows = connection.execute(
                sa.select(table)
                .where(*conditions)
                .order_by(table.c.held_on.desc(), table.c.id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
        return [dict(row._mapping) for row in rows], int(total)

    def training(self, training_id: int) -> dict[str, Any] | None:
        """One training action by id, or ``None``."""
        table = TRAINING_ACTIONS
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(table).where(table.c.id == training_id)).first()
        return None if row is None else dict(row._mapping)

    def delete_training(self, training_id: int, *, actor: str) -> None:
        """Delete a training action; audited with what it held.

        Raises
        ------
        NotFoundError
            No action has that id.
        """
        table = TRAINING_ACTIONS
        with self._transaction() as connection:
            before = connection.execute(sa.select(table).where(table.c.id == training_id)).first()
            if before is None:
                msg = f"No existe la formación {training_id}."
                raise NotFoundError(msg)
            connection.execute(table.delete().where(table.c.id == training_id))
            audit(connection, self.utcnow(), actor, "delete", "training", str(training_id),
                  dict(before._mapping), None)  # fmt: skip

    def training_frame(self) -> pd.DataFrame:
        """The training register as a table for the indicators, ordered by date held and id.

        Returns
        -------
        pandas.DataFrame
            Columns ``id`` (int64), ``held_on`` (object: :class:`datetime.date`), ``entity_id``
            (object: str or ``None``), ``place``, ``kind`` (object: str, one of
            :data:`TRAINING_KINDS`), ``people_trained`` (int64) and ``source`` (object: str).
            Empty, with these columns and dtypes, when nothing is registered.
        """
        table = TRAINING_ACTIONS
        names = ("id", "held_on", "entity_id", "place", "kind", "people_trained", "source")
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(*(table.c[name] for name in names)).order_by(table.c.held_on, table.c.id)
            ).all()
        columns = {name: [row._mapping[name] for row in rows] for name in names}
        integers = ("id", "people_trained")
        return pd.DataFrame(
            {
                name: pd.Series(values, dtype="int64" if name in integers else "object")
                for name, values in columns.items()
            }
        )


def _training_row(values: Mapping[str, Any]) -> dict[str, Any]:
    """The stored columns of a training action (fields and provenance), as plain values."""
    names = (*TRAINING_FIELDS, "source", "source_id")
    return {name: python_value(values.get(name)) for name in names}


def _trainings_by_key(
    connection: Connection, rows: Sequence[Mapping[str, Any]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """Stored training actions with the sources of ``rows``, by ``(source, source_id)``."""
    sources = sorted({str(row["source"]) for row in rows})
    if not sources:
        return {}
    table = TRAINING_ACTIONS
    stored = connection.execute(
        sa.select(table).where(table.c.source.in_(sources), table.c.source_id.is_not(None))
    ).all()
    return {(row.source, row.source_id): dict(row._mapping) for row in stored}


def _change(before: Mapping[str, Any] | None, row: Mapping[str, Any]) -> str:
    if before is None:
        return "inserted"
    same = all(before[name] == row[name] for name in TRAINING_FIELDS)
    return "unchanged" if same else "updated"
