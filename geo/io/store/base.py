"""What every repository of the store shares: the engine, the clock, the transaction helper.

:class:`StoreBase` holds the state (an engine and a clock) and the helpers the repositories' methods
use; the functions below are the shared pieces of their writes (plain values, batches, checks of
the rows they point at, the revision counters caches read).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import geopandas as gpd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from geo.clock import SYSTEM_CLOCK, Clock
from geo.core.outputs import python_value
from geo.errors import InputError, NotFoundError
from geo.io.store.engine import CHANGES_CHANNEL, WRITE_OPTION
from geo.io.store.tables import DATA_REVISIONS, TABLES


class StoreBase:
    """The state every repository of :class:`geo.io.store.Store` works with: an engine and a
    clock."""

    def __init__(self, engine: Engine, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.engine = engine
        self.clock = clock

    def utcnow(self) -> dt.datetime:
        """Now by the store's clock, as the naive UTC timestamp both databases store."""
        return utcnow(self.clock)

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A write transaction: all or nothing; on SQLite it holds the write lock from BEGIN."""
        with self.engine.connect() as connection:
            connection.execution_options(**{WRITE_OPTION: True})
            with connection.begin():
                yield connection

    def _page(
        self,
        table: sa.Table,
        conditions: Sequence[sa.ColumnElement[bool]],
        order: sa.UnaryExpression[Any],
        limit: int,
        offset: int,
    ) -> tuple[list[dict[str, Any]], int]:
        with self.engine.connect() as connection:
            total = connection.execute(
                sa.select(sa.func.count()).select_from(table).where(*conditions)
            ).scalar_one()
            rows = connection.execute(
                sa.select(table).where(*conditions).order_by(order).limit(limit).offset(offset)
            ).all()
        return [dict(row._mapping) for row in rows], int(total)

    @staticmethod
    def _require_device(connection: Connection, device_id: str) -> None:
        table = TABLES["defibrillators"]
        if connection.execute(sa.select(table.c.id).where(table.c.id == device_id)).first():
            return
        msg = f"No existe el desfibrilador {device_id!r}."
        raise NotFoundError(msg)


@contextmanager
def device_must_exist(device_id: object) -> Iterator[None]:
    """The foreign key to the device (migration 0009) refused the row: the device was deleted
    after it was checked. Nothing was written; say so as a missing device."""
    try:
        yield
    except IntegrityError as exc:
        if not _foreign_key_violation(exc):
            raise
        msg = f"No existe el desfibrilador {str(device_id)!r}; no se ha guardado nada."
        raise NotFoundError(msg) from exc


def _foreign_key_violation(exc: IntegrityError) -> bool:
    """SQLite says "FOREIGN KEY constraint failed"; PostgreSQL's SQLSTATE is 23503."""
    code = getattr(exc.orig, "sqlstate", None)
    return code == "23503" or "FOREIGN KEY constraint failed" in str(exc.orig)


def require_entities(connection: Connection, entity_ids: Sequence[str | None]) -> None:
    wanted = sorted({entity_id for entity_id in entity_ids if entity_id is not None})
    if not wanted:
        return
    entities = TABLES["entities"]
    known = set(
        connection.execute(sa.select(entities.c.id).where(entities.c.id.in_(wanted))).scalars()
    )
    missing = [entity_id for entity_id in wanted if entity_id not in known]
    if missing:
        msg = f"No existe la entidad {missing[0]!r} en la capa de entidades."
        raise InputError(msg, code="unknown_entity", field="entity_id")


def check_source_keys(rows: Sequence[Mapping[str, Any]], *, missing: str, repeated: str) -> None:
    """Every imported row has a ``source_id``, and no ``(source, source_id)`` comes twice.

    ``repeated`` is formatted with the ``source`` and ``source_id`` found twice.
    """
    seen: set[tuple[str, str]] = set()
    for row in rows:
        key = (row["source"], row["source_id"])
        if row["source_id"] is None:
            raise InputError(missing, code="missing_field", field="source_id")
        if key in seen:
            msg = repeated.format(source=key[0], source_id=key[1])
            raise InputError(msg, code="duplicate_record", field="source_id")
        seen.add(key)


def batches(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def utcnow(clock: Clock = SYSTEM_CLOCK) -> dt.datetime:
    """Now by ``clock``, as the naive UTC timestamp both databases store."""
    return clock.now().astimezone(dt.UTC).replace(tzinfo=None)


def naive_utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def record_from_row(frame: gpd.GeoDataFrame, position: int) -> dict[str, Any]:
    """One row of a layer frame as a plain record (Python scalars, shapely ``geometry``)."""
    row = frame.iloc[position]
    return {name: python_value(row[name]) for name in frame.columns if name != "geometry"} | {
        "geometry": row.geometry
    }


def bump_revision(connection: Connection, name: str) -> None:
    connection.execute(
        DATA_REVISIONS.update()
        .where(DATA_REVISIONS.c.name == name)
        .values(revision=DATA_REVISIONS.c.revision + 1)
    )
    if connection.dialect.name == "postgresql":
        # Delivered at commit to every worker listening (geo.io.changes.PostgresWatch); SQLite's
        # workers notice a commit through ``PRAGMA data_version`` instead.
        connection.execute(sa.select(sa.func.pg_notify(CHANGES_CHANNEL, name)))
