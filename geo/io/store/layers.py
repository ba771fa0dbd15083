"""The layers: read and filtered in the database, loaded all at once, replaced one by one."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
import sqlalchemy as sa
from geoalchemy2.shape import from_shape
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from geo.core.layers import CEAS, LAYERS_BY_NAME, Layers, LayerSchema, to_frame
from geo.core.outputs import python_value
from geo.errors import DatabaseNotEmptyError, StorageError
from geo.io.store.audit import audit
from geo.io.store.base import StoreBase, batches, bump_revision
from geo.io.store.tables import (
    AUDIT_LOG,
    DATA_REVISIONS,
    DEVICE_REFERENCES,
    ENTITY_REFERENCES,
    LOAD_LOCK_WAIT_S,
    LOAD_LOCKED_TABLES,
    SRID,
    TABLES,
)


@dataclass(frozen=True)
class LayerSummary:
    """What one stored layer holds: its row count and how many rows come from each source."""

    name: str
    title: str
    count: int
    sources: Mapping[str, int]


class LayerRepository(StoreBase):
    """The layers as GeoDataFrames (EPSG:4326), and the counters bumped by every write to them."""

    # reading --------------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Rows per layer."""
        with self.engine.connect() as connection:
            return _counts(connection)

    def is_empty(self) -> bool:
        """True when no layer holds any row."""
        return not any(self.counts().values())

    def summary(self) -> list[LayerSummary]:
        """Per layer: title, row count and rows per source."""
        result = []
        with self.engine.connect() as connection:
            for name, table in TABLES.items():
                rows = connection.execute(
                    sa.select(table.c.source, sa.func.count())
                    .group_by(table.c.source)
                    .order_by(table.c.source)
                ).all()
                sources = {source: count for source, count in rows}
                schema = LAYERS_BY_NAME[name]
                result.append(LayerSummary(name, schema.title, sum(sources.values()), sources))
        return result

    def read_layer(self, name: str) -> gpd.GeoDataFrame:
        """A stored layer as a GeoDataFrame in EPSG:4326, ordered by id.

        Columns are the layer schema's fields plus ``geometry``, exactly as
        :func:`geo.io.files.read_layer` returns them for a file.

        Raises
        ------
        KeyError
            If ``name`` is not a layer.
        """
        return self.query_layer(name)

    def query_layer(
        self,
        name: str,
        *,
        ids: Sequence[str] | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        where: Mapping[str, Sequence[Any]] | None = None,
        with_version: bool = False,
    ) -> gpd.GeoDataFrame:
        """Rows of a layer, filtered in the database, ordered by id.

        Parameters
        ----------
        ids
            Only these ids.
        bbox
            ``(min_lon, min_lat, max_lon, max_lat)`` in EPSG:4326: rows whose geometry's bounding
            box intersects it.
        where
            Field name → accepted values (e.g. ``{"verification": ["verified"]}``).
        with_version
            Add the ``version`` column (defibrillators only).
        """
        schema = LAYERS_BY_NAME[name]
        table = TABLES[name]
        columns = [table.c[field_name] for field_name in schema.field_names]
        if with_version:
            columns.append(table.c.version)
        query = sa.select(*columns, sa.func.ST_AsBinary(table.c.geom).label("wkb"))
        if ids is not None:
            query = query.where(table.c.id.in_(list(ids)))
        for field_name, values in (where or {}).items():
            query = query.where(table.c[field_name].in_(list(values)))
        if bbox is not None:
            query = query.where(self._intersects_bbox(table, bbox))
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(table.c.id)).all()
        data = {name: [row._mapping[name] for row in rows] for name in schema.field_names}
        geometry = shapely.from_wkb([bytes(row.wkb) for row in rows])
        frame = to_frame(data, list(geometry), schema)
        if with_version:
            frame.insert(len(frame.columns) - 1, "version", [int(row.version) for row in rows])
        return frame

    def _intersects_bbox(
        self, table: sa.Table, bbox: tuple[float, float, float, float]
    ) -> sa.ColumnElement[bool]:
        # The two spatial dialects name their bounding-box operators differently.
        if self.engine.dialect.name == "postgresql":
            envelope = sa.func.ST_MakeEnvelope(*bbox, SRID)
            return table.c.geom.op("&&", return_type=sa.Boolean)(envelope)
        return sa.func.MbrIntersects(table.c.geom, sa.func.BuildMbr(*bbox, SRID)) == 1

    def read_layers(self) -> Layers:
        """Every stored layer."""
        return Layers({name: self.read_layer(name) for name in TABLES})

    def revision(self, name: str) -> int:
        """A counter bumped by every write to layer ``name``: caches compare it to refresh."""
        with self.engine.connect() as connection:
            value = connection.execute(
                sa.select(DATA_REVISIONS.c.revision).where(DATA_REVISIONS.c.name == name)
            ).scalar()
        return int(value or 0)

    # writing --------------------------------------------------------------------------------------

    def load(
        self,
        layers: Layers,
        *,
        replace: bool = False,
        batch_size: int = 1000,
        on_rows: Callable[[str, int], None] | None = None,
        kept: dict[str, list[str]] | None = None,
        actor: str = "cli",
    ) -> dict[str, int]:
        """Store validated layers in one transaction: all of them or, on any error, none.

        With ``replace``, what a previous load wrote is replaced, and what people wrote is kept
        (:func:`_device_kept`, :func:`_entity_kept`): a device someone registered, imported,
        edited or wrote about (a use, a report, a private note, a reminder) stays as it is
        stored, and a row of ``layers`` with its id or its ``(source, source_id)`` is not
        loaded; an entity still named by what stays (its devices, tokens, contacts,
        invitations, training, reminders) is updated from ``layers`` or, when ``layers`` lacks
        it, kept. The registers (tokens,
        notes, uses, reports, training, contacts, arrests, audit…) are never touched. The
        other layers (CEAS zones, cohousing, population) are replaced whole.

        The transaction holds the write lock from its start (SQLite ``BEGIN IMMEDIATE``; on
        PostgreSQL the tables are locked against writers, readers go on), so a write that
        commits while the load runs waits for it and then applies to what it loaded; none is
        lost. The load itself is audited (one entry, ``record_type="layers"``).

        Parameters
        ----------
        layers
            Validated layers, as :func:`geo.io.files.read_layers` returns them.
        replace
            Replace what a previous load wrote. Without it, loading into a database that
            already holds rows is refused.
        batch_size
            Rows per INSERT statement.
        on_rows
            Called with ``(layer name, rows written)`` after each batch, for progress bars.
        kept
            When given, receives ids by outcome: ``devices`` (stored devices kept as they
            were), ``skipped`` (ids of rows of ``layers`` not loaded because they are one of
            those devices) and ``entities`` (stored entities kept although ``layers`` lacks
            them).
        actor
            Who loads, for the audit log.

        Returns
        -------
        dict
            Rows written per layer.

        Raises
        ------
        DatabaseNotEmptyError
            If the database holds rows and ``replace`` is false.
        """
        written: dict[str, int] = {}
        outcome: dict[str, list[str]] = {"devices": [], "skipped": [], "entities": []}
        with self._load_transaction() as connection:
            before = _counts(connection)
            present = {name: n for name, n in before.items() if n}
            if present and not replace:
                detail = ", ".join(f"{name} ({n})" for name, n in present.items())
                msg = (
                    f"La base de datos ya contiene capas: {detail}. Use --replace para "
                    "sustituirlas; no se ha modificado nada."
                )
                raise DatabaseNotEmptyError(msg)
            devices, entities = TABLES["defibrillators"], TABLES["entities"]
            for name in ("population", "cohousing"):
                connection.execute(TABLES[name].delete())
            kept_devices = connection.execute(
                sa.select(devices.c.id, devices.c.source, devices.c.source_id)
                .where(_device_kept())
                .order_by(devices.c.id)
            ).all()
            connection.execute(devices.delete().where(sa.not_(_device_kept())))
            connection.execute(entities.delete().where(sa.not_(_entity_kept())))
            connection.execute(TABLES["ceas"].delete())
            pinned_entities = set(connection.execute(sa.select(entities.c.id)).scalars())
            kept_ids = {row.id for row in kept_devices}
            kept_keys = {(r.source, r.source_id) for r in kept_devices if r.source_id is not None}
            outcome["devices"] = sorted(kept_ids)
            for name, table in TABLES.items():
                if name not in layers.frames:
                    continue
                written[name] = 0
                frame = layers[name]
                if name == "defibrillators":
                    skip = frame["id"].isin(kept_ids) | pd.Series(
                        [(s, i) in kept_keys for s, i in zip(frame["source"], frame["source_id"],
                                                             strict=True)],
                        index=frame.index,
                    )  # fmt: skip
                    outcome["skipped"] = sorted(str(i) for i in frame.loc[skip, "id"])
                    frame = frame.loc[~skip]
                elif name == "entities":
                    pinned = frame["id"].isin(pinned_entities)
                    for row in _rows(frame.loc[pinned], LAYERS_BY_NAME[name]):
                        connection.execute(table.update().where(table.c.id == row["id"]), row)
                    written[name] += int(pinned.sum())
                    outcome["entities"] = sorted(pinned_entities - set(frame["id"]))
                    frame = frame.loc[~pinned]
                for batch in batches(_rows(frame, LAYERS_BY_NAME[name]), batch_size):
                    connection.execute(table.insert(), batch)
                    written[name] += len(batch)
                    if on_rows is not None:
                        on_rows(name, len(batch))
            if "entities" not in layers.frames:
                outcome["entities"] = sorted(pinned_entities)
            audit(connection, self.utcnow(), actor, "replace" if present else "load", "layers",
                  "load", before, {"written": written, **outcome})  # fmt: skip
            for name in TABLES:
                bump_revision(connection, name)
        if kept is not None:
            kept.update(outcome)
        return written

    @contextmanager
    def _load_transaction(self) -> Iterator[Connection]:
        """A write transaction that keeps every other writer out until it ends.

        SQLite: ``BEGIN IMMEDIATE`` already does. PostgreSQL: the layers and the registers that
        point at them are locked ``SHARE ROW EXCLUSIVE`` (readers go on, writers wait), all at
        once with ``NOWAIT`` and retried, so the load never holds some locks while waiting for
        others (no deadlock with a writer that took them in another order).
        """
        if self.engine.dialect.name != "postgresql":
            with self._transaction() as connection:
                yield connection
            return
        names = ", ".join(table.name for table in LOAD_LOCKED_TABLES)
        deadline = time.monotonic() + LOAD_LOCK_WAIT_S
        with self.engine.connect() as connection:
            while True:
                transaction = connection.begin()
                try:
                    connection.exec_driver_sql(
                        f"LOCK TABLE {names} IN SHARE ROW EXCLUSIVE MODE NOWAIT"
                    )
                    break
                except OperationalError as exc:
                    transaction.rollback()
                    if time.monotonic() > deadline:
                        msg = (
                            f"Otros procesos escriben sin parar en la base de datos; no se pudo "
                            f"bloquearla para cargar en {LOAD_LOCK_WAIT_S:.0f} s. No se ha "
                            "modificado nada; repita la carga."
                        )
                        raise StorageError(msg) from exc
                    time.sleep(0.05)
            with transaction:
                yield connection

    def replace_layer(
        self, name: str, frame: gpd.GeoDataFrame, *, actor: str, source: str | None = None
    ) -> tuple[int, int]:
        """Replace every row of one layer by ``frame``, in one transaction; audited.

        The other layers are untouched. ``frame`` must be a validated layer frame (the schema's
        columns plus ``geometry``, EPSG:4326). Rows of other layers that point at this one keep
        their foreign-key behaviour (a layer others reference may refuse, and then nothing
        changes).

        Returns
        -------
        tuple
            Rows before and after.

        Raises
        ------
        KeyError
            If ``name`` is not a layer.
        """
        schema, table = LAYERS_BY_NAME[name], TABLES[name]
        with self._transaction() as connection:
            before = int(
                connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            )
            connection.execute(table.delete())
            for batch in batches(_rows(frame, schema), 1000):
                connection.execute(table.insert(), batch)
            summary = {"rows": len(frame), "source": source}
            audit(
                connection,
                self.utcnow(),
                actor,
                "replace",
                "layer",
                name,
                {"rows": before},
                summary,
            )
            bump_revision(connection, name)
        return before, len(frame)


def _device_kept() -> sa.ColumnElement[bool]:
    """A stored device a load must keep: someone registered, imported or edited it (the audit
    log names it, or its version moved), or wrote about it (private notes, uses, reports,
    reminders). A load writes no per-device audit entry, so what it wrote matches none of this."""
    devices = TABLES["defibrillators"]
    audited = sa.select(AUDIT_LOG.c.record_id).where(AUDIT_LOG.c.record_type == "device")
    return sa.or_(
        devices.c.version > 1,
        devices.c.id.in_(audited),
        *(devices.c.id.in_(sa.select(table.c.device_id)) for table in DEVICE_REFERENCES),
    )


def _entity_kept() -> sa.ColumnElement[bool]:
    """A stored entity a load must keep (or update in place, never delete): a device still
    stored is its (the foreign key would empty ``operator_entity_id``), or a register names it."""
    entities, devices = TABLES["entities"], TABLES["defibrillators"]
    # NULLs left out: ``NOT (id IN (…, NULL))`` is NULL, and the entity would never be deleted.
    named = [
        sa.select(column).where(column.is_not(None))
        for column in (devices.c.operator_entity_id, *(t.c.entity_id for t in ENTITY_REFERENCES))
    ]
    named.append(sa.select(AUDIT_LOG.c.record_id).where(AUDIT_LOG.c.record_type == "entity"))
    return sa.or_(*(entities.c.id.in_(query) for query in named))


def _counts(connection: Connection) -> dict[str, int]:
    return {
        name: int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
        for name, table in TABLES.items()
    }


def _rows(frame: gpd.GeoDataFrame, schema: LayerSchema) -> Iterator[dict[str, Any]]:
    names = schema.field_names
    multi = schema is CEAS
    for values, geom in zip(
        frame[list(names)].itertuples(index=False, name=None), frame.geometry, strict=True
    ):
        row = {name: python_value(value) for name, value in zip(names, values, strict=True)}
        if multi and geom.geom_type == "Polygon":
            geom = shapely.MultiPolygon([geom])
        row["geom"] = from_shape(geom, srid=SRID)
        yield row
