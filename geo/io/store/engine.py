"""Engines and migrations: SpatiaLite or PostGIS from one URL, and the schema brought to head.

For SQLite the SpatiaLite extension is loaded on every connection; Alembic runs the migrations
under ``geo/io/migrations``, one process at a time.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from geoalchemy2.admin.dialects.sqlite import load_spatialite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from geo.clock import SYSTEM_CLOCK, Clock
from geo.errors import StorageError

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


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
        sa.event.listen(engine, "begin", _begin_sqlite)
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


def _begin_sqlite(connection: Connection) -> None:
    # A writer takes the write lock up front: a deferred transaction that reads, then writes,
    # fails at once with "database is locked" when another writer got there first.
    immediate = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


WRITE_OPTION = "cardiomapa_write"


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
    dbapi_conn.execute("PRAGMA busy_timeout = 30000")
    # Readers never wait for the writer, nor the writer for readers; a crash loses nothing
    # committed (WAL with synchronous=FULL).
    dbapi_conn.execute("PRAGMA journal_mode = WAL")
    dbapi_conn.execute("PRAGMA synchronous = FULL")


# --- migrations -------------------------------------------------------------------------------


def alembic_config() -> Config:
    """Alembic configuration pointing at cardiomapa's migrations (no ini file needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


#: The PostgreSQL channel a write to a layer notifies, with the layer's name as payload.
CHANGES_CHANNEL = "cardiomapa_changes"

#: The PostgreSQL advisory lock held while the schema is upgraded (any constant of our own).
_MIGRATION_LOCK = 0x63617264  # "card"


def migrate(engine: Engine, *, clock: Clock = SYSTEM_CLOCK) -> None:
    """Bring the database schema to the newest version (creating it if empty).

    Run at start-up (:meth:`Store.open`) or by ``cardiomapa migrate``, never in a request:
    Alembic's context is not thread-safe. Processes starting at once upgrade one at a time
    (SQLite's write lock, PostgreSQL's advisory lock). A migration that stamps what it does
    reads ``clock`` (``config.attributes["clock"]``).

    Raises
    ------
    StorageError
        When the database cannot be reached or lacks its spatial extension.
    """
    config = alembic_config()
    head = head_revision()
    try:
        if schema_revision(engine) == head:
            return  # the common case at start-up: nothing to do, no Alembic command run
        with engine.connect() as connection:
            connection.execution_options(**{WRITE_OPTION: True})  # SQLite: BEGIN IMMEDIATE
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    # Several workers or commands starting at once upgrade one at a time; the
                    # others find the schema at head once the lock is theirs.
                    connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
                    _require_postgis(connection)
                if MigrationContext.configure(connection).get_current_revision() == head:
                    return
                config.attributes["connection"] = connection
                config.attributes["clock"] = clock
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
