"""Storage: the one repository every other part of cardiomapa uses, on SpatiaLite and PostGIS.

The tables are derived from the layer schemas in :mod:`geo.layers` (one definition of what a layer
holds); their history lives in Alembic migrations under ``geo/migrations`` so that a database made
by one version is upgraded, never dropped. The same code runs on both databases:

- ``sqlite:///var/cardiomapa.sqlite`` — an embedded SpatiaLite file (the default);
- ``postgresql+psycopg://user@host/db`` — PostGIS, for production.

Geometry is stored in EPSG:4326. Metric work happens in :mod:`geo` on GeoDataFrames, not here.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from geoalchemy2 import Geometry
from geoalchemy2.admin.dialects.sqlite import load_spatialite
from geoalchemy2.shape import from_shape
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from geo.errors import DatabaseNotEmptyError, StorageError
from geo.layers import (
    CEAS,
    DEFIBRILLATORS,
    LAYERS,
    LAYERS_BY_NAME,
    WGS84,
    Field,
    Kind,
    Layers,
    LayerSchema,
    to_frame,
)
from geo.network import WalkingNetwork, network_from_frames, network_to_frames

SRID = 4326
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: Table that stores each layer.
TABLE_NAMES: Mapping[str, str] = {
    "ceas": "ceas_zones",
    "entities": "entities",
    "defibrillators": "defibrillators",
    "cohousing": "cohousing_sites",
    "population": "population_units",
}

metadata = sa.MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "ix": "ix_%(table_name)s_%(column_0_name)s",
    }
)

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_GEOMETRY_TYPES = {("Point",): "POINT", ("Polygon", "MultiPolygon"): "MULTIPOLYGON"}


def _column(spec: Field) -> sa.Column[Any]:
    types: dict[Kind, sa.types.TypeEngine[Any]] = {
        Kind.TEXT: sa.Text(),
        Kind.INTEGER: sa.Integer(),
        Kind.BOOLEAN: sa.Boolean(create_constraint=False),
        Kind.DATE: sa.Date(),
        Kind.CHOICE: sa.String(32),
        Kind.OPENING_HOURS: sa.Text(),
        Kind.TAGS: _JSON,
    }
    nullable = not spec.required and spec.default is None
    return sa.Column(spec.name, types[spec.kind], nullable=nullable)


def _table(schema: LayerSchema) -> sa.Table:
    columns: list[sa.schema.SchemaItem] = []
    for spec in schema.fields:
        column = _column(spec)
        if spec.name == "id":
            column.primary_key = True
        if schema is DEFIBRILLATORS and spec.name == "operator_entity_id":
            column.append_foreign_key(
                sa.ForeignKey(f"{TABLE_NAMES['entities']}.id", ondelete="SET NULL")
            )
        columns.append(column)
        if spec.kind is Kind.CHOICE:
            allowed = ", ".join(f"'{value}'" for value in spec.choices)
            columns.append(sa.CheckConstraint(f"{spec.name} IN ({allowed})", name=spec.name))
        if spec.minimum is not None:
            columns.append(sa.CheckConstraint(f"{spec.name} >= {spec.minimum}", name=spec.name))
    geometry = Geometry(_GEOMETRY_TYPES[schema.geometry_types], srid=SRID, spatial_index=True)
    columns.append(sa.Column("geom", geometry, nullable=False))
    return sa.Table(TABLE_NAMES[schema.name], metadata, *columns)


#: One table per layer, in load order (entities before the devices that reference them).
TABLES: Mapping[str, sa.Table] = {schema.name: _table(schema) for schema in LAYERS}

#: The walking network (one at a time), stored in EPSG:4326 like everything else.
NETWORK_NODES = sa.Table(
    "network_nodes",
    metadata,
    sa.Column("node_id", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("source", sa.Text(), nullable=False),
    sa.Column("geom", Geometry("POINT", srid=SRID, spatial_index=True), nullable=False),
)
NETWORK_EDGES = sa.Table(
    "network_edges",
    metadata,
    sa.Column("edge_id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("u_id", sa.BigInteger(), nullable=False),
    sa.Column("v_id", sa.BigInteger(), nullable=False),
    sa.Column("length_m", sa.Float(), nullable=False),
    sa.Column("source", sa.Text(), nullable=False),
    sa.Column("geom", Geometry("LINESTRING", srid=SRID, spatial_index=True), nullable=False),
    sa.CheckConstraint("length_m >= 0", name="length_m"),
)


# --- engines ----------------------------------------------------------------------------------


def create_db_engine(url: str) -> Engine:
    """Create an engine for a SpatiaLite file or a PostGIS database.

    For SQLite the SpatiaLite extension is loaded on every connection, foreign keys are enforced
    and transactions really begin with ``BEGIN`` (so a failed load leaves nothing behind). The
    folder of a SQLite file is created if missing.

    Raises
    ------
    StorageError
        The URL is malformed or names an unsupported database.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        msg = f"URL de base de datos no válida: {url!r}."
        raise StorageError(msg) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("SPATIALITE_LIBRARY_PATH", "mod_spatialite")
        engine = sa.create_engine(parsed)
        sa.event.listen(engine, "connect", _on_sqlite_connect)
        sa.event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        return engine
    if backend == "postgresql":
        try:
            return sa.create_engine(parsed, pool_pre_ping=True)
        except NoSuchModuleError:
            msg = f"Controlador no disponible para {url!r}; use postgresql+psycopg://…"
            raise StorageError(msg) from None
    msg = (
        f"Base de datos {backend!r} no admitida; use sqlite:///archivo.sqlite (SpatiaLite) "
        "o postgresql+psycopg://… (PostGIS)."
    )
    raise StorageError(msg)


def _on_sqlite_connect(dbapi_conn: Any, record: Any) -> None:
    # Take transaction control away from the sqlite3 driver so BEGIN is ours (SQLAlchemy recipe).
    dbapi_conn.isolation_level = None
    try:
        dbapi_conn.enable_load_extension(True)
        load_spatialite(dbapi_conn, init_mode="WGS84")
    except (AttributeError, sqlite3.OperationalError) as exc:  # no extension API, or no module
        msg = (
            "No se pudo cargar SpatiaLite (mod_spatialite). Instálelo con "
            f"`apt-get install libsqlite3-mod-spatialite` (detalle: {exc})."
        )
        raise StorageError(msg) from exc
    dbapi_conn.execute("PRAGMA foreign_keys = ON")
    dbapi_conn.execute("PRAGMA busy_timeout = 10000")


# --- migrations -------------------------------------------------------------------------------


def alembic_config() -> Config:
    """Alembic configuration pointing at cardiomapa's migrations (no ini file needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def migrate(engine: Engine) -> None:
    """Bring the database schema to the newest version (creating it if empty).

    Raises
    ------
    StorageError
        When the database cannot be reached or lacks its spatial extension.
    """
    config = alembic_config()
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                _require_postgis(connection)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as exc:
        msg = f"No se puede abrir la base de datos {engine.url.render_as_string()}: {exc.orig}"
        raise StorageError(msg) from exc


def _require_postgis(connection: Connection) -> None:
    installed = connection.execute(
        sa.text("SELECT 1 FROM pg_extension WHERE extname = 'postgis'")
    ).scalar()
    if installed:
        return
    available = connection.execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'")
    ).scalar()
    if not available:
        msg = (
            "PostGIS no está instalado en el servidor PostgreSQL; instálelo con "
            "`apt-get install postgresql-15-postgis-3`."
        )
        raise StorageError(msg)
    connection.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))


def schema_revision(engine: Engine) -> str | None:
    """The migration revision the database is at (``None`` if it was never migrated)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The newest migration revision this version of cardiomapa knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


# --- the repository ---------------------------------------------------------------------------


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

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect to ``url`` and bring its schema up to date."""
        engine = create_db_engine(url)
        migrate(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as connection:
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
        :func:`geo.layers.read_layer` returns them for a file.

        Raises
        ------
        KeyError
            If ``name`` is not a layer.
        """
        schema = LAYERS_BY_NAME[name]
        table = TABLES[name]
        columns = [table.c[field_name] for field_name in schema.field_names]
        query = sa.select(*columns, sa.func.ST_AsBinary(table.c.geom).label("wkb")).order_by(
            table.c.id
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        data = {name: [row._mapping[name] for row in rows] for name in schema.field_names}
        geometry = shapely.from_wkb([bytes(row.wkb) for row in rows])
        return to_frame(data, list(geometry), schema)

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
    ) -> dict[str, int]:
        """Store validated layers in one transaction: all of them or, on any error, none.

        Parameters
        ----------
        layers
            Validated layers, as :func:`geo.layers.read_layers` returns them.
        replace
            Delete what the database holds first. Without it, loading into a database that
            already holds rows is refused.
        batch_size
            Rows per INSERT statement.
        on_rows
            Called with ``(layer name, rows written)`` after each batch, for progress bars.

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
        with self._transaction() as connection:
            present = {name: n for name, n in _counts(connection).items() if n}
            if present and not replace:
                detail = ", ".join(f"{name} ({n})" for name, n in present.items())
                msg = (
                    f"La base de datos ya contiene capas: {detail}. Use --replace para "
                    "sustituirlas; no se ha modificado nada."
                )
                raise DatabaseNotEmptyError(msg)
            for table in reversed(list(TABLES.values())):
                connection.execute(table.delete())
            for name, table in TABLES.items():
                if name not in layers.frames:
                    continue
                written[name] = 0
                for batch in _batches(_rows(layers[name], LAYERS_BY_NAME[name]), batch_size):
                    connection.execute(table.insert(), batch)
                    written[name] += len(batch)
                    if on_rows is not None:
                        on_rows(name, len(batch))
        return written

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
