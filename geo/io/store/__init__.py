"""Storage: the one repository every other part of cardiomapa uses, on SpatiaLite and PostGIS.

The tables are derived from the layer schemas in :mod:`geo.core.layers` (one definition of what a
layer
holds); their history lives in Alembic migrations under ``geo/io/migrations`` so that a database
made
by one version is upgraded, never dropped. The same code runs on both databases:

- ``sqlite:///var/cardiomapa.sqlite`` — an embedded SpatiaLite file (the default);
- ``postgresql+psycopg://user@host/db`` — PostGIS, for production.

Geometry is stored in EPSG:4326. Metric work happens in :mod:`geo` on GeoDataFrames, not here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from alembic import command as command  # tests patch ``geo.io.store.command.upgrade``
from geoalchemy2.shape import from_shape
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from geo.clock import SYSTEM_CLOCK, Clock
from geo.core.availability import DOWNGRADING_REPORTS, ReportFlag
from geo.core.layers import (
    CEAS,
    DEFIBRILLATORS,
    LAYERS_BY_NAME,
    WGS84,
    Layers,
    LayerSchema,
    to_frame,
)
from geo.core.network import WalkingNetwork, network_from_frames, network_to_frames
from geo.errors import (
    ConflictError,
    DatabaseNotEmptyError,
    InputError,
    NotFoundError,
    StorageError,
)
from geo.io.store.engine import (
    _WRITE_OPTION,
    CHANGES_CHANNEL,
    MIGRATIONS_DIR,
    alembic_config,
    create_db_engine,
    head_revision,
    migrate,
    schema_revision,
)
from geo.io.store.tables import (
    API_TOKENS,
    ARREST_COLUMNS,
    ARREST_PLACE_TYPES,
    AUDIT_LOG,
    CARDIAC_ARRESTS,
    CONTACT_FIELDS,
    DATA_REVISIONS,
    DEVICE_PRIVATE_NOTES,
    DEVICE_REFERENCES,
    DEVICE_SOURCE_INDEX,
    DEVICE_USES,
    ENTITY_CONTACTS,
    ENTITY_INVITATIONS,
    ENTITY_REFERENCES,
    LOAD_LOCK_WAIT_S,
    LOAD_LOCKED_TABLES,
    NETWORK_EDGES,
    NETWORK_NODES,
    PATIENT_SEX,
    PRIVATE_NOTE_FIELDS,
    PROBLEM_REPORTS,
    QUARANTINED_RECORDS,
    REMINDERS_SENT,
    REPORT_KINDS,
    REVIEW_STATUS,
    ROLES,
    SRID,
    TABLE_NAMES,
    TABLES,
    THROTTLE_EVENTS,
    TRAINING_ACTIONS,
    TRAINING_FIELDS,
    USE_FIELDS,
    metadata,
)

__all__ = [
    "API_TOKENS",
    "ARREST_COLUMNS",
    "ARREST_PLACE_TYPES",
    "AUDIT_LOG",
    "CARDIAC_ARRESTS",
    "CHANGES_CHANNEL",
    "CONTACT_FIELDS",
    "DATA_REVISIONS",
    "DEVICE_PRIVATE_NOTES",
    "DEVICE_REFERENCES",
    "DEVICE_SOURCE_INDEX",
    "DEVICE_USES",
    "ENTITY_CONTACTS",
    "ENTITY_INVITATIONS",
    "ENTITY_REFERENCES",
    "LOAD_LOCKED_TABLES",
    "LOAD_LOCK_WAIT_S",
    "MIGRATIONS_DIR",
    "NETWORK_EDGES",
    "NETWORK_NODES",
    "PATIENT_SEX",
    "PRIVATE_NOTE_FIELDS",
    "PROBLEM_REPORTS",
    "QUARANTINED_RECORDS",
    "REMINDERS_SENT",
    "REPORT_KINDS",
    "REVIEW_STATUS",
    "ROLES",
    "SRID",
    "TABLES",
    "TABLE_NAMES",
    "THROTTLE_EVENTS",
    "TRAINING_ACTIONS",
    "TRAINING_FIELDS",
    "USE_FIELDS",
    "InvitationRecord",
    "LayerSummary",
    "Store",
    "Throttle",
    "ThrottleRefusal",
    "TokenRecord",
    "alembic_config",
    "create_db_engine",
    "head_revision",
    "metadata",
    "migrate",
    "record_from_row",
    "schema_revision",
    "utcnow",
]


# --- the repository ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Throttle:
    """A limit on one client: at most ``limit`` events of ``scope`` in any ``window_s`` seconds.

    With ``distinct``, what is limited is the number of distinct subjects (e.g. devices) of those
    events: repeating a subject already counted in the window does not count again.
    """

    scope: str
    limit: int
    window_s: float
    distinct: bool = False


@dataclass(frozen=True)
class ThrottleRefusal:
    """Why :meth:`Store.throttle` refused: the limit reached and the seconds until it allows."""

    throttle: Throttle
    retry_after_s: int


@dataclass(frozen=True)
class LayerSummary:
    """What one stored layer holds: its row count and how many rows come from each source."""

    name: str
    title: str
    count: int
    sources: Mapping[str, int]


class Store:
    """The repository of cardiomapa's layers, identical on SpatiaLite and PostGIS.

    Build it with :meth:`open` (which also migrates the schema) or from an existing engine.
    """

    def __init__(self, engine: Engine, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.engine = engine
        self.clock = clock

    @classmethod
    def open(cls, url: str, *, clock: Clock = SYSTEM_CLOCK) -> Store:
        """Connect to ``url`` and bring its schema up to date.

        ``clock`` stamps every time the store writes (created, reviewed, revoked, audited…):
        the app and the CLI pass the clock they run on.
        """
        engine = create_db_engine(url)
        migrate(engine, clock=clock)
        return cls(engine, clock=clock)

    def utcnow(self) -> dt.datetime:
        """Now by the store's clock, as the naive UTC timestamp both databases store."""
        return utcnow(self.clock)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A write transaction: all or nothing; on SQLite it holds the write lock from BEGIN."""
        with self.engine.connect() as connection:
            connection.execution_options(**{_WRITE_OPTION: True})
            with connection.begin():
                yield connection

    # reading ----------------------------------------------------------------------------------

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
        :func:`geo.core.layers.read_layer` returns them for a file.

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

    # writing ----------------------------------------------------------------------------------

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
            Validated layers, as :func:`geo.core.layers.read_layers` returns them.
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
                for batch in _batches(_rows(frame, LAYERS_BY_NAME[name]), batch_size):
                    connection.execute(table.insert(), batch)
                    written[name] += len(batch)
                    if on_rows is not None:
                        on_rows(name, len(batch))
            if "entities" not in layers.frames:
                outcome["entities"] = sorted(pinned_entities)
            _audit(connection, self.utcnow(), actor, "replace" if present else "load", "layers",
                   "load", before, {"written": written, **outcome})  # fmt: skip
            for name in TABLES:
                _bump_revision(connection, name)
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
            for batch in _batches(_rows(frame, schema), 1000):
                connection.execute(table.insert(), batch)
            summary = {"rows": len(frame), "source": source}
            _audit(
                connection,
                self.utcnow(),
                actor,
                "replace",
                "layer",
                name,
                {"rows": before},
                summary,
            )
            _bump_revision(connection, name)
        return before, len(frame)

    # the walking network ---------------------------------------------------------------------

    def save_network(
        self,
        network: WalkingNetwork,
        *,
        batch_size: int = 5000,
        on_rows: Callable[[str, int], None] | None = None,
    ) -> tuple[int, int]:
        """Replace the stored walking network with ``network``, in one transaction.

        Returns
        -------
        tuple
            Nodes and edges written.
        """
        nodes, edges = (frame.to_crs(WGS84) for frame in network_to_frames(network))
        node_rows = (
            {"node_id": int(node_id), "source": network.source, "geom": from_shape(geom, SRID)}
            for node_id, geom in zip(nodes["node_id"], nodes.geometry, strict=True)
        )
        edge_rows = (
            {"edge_id": index, "u_id": int(u), "v_id": int(v), "length_m": float(length),
             "source": network.source, "geom": from_shape(geom, SRID)}
            for index, (u, v, length, geom) in enumerate(
                zip(edges["u_id"], edges["v_id"], edges["length_m"], edges.geometry, strict=True)
            )
        )  # fmt: skip
        with self._transaction() as connection:
            connection.execute(NETWORK_EDGES.delete())
            connection.execute(NETWORK_NODES.delete())
            for name, table, rows in (("nodos", NETWORK_NODES, node_rows),
                                      ("tramos", NETWORK_EDGES, edge_rows)):  # fmt: skip
                for batch in _batches(rows, batch_size):
                    connection.execute(table.insert(), batch)
                    if on_rows is not None:
                        on_rows(name, len(batch))
        return len(nodes), len(edges)

    def read_network(self, *, crs: str) -> WalkingNetwork | None:
        """The stored walking network projected to ``crs``, or ``None`` when none is stored."""
        with self.engine.connect() as connection:
            node_rows = connection.execute(
                sa.select(NETWORK_NODES.c.node_id, NETWORK_NODES.c.source,
                          sa.func.ST_AsBinary(NETWORK_NODES.c.geom).label("wkb"))
                .order_by(NETWORK_NODES.c.node_id)
            ).all()  # fmt: skip
            edge_rows = connection.execute(
                sa.select(
                    NETWORK_EDGES.c.u_id, NETWORK_EDGES.c.v_id, NETWORK_EDGES.c.length_m
                ).order_by(NETWORK_EDGES.c.edge_id)
            ).all()
        if not node_rows or not edge_rows:
            return None
        nodes = gpd.GeoDataFrame(
            {"node_id": np.array([row.node_id for row in node_rows], dtype=np.int64)},
            geometry=shapely.from_wkb([bytes(row.wkb) for row in node_rows]),
            crs=WGS84,
        ).to_crs(crs)
        edges = gpd.GeoDataFrame(
            {
                "u_id": np.array([row.u_id for row in edge_rows], dtype=np.int64),
                "v_id": np.array([row.v_id for row in edge_rows], dtype=np.int64),
                "length_m": np.array([row.length_m for row in edge_rows], dtype=np.float64),
            },
            geometry=[None] * len(edge_rows),
            crs=crs,
        )
        return network_from_frames(nodes, edges, source=node_rows[0].source)

    def clear_network(self) -> None:
        """Remove the stored walking network."""
        with self._transaction() as connection:
            connection.execute(NETWORK_EDGES.delete())
            connection.execute(NETWORK_NODES.delete())

    # the device registry (what the API writes) -----------------------------------------------

    def revision(self, name: str) -> int:
        """A counter bumped by every write to layer ``name``: caches compare it to refresh."""
        with self.engine.connect() as connection:
            value = connection.execute(
                sa.select(DATA_REVISIONS.c.revision).where(DATA_REVISIONS.c.name == name)
            ).scalar()
        return int(value or 0)

    def device(self, device_id: str) -> dict[str, Any] | None:
        """One defibrillator: its schema fields, ``geometry`` (EPSG:4326) and ``version``."""
        frame = self.query_layer("defibrillators", ids=[device_id], with_version=True)
        if frame.empty:
            return None
        return record_from_row(frame, 0)

    def private_notes(self, device_ids: Sequence[str]) -> dict[str, dict[str, str | None]]:
        """Emergency-only notes (cabinet code, key holder…) of these devices, by device id."""
        table = DEVICE_PRIVATE_NOTES
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(table).where(table.c.device_id.in_(list(device_ids)))
            ).all()
        return {
            row.device_id: {name: row._mapping[name] for name in PRIVATE_NOTE_FIELDS}
            for row in rows
        }

    def insert_device(
        self,
        record: Mapping[str, Any],
        *,
        actor: str,
        private: Mapping[str, str | None] | None = None,
    ) -> None:
        """Store a validated device (version 1) and its private notes; audited, all or nothing.

        Raises
        ------
        ConflictError
            A device with that id exists.
        """
        table = TABLES["defibrillators"]
        schema = DEFIBRILLATORS
        row = {name: _plain(record[name]) for name in schema.field_names}
        row["geom"] = from_shape(record["geometry"], srid=SRID)
        with self._transaction() as connection:
            exists = connection.execute(
                sa.select(table.c.id).where(table.c.id == record["id"])
            ).first()
            if exists is not None:
                msg = f"Ya existe un desfibrilador con id {record['id']!r}."
                raise ConflictError(msg)
            connection.execute(table.insert().values(**row, version=1))
            if private:
                connection.execute(
                    DEVICE_PRIVATE_NOTES.insert().values(device_id=record["id"], **private)
                )
            after = {**record, "version": 1}
            _audit(connection, self.utcnow(), actor, "create", "device", record["id"], None, after)
            _bump_revision(connection, "defibrillators")

    def update_device(
        self,
        before: Mapping[str, Any],
        after: Mapping[str, Any],
        *,
        actor: str,
        action: str = "update",
        private: Mapping[str, str | None] | None = None,
        resolve_reports: str | None = None,
    ) -> int:
        """Replace a device read at ``before["version"]`` by ``after``, if nobody changed it since.

        The write is conditional on the version (optimistic concurrency): of two writers that
        read the same version, one wins and the other gets :class:`ConflictError` and must read
        again. ``private`` replaces the private notes when given. ``resolve_reports``, when
        given, is the note with which the device's pending "missing"/"broken" reports are
        resolved in the same transaction (the device was confirmed: see :meth:`resolve_reports`).

        Returns
        -------
        int
            The new version.

        Raises
        ------
        NotFoundError
            The device no longer exists.
        ConflictError
            Someone changed it after ``before`` was read.
        """
        with self._transaction() as connection:
            return _update_device(
                connection, before, after, actor=actor, action=action, private=private,
                resolve_reports=resolve_reports, at=self.utcnow(),
            )  # fmt: skip

    def upsert_devices(
        self,
        records: Sequence[Mapping[str, Any]],
        *,
        actor: str,
        dry_run: bool = False,
        on_row: Callable[[], None] | None = None,
        changes: dict[str, list[str]] | None = None,
    ) -> dict[str, int]:
        """Insert or update imported devices matched on ``(source, source_id)``, all or nothing.

        ``changes``, when given, receives the ids of the records by outcome (``inserted``,
        ``updated``, ``unchanged``), also in a dry run.

        A record whose key is not stored is inserted under its ``id`` (version 1). One whose key
        is stored with other values (any field or the position) replaces them under the *stored*
        id (the record's ``id`` is ignored) and bumps the version; one stored with the same
        values is left alone. Every insert and update is audited; the defibrillators revision is
        bumped once when anything changed, so caches refresh.

        Parameters
        ----------
        records
            Validated devices: every :data:`geo.core.layers.DEFIBRILLATORS` field and ``geometry``
            (shapely, EPSG:4326), ``source_id`` never ``None``. An optional ``version`` is the
            stored version the record was prepared from: the update is then conditional on it.
        dry_run
            Only count what would change; write nothing.
        on_row
            Called after each record is written, for progress bars.

        Returns
        -------
        dict
            ``{"inserted": n, "updated": n, "unchanged": n}``.

        Raises
        ------
        InputError
            A record without ``source_id``, or two records with the same key.
        ConflictError
            A new record's id is taken, or a device changed after it was read (import again).
        """
        _check_source_keys(
            records,
            missing="Cada desfibrilador importado necesita source_id para reconocerlo.",
            repeated="El desfibrilador {source_id!r} de {source!r} aparece dos veces.",
        )
        counts = {"inserted": 0, "updated": 0, "unchanged": 0}
        if dry_run:
            with self.engine.connect() as connection:
                stored = _devices_by_key(connection, records)
            for record in records:
                change = _device_change(stored.get(_device_key(record)), record)
                counts[change] += 1
                if changes is not None:
                    changes.setdefault(change, []).append(str(record["id"]))
            return counts
        table = TABLES["defibrillators"]
        try:
            with self._transaction() as connection:
                stored = _devices_by_key(connection, records)
                for record in records:
                    before = stored.get(_device_key(record))
                    change = _device_change(before, record)
                    counts[change] += 1
                    if changes is not None:
                        changes.setdefault(change, []).append(str(record["id"]))
                    row = {name: _plain(record[name]) for name in DEFIBRILLATORS.field_names}
                    row["geom"] = from_shape(record["geometry"], srid=SRID)
                    after = {name: record[name] for name in DEFIBRILLATORS.field_names}
                    after["geometry"] = record["geometry"]
                    if change == "inserted":
                        taken = connection.execute(
                            sa.select(table.c.id).where(table.c.id == row["id"])
                        ).first()
                        if taken is not None:
                            msg = f"Ya existe un desfibrilador con id {row['id']!r}."
                            raise ConflictError(msg)
                        connection.execute(table.insert().values(**row, version=1))
                        _audit(connection, self.utcnow(), actor, "create", "device", row["id"],
                               None, {**after, "version": 1})  # fmt: skip
                    elif change == "updated":
                        assert before is not None
                        self._update_imported(connection, before, record, row, after, actor)
                    if on_row is not None:
                        on_row()
                if counts["inserted"] or counts["updated"]:
                    _bump_revision(connection, "defibrillators")
        except IntegrityError as exc:
            msg = (
                "Otro proceso ha guardado a la vez desfibriladores de la misma procedencia; "
                "no se ha guardado nada. Repita la importación."
            )
            raise ConflictError(msg) from exc
        return counts

    def _update_imported(
        self,
        connection: Connection,
        before: Mapping[str, Any],
        record: Mapping[str, Any],
        row: dict[str, Any],
        after: dict[str, Any],
        actor: str,
    ) -> None:
        table = TABLES["defibrillators"]
        device_id, version = before["id"], int(before["version"])
        expected = record.get("version")
        row["id"] = after["id"] = device_id
        changed = connection.execute(
            table.update()
            .where(table.c.id == device_id, table.c.version == int(expected or version))
            .values(**row, version=version + 1)
        ).rowcount
        if changed != 1:
            msg = (
                f"El desfibrilador {device_id!r} cambió durante la importación (versión "
                f"{version}, se esperaba {expected}); no se ha guardado nada. Repita la "
                "importación."
            )
            raise ConflictError(msg)
        _audit(connection, self.utcnow(), actor, "update", "device", device_id, before,
               {**after, "version": version + 1})  # fmt: skip

    # tokens -------------------------------------------------------------------------------

    def insert_token(
        self,
        *,
        secret_hash: str,
        role: str,
        entity_id: str | None,
        label: str,
        expires_at: dt.datetime | None,
        actor: str,
    ) -> int:
        """Store a token's hash; returns its id. An entity token's entity must exist."""
        with self._transaction() as connection:
            if entity_id is not None:
                entities = TABLES["entities"]
                known = connection.execute(
                    sa.select(entities.c.id).where(entities.c.id == entity_id)
                ).first()
                if known is None:
                    msg = f"No existe la entidad {entity_id!r} en la capa de entidades."
                    raise NotFoundError(msg)
            token_id = connection.execute(
                API_TOKENS.insert().values(
                    secret_hash=secret_hash,
                    role=role,
                    entity_id=entity_id,
                    label=label,
                    created_at=self.utcnow(),
                    expires_at=_naive_utc(expires_at),
                )
            ).inserted_primary_key
            assert token_id is not None
            new_id = int(token_id[0])
            after = {"role": role, "entity_id": entity_id, "label": label,
                     "expires_at": expires_at}  # fmt: skip
            _audit(connection, self.utcnow(), actor, "create", "token", str(new_id), None, after)
        return new_id

    def token(self, token_id: int) -> TokenRecord | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(API_TOKENS).where(API_TOKENS.c.id == token_id)
            ).first()
        return None if row is None else TokenRecord(**row._mapping)

    def tokens(self) -> list[TokenRecord]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(API_TOKENS).order_by(API_TOKENS.c.id)).all()
        return [TokenRecord(**row._mapping) for row in rows]

    def revoke_token(self, token_id: int, *, actor: str) -> TokenRecord:
        """Revoke a token now (idempotent: revoking twice keeps the first date)."""
        with self._transaction() as connection:
            row = connection.execute(
                sa.select(API_TOKENS).where(API_TOKENS.c.id == token_id)
            ).first()
            if row is None:
                msg = f"No existe el token {token_id}."
                raise NotFoundError(msg)
            if row.revoked_at is None:
                now = self.utcnow()
                connection.execute(
                    API_TOKENS.update().where(API_TOKENS.c.id == token_id).values(revoked_at=now)
                )
                _audit(connection, self.utcnow(), actor, "revoke", "token", str(token_id), None,
                       {"revoked_at": now})  # fmt: skip
        revoked = self.token(token_id)
        assert revoked is not None
        return revoked

    def touch_token(self, token_id: int, *, at: dt.datetime | None = None) -> None:
        """Note that a token was just accepted (written at most once a minute per token)."""
        now = _naive_utc(at) or self.utcnow()
        table = API_TOKENS
        with self._transaction() as connection:
            connection.execute(
                table.update()
                .where(
                    table.c.id == token_id,
                    sa.or_(
                        table.c.last_used_at.is_(None),
                        table.c.last_used_at < now - dt.timedelta(minutes=1),
                    ),
                )
                .values(last_used_at=now)
            )

    def entity_tokens(self, entity_id: str) -> list[TokenRecord]:
        """Every token of one entity, oldest first."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(API_TOKENS)
                .where(API_TOKENS.c.entity_id == entity_id)
                .order_by(API_TOKENS.c.id)
            ).all()
        return [TokenRecord(**row._mapping) for row in rows]

    def revoke_entity_access(self, entity_id: str, *, actor: str) -> tuple[int, int]:
        """Revoke at once every live token and open invitation of an entity.

        Returns
        -------
        tuple of int
            Tokens revoked, invitations revoked.
        """
        now = self.utcnow()
        with self._transaction() as connection:
            tokens = [
                row.id
                for row in connection.execute(
                    sa.select(API_TOKENS.c.id).where(
                        API_TOKENS.c.entity_id == entity_id, API_TOKENS.c.revoked_at.is_(None)
                    )
                )
            ]
            invitations = [
                row.id
                for row in connection.execute(
                    sa.select(ENTITY_INVITATIONS.c.id).where(
                        ENTITY_INVITATIONS.c.entity_id == entity_id,
                        ENTITY_INVITATIONS.c.used_at.is_(None),
                        ENTITY_INVITATIONS.c.revoked_at.is_(None),
                    )
                )
            ]
            if tokens:
                connection.execute(
                    API_TOKENS.update().where(API_TOKENS.c.id.in_(tokens)).values(revoked_at=now)
                )
            if invitations:
                connection.execute(
                    ENTITY_INVITATIONS.update()
                    .where(ENTITY_INVITATIONS.c.id.in_(invitations))
                    .values(revoked_at=now)
                )
            _audit(connection, self.utcnow(), actor, "revoke_access", "entity", entity_id, None,
                   {"tokens": tokens, "invitations": invitations, "revoked_at": now})  # fmt: skip
        return len(tokens), len(invitations)

    # invitations ----------------------------------------------------------------------------

    def insert_invitation(
        self, *, entity_id: str, secret_hash: str, expires_at: dt.datetime, actor: str
    ) -> int:
        """Store an invitation's hash; returns its id. The entity must exist."""
        with self._transaction() as connection:
            _require_entities(connection, [entity_id])
            key = connection.execute(
                ENTITY_INVITATIONS.insert().values(
                    entity_id=entity_id,
                    secret_hash=secret_hash,
                    created_at=self.utcnow(),
                    created_by=actor,
                    expires_at=_naive_utc(expires_at),
                )
            ).inserted_primary_key
            assert key is not None
            new_id = int(key[0])
            _audit(connection, self.utcnow(), actor, "create", "invitation", str(new_id), None,
                   {"entity_id": entity_id, "expires_at": expires_at})  # fmt: skip
        return new_id

    def invitation(self, invitation_id: int) -> InvitationRecord | None:
        table = ENTITY_INVITATIONS
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(table).where(table.c.id == invitation_id)).first()
        return None if row is None else InvitationRecord(**row._mapping)

    def invitations(self, *, entity_id: str | None = None) -> list[InvitationRecord]:
        """Invitations, newest first."""
        table = ENTITY_INVITATIONS
        query = sa.select(table).order_by(table.c.id.desc())
        if entity_id is not None:
            query = query.where(table.c.entity_id == entity_id)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [InvitationRecord(**row._mapping) for row in rows]

    def revoke_invitation(self, invitation_id: int, *, actor: str) -> InvitationRecord:
        """Revoke one invitation now, if still open (used or revoked ones are left as they are).

        Raises
        ------
        NotFoundError
            No such invitation.
        """
        table = ENTITY_INVITATIONS
        with self._transaction() as connection:
            row = connection.execute(sa.select(table).where(table.c.id == invitation_id)).first()
            if row is None:
                msg = f"No existe la invitación {invitation_id}."
                raise NotFoundError(msg)
            if row.used_at is None and row.revoked_at is None:
                now = self.utcnow()
                connection.execute(
                    table.update().where(table.c.id == invitation_id).values(revoked_at=now)
                )
                _audit(connection, now, actor, "revoke", "invitation", str(invitation_id), None,
                       {"entity_id": row.entity_id, "revoked_at": now})  # fmt: skip
        revoked = self.invitation(invitation_id)
        assert revoked is not None
        return revoked

    def redeem_invitation(
        self,
        invitation_id: int,
        *,
        secret_hash: str,
        label: str,
        expires_at: dt.datetime,
        actor: str,
    ) -> int:
        """Use an open invitation once and issue its entity a token; returns the token id.

        Both happen in one transaction: two tabs opening the same link get one session.

        Raises
        ------
        ConflictError
            The invitation was used, revoked or expired meanwhile.
        """
        table = ENTITY_INVITATIONS
        now = self.utcnow()
        with self._transaction() as connection:
            row = connection.execute(sa.select(table).where(table.c.id == invitation_id)).one()
            used = connection.execute(
                table.update()
                .where(
                    table.c.id == invitation_id,
                    table.c.used_at.is_(None),
                    table.c.revoked_at.is_(None),
                    table.c.expires_at > now,
                )
                .values(used_at=now)
            ).rowcount
            if used != 1:
                msg = "Esta invitación ya no es válida (usada, revocada o caducada)."
                raise ConflictError(msg)
            key = connection.execute(
                API_TOKENS.insert().values(
                    secret_hash=secret_hash,
                    role="entity",
                    entity_id=row.entity_id,
                    label=label,
                    created_at=now,
                    expires_at=_naive_utc(expires_at),
                )
            ).inserted_primary_key
            assert key is not None
            token_id = int(key[0])
            connection.execute(
                table.update().where(table.c.id == invitation_id).values(token_id=token_id)
            )
            _audit(connection, self.utcnow(), actor, "redeem", "invitation", str(invitation_id),
                   None, {"entity_id": row.entity_id, "token_id": token_id})  # fmt: skip
            _audit(connection, self.utcnow(), actor, "create", "token", str(token_id), None,
                   {"role": "entity", "entity_id": row.entity_id, "label": label,
                    "expires_at": expires_at})  # fmt: skip
        return token_id

    # entity contacts (private) --------------------------------------------------------------

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
            _require_entities(connection, [str(row["entity_id"]) for row in rows])
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
                _audit(
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

    # maintenance reminders ------------------------------------------------------------------

    def reminders_sent(self, *, since: dt.datetime) -> list[dict[str, Any]]:
        """Reminders sent at or after ``since`` (UTC): entity, device, reason, recipient, when."""
        table = REMINDERS_SENT
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(table).where(table.c.sent_at >= _naive_utc(since)).order_by(table.c.id)
            ).all()
        return [dict(row._mapping) for row in rows]

    def record_reminders(
        self, rows: Sequence[Mapping[str, Any]], *, actor: str, at: dt.datetime | None = None
    ) -> None:
        """Note reminders the mail server accepted (``entity_id``, ``device_id``, ``reason``,
        ``recipient``), in one transaction."""
        if not rows:
            return
        now = _naive_utc(at) or self.utcnow()
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
                _audit(connection, self.utcnow(), actor, "send", "reminder", entity_id, None, after)

    # reports, uses, audit -------------------------------------------------------------------

    def insert_report(self, values: Mapping[str, Any], *, actor: str) -> int:
        """Queue a citizen's report about a device (status ``pending``); returns its id."""
        row = {**values, "status": "pending", "created_at": self.utcnow()}
        with _device_must_exist(values["device_id"]), self._transaction() as connection:
            self._require_device(connection, str(values["device_id"]))
            key = connection.execute(PROBLEM_REPORTS.insert().values(**row)).inserted_primary_key
            assert key is not None
            report_id = int(key[0])
            public = {k: v for k, v in row.items() if k != "contact"}
            _audit(
                connection, self.utcnow(), actor, "create", "report", str(report_id), None, public
            )
            if values["kind"] in DOWNGRADING_REPORTS:
                _bump_revision(connection, "defibrillators")  # the map shows it at once
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
            _audit(connection, self.utcnow(), actor, "review", "report", str(report_id),
                   dict(before._mapping), dict(after._mapping))  # fmt: skip
            if before.kind in DOWNGRADING_REPORTS:
                _bump_revision(connection, "defibrillators")
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
            return _resolve_reports(connection, device_id, note=note, actor=actor, at=self.utcnow())

    def throttle(
        self,
        client: str,
        limits: Sequence[tuple[Throttle, str | None]],
        *,
        now: dt.datetime | None = None,
    ) -> ThrottleRefusal | None:
        """Count one event of ``client`` under every ``(throttle, subject)``, if all allow it.

        Atomic across processes: on PostgreSQL the client's events are locked (an advisory
        lock on its key) while they are counted and written; SQLite writes one at a time. If
        any limit is reached nothing is recorded and the first refusal is returned. Events
        older than their window are deleted on the way (every client's, in the scopes of
        ``limits``), so the table holds no more than the events of each scope's last window.

        Parameters
        ----------
        client
            Who acts (its address, or a keyed hash of it); only a SHA-256 of it is stored.
        limits
            Each limit with the event's subject (needed by ``distinct`` limits).
        now
            The instant of the event (default: now).
        """
        key = _throttle_key(client)
        moment = _naive_utc(now) if now is not None else self.utcnow()
        assert moment is not None
        table = THROTTLE_EVENTS
        with self._transaction() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(key, 0)))
                )
            for throttle, _ in limits:
                start = moment - dt.timedelta(seconds=throttle.window_s)
                connection.execute(
                    table.delete().where(table.c.scope == throttle.scope, table.c.at <= start)
                )
            refusal = _throttle_refusal(connection, key, limits, moment)
            if refusal is not None:
                return refusal
            connection.execute(
                table.insert(),
                [{"scope": t.scope, "client_key": key, "subject": subject, "at": moment}
                 for t, subject in limits],
            )  # fmt: skip
        return None

    def throttle_check(
        self,
        client: str,
        limits: Sequence[tuple[Throttle, str | None]],
        *,
        now: dt.datetime | None = None,
    ) -> ThrottleRefusal | None:
        """Would :meth:`throttle` refuse ``client`` now? Reads only: nothing is counted.

        For limits on failures (wrong passwords): every attempt is checked first, and only the
        failed ones are counted afterwards with :meth:`throttle`.
        """
        key = _throttle_key(client)
        moment = _naive_utc(now) if now is not None else self.utcnow()
        assert moment is not None
        with self.engine.connect() as connection:
            return _throttle_refusal(connection, key, limits, moment)

    def insert_use(
        self,
        values: Mapping[str, Any],
        *,
        actor: str,
        device_change: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None,
    ) -> int:
        """Record a use of a device; returns its id.

        Parameters
        ----------
        device_change
            ``(before, after)``: a change to the device made with the use (new pads after it),
            written in the same transaction as :meth:`update_device` writes it (conditional on
            ``before["version"]``, version bumped, audited with the use's id). If it cannot be
            written, neither is the use.

        Raises
        ------
        NotFoundError
            The device does not exist.
        ConflictError
            With ``device_change``: someone changed the device after ``before`` was read.
        """
        row = {**values, "reported_by": actor, "reported_at": self.utcnow()}
        row["used_at"] = _naive_utc(row["used_at"])
        with _device_must_exist(values["device_id"]), self._transaction() as connection:
            self._require_device(connection, str(values["device_id"]))
            key = connection.execute(DEVICE_USES.insert().values(**row)).inserted_primary_key
            assert key is not None
            use_id = int(key[0])
            _audit(connection, self.utcnow(), actor, "create", "use", str(use_id), None, row)
            if device_change is not None:
                before, after = device_change
                _update_device(
                    connection, before, {**after, "use_id": use_id}, actor=actor,
                    at=self.utcnow(),
                )  # fmt: skip
        return use_id

    def uses(
        self, *, device_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        """Reported uses, newest first, and how many match in all."""
        conditions = [] if device_id is None else [DEVICE_USES.c.device_id == device_id]
        return self._page(DEVICE_USES, conditions, DEVICE_USES.c.id.desc(), limit, offset)

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

    # the training register (plan action 1.3) ----------------------------------------------

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
            _require_entities(connection, [row["entity_id"]])
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
            _audit(
                connection, self.utcnow(), actor, "create", "training", str(training_id), None, row
            )
        return training_id

    def upsert_trainings(
        self, rows: Sequence[Mapping[str, Any]], *, actor: str, dry_run: bool = False
    ) -> dict[str, int]:
        """Insert or update training actions matched on ``(source, source_id)``, all or nothing.

        A row whose key is not stored is inserted; one whose key is stored with other values
        replaces them (``created_at`` and ``created_by`` stay those of the first import); one
        stored with the same values is left alone. Every insert and update is audited.

        Parameters
        ----------
        rows
            :data:`TRAINING_FIELDS` plus ``source`` and ``source_id`` (never ``None`` here).
        dry_run
            Only count what would change; write nothing.

        Returns
        -------
        dict
            ``{"inserted": n, "updated": n, "unchanged": n}``.

        Raises
        ------
        InputError
            A row without ``source_id``, two rows with the same key, or an unknown entity.
        """
        prepared = [_training_row(row) for row in rows]
        _check_source_keys(
            prepared,
            missing="Cada fila importada necesita source_id para reconocerla al reimportar.",
            repeated="La formación {source_id!r} de {source!r} aparece dos veces.",
        )
        counts = {"inserted": 0, "updated": 0, "unchanged": 0}
        if dry_run:
            with self.engine.connect() as connection:
                _require_entities(connection, [row["entity_id"] for row in prepared])
                stored = _trainings_by_key(connection, prepared)
            for row in prepared:
                counts[_change(stored.get((row["source"], row["source_id"])), row)] += 1
            return counts
        table = TRAINING_ACTIONS
        with self._transaction() as connection:
            _require_entities(connection, [row["entity_id"] for row in prepared])
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
                    _audit(
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
                    _audit(connection, self.utcnow(), actor, "update", "training",
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
            _audit(connection, self.utcnow(), actor, "delete", "training", str(training_id),
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

    def uses_frame(self) -> pd.DataFrame:
        """Reported uses of devices as a table for the indicators, ordered by time of use and id.

        Returns
        -------
        pandas.DataFrame
            Columns ``device_id`` (object: str), ``used_at`` (datetime64[us], naive UTC as
            stored) and ``people_attended`` (int64). Empty, with these columns and dtypes, when
            no use was reported.
        """
        table = DEVICE_USES
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(table.c.device_id, table.c.used_at, table.c.people_attended).order_by(
                    table.c.used_at, table.c.id
                )
            ).all()
        return pd.DataFrame(
            {
                "device_id": pd.Series([row.device_id for row in rows], dtype="object"),
                "used_at": pd.Series([row.used_at for row in rows], dtype="datetime64[us]"),
                "people_attended": pd.Series([row.people_attended for row in rows], dtype="int64"),
            }
        )

    # past cardiac arrests (PRIVATE: the CLI and the staff's analyses only) ------------------

    def replace_arrests(self, frame: gpd.GeoDataFrame, *, actor: str) -> tuple[int, int]:
        """Replace every stored past arrest by ``frame``, in one transaction; audited.

        The audit entry holds counts and sources only, never times or positions.

        Parameters
        ----------
        frame
            Validated arrests as :func:`geo.core.arrests.parse_arrests` returns them: the
            :data:`ARREST_COLUMNS` and ``geometry`` (cell centres; any CRS, stored in EPSG:4326).

        Returns
        -------
        tuple
            Arrests stored before and after.

        Raises
        ------
        InputError
            ``frame`` lacks a column, has no CRS, a time with a zone or a repeated
            ``(source, source_id)``.
        """
        rows = _arrest_rows(frame)
        with self._transaction() as connection:
            before = int(
                connection.execute(
                    sa.select(sa.func.count()).select_from(CARDIAC_ARRESTS)
                ).scalar_one()
            )
            connection.execute(CARDIAC_ARRESTS.delete())
            _insert_arrests(connection, rows, actor, at=self.utcnow())
            after = {"rows": len(rows), "sources": sorted({row["source"] for row in rows})}
            _audit(connection, self.utcnow(), actor, "replace", "arrests", CARDIAC_ARRESTS.name,
                   {"rows": before}, after)  # fmt: skip
        return before, len(rows)

    def append_arrests(self, frame: gpd.GeoDataFrame, *, actor: str) -> int:
        """Add ``frame``'s arrests to the stored ones, in one transaction; audited (counts only).

        Returns
        -------
        int
            Arrests stored after the append.

        Raises
        ------
        InputError
            As :meth:`replace_arrests`.
        ConflictError
            A row's ``(source, source_id)`` is stored already (import the file again without
            appending, to replace); nothing is written.
        """
        rows = _arrest_rows(frame)
        table = CARDIAC_ARRESTS
        unkeyed = sum(1 for row in rows if not row["source_id"])
        if unkeyed:
            msg = (
                f"{unkeyed} paradas no tienen id: al añadirlas no se sabría si ya están guardadas "
                "y se contarían dos veces. Añada la columna id (la referencia del servicio de "
                "emergencias) o importe sin añadir para sustituir las guardadas."
            )
            raise InputError(msg, code="arrest_without_id", field="id")
        with self._transaction() as connection:
            keyed = {(row["source"], row["source_id"]) for row in rows}
            sources = sorted({source for source, _ in keyed})
            stored = connection.execute(
                sa.select(table.c.source, table.c.source_id).where(
                    table.c.source.in_(sources), table.c.source_id.is_not(None)
                )
            ).all()
            taken = sorted(keyed & {(row.source, row.source_id) for row in stored})
            if taken:
                source, source_id = taken[0]
                msg = (
                    f"Ya hay guardada una parada de {source!r} con id {source_id!r} "
                    f"({len(taken)} repetidas en total); no se ha guardado nada. Importe sin "
                    "añadir para sustituir las paradas guardadas."
                )
                raise ConflictError(msg)
            _insert_arrests(connection, rows, actor, at=self.utcnow())
            total = int(
                connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            )
            after = {"rows": total, "added": len(rows),
                     "sources": sorted({row["source"] for row in rows})}  # fmt: skip
            _audit(connection, self.utcnow(), actor, "append", "arrests", table.name,
                   {"rows": total - len(rows)}, after)  # fmt: skip
        return total

    def arrests_frame(self) -> gpd.GeoDataFrame:
        """The stored past arrests, ordered by time and id. PRIVATE: staff analyses only.

        Returns
        -------
        geopandas.GeoDataFrame
            EPSG:4326. Columns ``id`` (int64), ``occurred_at`` (datetime64[us], the city's local
            time, naive), ``place_type`` (object: one of :data:`ARREST_PLACE_TYPES`),
            ``bystander_cpr``, ``aed_used``, ``survived_30d``, ``discharged_alive`` (object:
            bool or ``None`` when unknown), ``cell_m`` (float64: the grid the position was
            coarsened to), ``source``, ``source_id`` (object) and ``geometry`` (the centre of
            the grid cell). Empty, with these columns and dtypes, when none is stored.
        """
        table = CARDIAC_ARRESTS
        names = ("id", *ARREST_COLUMNS)
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(
                    *(table.c[name] for name in names),
                    sa.func.ST_AsBinary(table.c.geom).label("wkb"),
                ).order_by(table.c.occurred_at, table.c.id)
            ).all()
        dtypes = {"id": "int64", "occurred_at": "datetime64[us]", "cell_m": "float64"}
        data = {
            name: pd.Series([row._mapping[name] for row in rows], dtype=dtypes.get(name, "object"))
            for name in names
        }
        geometry = shapely.from_wkb([bytes(row.wkb) for row in rows])
        return gpd.GeoDataFrame(data, geometry=list(geometry), crs=WGS84)

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
def _device_must_exist(device_id: object) -> Iterator[None]:
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


def _update_device(
    connection: Connection,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    *,
    actor: str,
    action: str = "update",
    private: Mapping[str, str | None] | None = None,
    resolve_reports: str | None = None,
    at: dt.datetime,
) -> int:
    """:meth:`Store.update_device` inside an open transaction, stamped ``at`` (naive UTC);
    returns the new version.

    Fields of ``after`` that are not the layer's (a review note, the use that replaced the
    pads) go only to the audit log.
    """
    table = TABLES["defibrillators"]
    device_id, version = before["id"], int(before["version"])
    values = {name: _plain(after[name]) for name in DEFIBRILLATORS.field_names if name != "id"}
    values["geom"] = from_shape(after["geometry"], srid=SRID)
    changed = connection.execute(
        table.update()
        .where(table.c.id == device_id, table.c.version == version)
        .values(**values, version=version + 1)
    ).rowcount
    if changed != 1:
        exists = connection.execute(
            sa.select(table.c.version).where(table.c.id == device_id)
        ).scalar()
        if exists is None:
            msg = f"No existe el desfibrilador {device_id!r}."
            raise NotFoundError(msg)
        msg = (
            f"El desfibrilador {device_id!r} cambió mientras tanto (versión {exists}, "
            f"se esperaba {version}); vuelva a leerlo y repita el cambio."
        )
        raise ConflictError(msg)
    if private is not None:
        connection.execute(
            DEVICE_PRIVATE_NOTES.delete().where(DEVICE_PRIVATE_NOTES.c.device_id == device_id)
        )
        if any(value is not None for value in private.values()):
            connection.execute(DEVICE_PRIVATE_NOTES.insert().values(device_id=device_id, **private))
    new_after = {**after, "version": version + 1}
    _audit(connection, at, actor, action, "device", device_id, before, new_after)
    _bump_revision(connection, "defibrillators")
    if resolve_reports is not None:
        _resolve_reports(connection, device_id, note=resolve_reports, actor=actor, at=at)
    return version + 1


def _throttle_key(client: str) -> str:
    """What the throttle stores for a client: a SHA-256 of it, never the address itself."""
    return hashlib.sha256(f"cardiomapa-throttle:{client}".encode()).hexdigest()


def _throttle_refusal(
    connection: Connection,
    key: str,
    limits: Sequence[tuple[Throttle, str | None]],
    moment: dt.datetime,
) -> ThrottleRefusal | None:
    """The first of ``limits`` the client ``key`` has reached at ``moment``, if any."""
    table = THROTTLE_EVENTS
    for throttle, subject in limits:
        start = moment - dt.timedelta(seconds=throttle.window_s)
        rows = connection.execute(
            sa.select(table.c.subject, table.c.at)
            .where(table.c.scope == throttle.scope, table.c.client_key == key, table.c.at > start)
            .order_by(table.c.at)
        ).all()
        wait = _throttle_wait(throttle, [(s, a) for s, a in rows], subject, moment)
        if wait is not None:
            return ThrottleRefusal(throttle, wait)
    return None


def _throttle_wait(
    throttle: Throttle,
    events: Sequence[tuple[str | None, dt.datetime]],
    subject: str | None,
    moment: dt.datetime,
) -> int | None:
    """Seconds until ``throttle`` allows one more event (``None``: it allows it now).

    ``events`` are the client's events of the throttle's scope within the window, oldest first.
    """
    window = dt.timedelta(seconds=throttle.window_s)
    if throttle.distinct:
        latest: dict[str | None, dt.datetime] = {}
        for name, at in events:
            latest[name] = at
        if subject in latest or len(latest) < throttle.limit:
            return None
        # A subject stops counting when its latest event leaves the window.
        ends = sorted(at + window for at in latest.values())
        until = ends[len(latest) - throttle.limit]
    else:
        if len(events) < throttle.limit:
            return None
        until = events[len(events) - throttle.limit][1] + window
    # Never more than the window: an event stamped by a process whose clock runs ahead would
    # otherwise ask for longer.
    return min(max(1, math.ceil((until - moment).total_seconds())), math.ceil(throttle.window_s))


def _resolve_reports(
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
        _audit(connection, now, actor, "review", "report", str(before.id),
               dict(before._mapping), dict(after._mapping))  # fmt: skip
    _bump_revision(connection, "defibrillators")
    return [int(row.id) for row in pending]


def _device_key(record: Mapping[str, Any]) -> tuple[str, str]:
    return (str(record["source"]), str(record["source_id"]))


def _devices_by_key(
    connection: Connection, records: Sequence[Mapping[str, Any]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """Stored devices with the sources of ``records``, by ``(source, source_id)``: schema fields,
    ``geometry`` (shapely) and ``version``."""
    sources = sorted({str(record["source"]) for record in records})
    if not sources:
        return {}
    table = TABLES["defibrillators"]
    columns = [table.c[name] for name in DEFIBRILLATORS.field_names]
    rows = connection.execute(
        sa.select(*columns, table.c.version, sa.func.ST_AsBinary(table.c.geom).label("wkb")).where(
            table.c.source.in_(sources), table.c.source_id.is_not(None)
        )
    ).all()
    stored = {}
    for row in rows:
        values = {name: row._mapping[name] for name in DEFIBRILLATORS.field_names}
        values["version"] = int(row.version)
        values["geometry"] = shapely.from_wkb(bytes(row.wkb))
        stored[(row.source, row.source_id)] = values
    return stored


def _device_change(before: Mapping[str, Any] | None, record: Mapping[str, Any]) -> str:
    """``inserted``, ``updated`` or ``unchanged``: every field but the id, and the position."""
    if before is None:
        return "inserted"
    fields = (name for name in DEFIBRILLATORS.field_names if name != "id")
    same = all(before[name] == _plain(record[name]) for name in fields)
    same = same and bool(before["geometry"].equals_exact(record["geometry"], tolerance=0))
    return "unchanged" if same else "updated"


def _training_row(values: Mapping[str, Any]) -> dict[str, Any]:
    """The stored columns of a training action (fields and provenance), as plain values."""
    names = (*TRAINING_FIELDS, "source", "source_id")
    return {name: _plain(values.get(name)) for name in names}


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


def _arrest_rows(frame: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    """The stored columns of validated arrests (plain values, EPSG:4326 ``geom``)."""
    missing = [name for name in ARREST_COLUMNS if name not in frame.columns]
    if missing:
        msg = f"Faltan columnas en las paradas a guardar: {', '.join(missing)}."
        raise InputError(msg, code="missing_field", field=missing[0])
    if frame.crs is None:
        msg = "Las paradas a guardar no declaran su CRS; se esperaba EPSG:4326."
        raise InputError(msg, code="invalid_geometry", field="geometry")
    points = frame.geometry if frame.crs == WGS84 else frame.geometry.to_crs(WGS84)
    rows = []
    seen: set[tuple[str, str]] = set()
    for values, geom in zip(
        frame[list(ARREST_COLUMNS)].itertuples(index=False, name=None), points, strict=True
    ):
        row = {name: _plain(value) for name, value in zip(ARREST_COLUMNS, values, strict=True)}
        when = pd.Timestamp(row["occurred_at"])
        if when.tzinfo is not None:
            msg = "occurred_at debe ser la hora local de la ciudad, sin zona horaria."
            raise InputError(msg, code="invalid_date", field="occurred_at")
        row["occurred_at"] = when.to_pydatetime()
        key = (str(row["source"]), str(row["source_id"]))
        if row["source_id"] is not None:
            if key in seen:
                msg = f"La parada {key[1]!r} de {key[0]!r} aparece dos veces."
                raise InputError(msg, code="duplicate_record", field="source_id")
            seen.add(key)
        row["geom"] = from_shape(geom, srid=SRID)
        rows.append(row)
    return rows


def _insert_arrests(
    connection: Connection, rows: Sequence[Mapping[str, Any]], actor: str, *, at: dt.datetime
) -> None:
    stamp = {"created_at": at, "created_by": actor}
    for batch in _batches(iter([{**row, **stamp} for row in rows]), 1000):
        connection.execute(CARDIAC_ARRESTS.insert(), batch)


def _require_entities(connection: Connection, entity_ids: Sequence[str | None]) -> None:
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


def _check_source_keys(rows: Sequence[Mapping[str, Any]], *, missing: str, repeated: str) -> None:
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
        row = {name: _plain(value) for name, value in zip(names, values, strict=True)}
        if multi and geom.geom_type == "Polygon":
            geom = shapely.MultiPolygon([geom])
        row["geom"] = from_shape(geom, srid=SRID)
        yield row


def _plain(value: Any) -> Any:
    """pandas/numpy scalars → Python scalars (drivers do not all take numpy types)."""
    if value is None or isinstance(value, dict | str):
        return value
    if pd.isna(value):
        return None
    return value.item() if hasattr(value, "item") else value


def _batches(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass(frozen=True)
class TokenRecord:
    """A stored API token (its secret is never stored, only its SHA-256)."""

    id: int
    secret_hash: str
    role: str
    entity_id: str | None
    label: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None = None


@dataclass(frozen=True)
class InvitationRecord:
    """A stored invitation link (its secret is never stored, only its SHA-256)."""

    id: int
    entity_id: str
    secret_hash: str
    created_at: dt.datetime
    created_by: str
    expires_at: dt.datetime
    used_at: dt.datetime | None
    revoked_at: dt.datetime | None
    token_id: int | None


def utcnow(clock: Clock = SYSTEM_CLOCK) -> dt.datetime:
    """Now by ``clock``, as the naive UTC timestamp both databases store."""
    return clock.now().astimezone(dt.UTC).replace(tzinfo=None)


def _naive_utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def record_from_row(frame: gpd.GeoDataFrame, position: int) -> dict[str, Any]:
    """One row of a layer frame as a plain record (Python scalars, shapely ``geometry``)."""
    row = frame.iloc[position]
    return {name: _plain(row[name]) for name in frame.columns if name != "geometry"} | {
        "geometry": row.geometry
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, shapely.Geometry):
        return shapely.geometry.mapping(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return _plain(value)


def _audit(
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


def _bump_revision(connection: Connection, name: str) -> None:
    connection.execute(
        DATA_REVISIONS.update()
        .where(DATA_REVISIONS.c.name == name)
        .values(revision=DATA_REVISIONS.c.revision + 1)
    )
    if connection.dialect.name == "postgresql":
        # Delivered at commit to every worker listening (geo.io.changes.PostgresWatch); SQLite's
        # workers notice a commit through ``PRAGMA data_version`` instead.
        connection.execute(sa.select(sa.func.pg_notify(CHANGES_CHANNEL, name)))
