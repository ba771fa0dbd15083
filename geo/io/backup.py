"""Backups of the whole database and restoring one, on SQLite (SpatiaLite) and PostgreSQL/PostGIS.

- SQLite: the backup is a copy of the database file made with SQLite's online backup API
  (``sqlite3.Connection.backup``): one consistent snapshot, taken while the server keeps writing
  (WAL readers never block writers). Restoring copies the file back the same way, in one step:
  every page of the database is replaced at once, or none.
- PostgreSQL: the backup is ``pg_dump --format=custom`` (a consistent snapshot, taken while the
  server keeps writing). Restoring drops every table, view and sequence of the schema that no
  extension owns (PostGIS stays installed) and replays the dump, all in one transaction
  (``psql --single-transaction``): on any error the database is left as it was.

A backup names the schema revision it was made at (``alembic_version``). Restore refuses a file
of the other kind of database, a file that is not a cardiomapa backup, and a revision this code
does not know (made by a newer cardiomapa); an older revision is restored, then migrated.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from geo.errors import BackupError
from geo.io.store import (
    CHANGES_CHANNEL,
    DATA_REVISIONS,
    alembic_config,
    create_db_engine,
    head_revision,
    metadata,
    migrate,
)
from geo.io.store.engine import _require_postgis

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
KIND_LABELS = {SQLITE: "SQLite (SpatiaLite)", POSTGRESQL: "PostgreSQL (PostGIS)"}
_MAGIC = {SQLITE: b"SQLite format 3\x00", POSTGRESQL: b"PGDMP"}
SUFFIXES = {SQLITE: ".sqlite", POSTGRESQL: ".dump"}
#: How long a restore or backup of SQLite waits for a writer to finish, in milliseconds.
BUSY_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class BackupInfo:
    """What a backup file holds.

    Attributes
    ----------
    path
        The file.
    kind
        ``"sqlite"`` or ``"postgresql"``: the database it was made from.
    revision
        The schema (migration) revision it was made at.
    size_bytes
        Size of the file.
    """

    path: Path
    kind: str
    revision: str
    size_bytes: int


def database_kind(url: str) -> str:
    """``"sqlite"`` or ``"postgresql"``, the database ``url`` names."""
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError as exc:
        msg = f"URL de base de datos no válida: {url!r}."
        raise BackupError(msg) from exc
    if backend not in (SQLITE, POSTGRESQL):
        msg = f"Base de datos {backend!r} no admitida para copias de seguridad."
        raise BackupError(msg)
    return backend


def default_backup_path(folder: Path, url: str, *, at: dt.datetime, label: str = "") -> Path:
    """``folder/cardiomapa-<UTC instant>[-label][-n].<sqlite|dump>``: a name no file has yet."""
    stamp = at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    stem = f"cardiomapa-{stamp}" + (f"-{label}" if label else "")
    suffix = SUFFIXES[database_kind(url)]
    path, n = folder / f"{stem}{suffix}", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}{suffix}"
    return path


def backup_database(
    url: str, path: Path, *, on_progress: Callable[[int, int], None] | None = None
) -> BackupInfo:
    """Write a consistent copy of the database ``url`` to ``path``; safe while the server runs.

    The copy is written beside ``path`` under a temporary name and renamed when complete, so
    ``path`` is either the whole backup or absent. ``on_progress`` gets ``(done, total)`` pages
    (SQLite only).

    Raises
    ------
    BackupError
        The database cannot be read, or ``path`` cannot be written.
    """
    kind = database_kind(url)
    path = Path(path)
    try:
        # Only its owner may read a backup: it holds private notes, contacts, arrests, token
        # hashes and the audit log.
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = _private_partial(path)
    except OSError as exc:
        msg = f"No se puede escribir la copia en {path.parent}: {exc.strerror}."
        raise BackupError(msg) from exc
    try:
        if kind == SQLITE:
            _sqlite_backup(url, partial, on_progress)
        else:
            _pg_dump(url, partial)
        info = inspect_backup(partial)
        with partial.open("rb") as written:
            os.fsync(written.fileno())
        try:
            os.link(partial, path)  # never over another file, even one written meanwhile
        except FileExistsError:
            msg = f"Ya existe {path}: no se sobrescribe una copia; elija otro nombre."
            raise BackupError(msg) from None
    finally:
        partial.unlink(missing_ok=True)
    return BackupInfo(path, info.kind, info.revision, path.stat().st_size)


def _private_partial(path: Path) -> Path:
    """A new, empty file beside ``path`` that only its owner can read or write (0600), under a
    name no other backup in progress uses."""
    while True:
        partial = path.with_name(f".{path.name}.{os.urandom(4).hex()}.partial")
        try:
            descriptor = os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            continue
        os.close(descriptor)
        return partial


def backup_kind(path: Path) -> str:
    """``"sqlite"`` or ``"postgresql"``: which database the backup ``path`` is of, by its header.

    Raises
    ------
    BackupError
        The file is missing or is not a backup of either database.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            head = file.read(16)
    except OSError as exc:
        msg = f"No se puede leer la copia {path}: {exc.strerror}."
        raise BackupError(msg) from exc
    kinds = [kind for kind, magic in _MAGIC.items() if head.startswith(magic)]
    if not kinds:
        msg = (
            f"{path} no es una copia de seguridad de cardiomapa: ni una base de datos SQLite ni "
            "un volcado de pg_dump en formato custom."
        )
        raise BackupError(msg)
    return kinds[0]


def inspect_backup(path: Path) -> BackupInfo:
    """What kind of backup ``path`` is and the schema revision it holds.

    Raises
    ------
    BackupError
        The file is missing, not a backup of either database, or not a cardiomapa database.
    """
    path = Path(path)
    kind = backup_kind(path)
    revision = _sqlite_revision(path) if kind == SQLITE else _dump_revision(path)
    return BackupInfo(path, kind, revision, path.stat().st_size)


def check_restorable(url: str, path: Path) -> BackupInfo:
    """What the backup ``path`` holds, if it can be restored into the database ``url``.

    Raises
    ------
    BackupError
        A backup of the other kind of database (checked first, by the file's header), not a
        cardiomapa backup, or of a schema revision this code does not know (a newer one).
    """
    kind, found = database_kind(url), backup_kind(path)
    if found != kind:
        msg = (
            f"{path} es una copia de {KIND_LABELS[found]}, pero la base de datos configurada "
            f"es {KIND_LABELS[kind]}: no se puede restaurar en ella."
        )
        raise BackupError(msg)
    info = inspect_backup(path)
    try:
        known = ScriptDirectory.from_config(alembic_config()).get_revision(info.revision)
    except CommandError:
        known = None
    if known is None:
        msg = (
            f"{info.path} tiene el esquema en la revisión {info.revision!r}, que esta versión "
            f"de cardiomapa no conoce (la más nueva que conoce es {head_revision()!r}): la hizo "
            "una versión más nueva. Actualice cardiomapa antes de restaurarla."
        )
        raise BackupError(msg)
    return info


def restore_database(
    url: str, path: Path, *, on_progress: Callable[[int, int], None] | None = None
) -> BackupInfo:
    """Replace everything the database ``url`` holds by the backup ``path``, all or nothing.

    A backup of an older schema revision is migrated to the newest after it is restored.

    Raises
    ------
    BackupError
        See :func:`check_restorable`; or the restore failed (the database is left as it was).
    """
    info = check_restorable(url, path)
    before = _data_revisions(url)
    if info.kind == SQLITE:
        _sqlite_restore(url, info.path, on_progress)
    else:
        _pg_restore(url, info.path)
    engine = create_db_engine(url)
    try:
        if info.revision != head_revision():
            migrate(engine)
        _advance_revisions(engine, before)
    finally:
        engine.dispose()
    return info


def _data_revisions(url: str) -> dict[str, int]:
    """The layers' revision counters now (none when the database has no schema yet)."""
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table(DATA_REVISIONS.name):
                return {}
            rows = connection.execute(sa.select(DATA_REVISIONS.c.name, DATA_REVISIONS.c.revision))
            return {name: int(revision) for name, revision in rows}
    finally:
        engine.dispose()


def _advance_revisions(engine: sa.Engine, before: dict[str, int]) -> None:
    """Move every revision counter past both the restored value and the one before the restore,
    and tell the servers (PostgreSQL's notification; SQLite's ``data_version`` moves by itself):
    a running worker's caches then see restored data as new, never as the data they hold."""
    with engine.begin() as connection:
        rows = connection.execute(sa.select(DATA_REVISIONS.c.name, DATA_REVISIONS.c.revision))
        for name, revision in list(rows):
            newer = max(int(revision), before.get(name, 0)) + 1
            connection.execute(
                DATA_REVISIONS.update().where(DATA_REVISIONS.c.name == name).values(revision=newer)
            )
            if connection.dialect.name == "postgresql":
                connection.execute(sa.select(sa.func.pg_notify(CHANGES_CHANNEL, name)))


# --- SQLite -----------------------------------------------------------------------------------


def _sqlite_file(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        msg = f"La base de datos {url!r} no es un archivo: no hay nada que copiar."
        raise BackupError(msg)
    return Path(database)


def _sqlite_backup(url: str, target: Path, on_progress: Callable[[int, int], None] | None) -> None:
    source_file = _sqlite_file(url)
    if not source_file.is_file():
        msg = f"No existe la base de datos {source_file}: no hay nada que copiar."
        raise BackupError(msg)
    try:
        with (
            _closing(sqlite3.connect(source_file)) as source,
            _closing(sqlite3.connect(target)) as copy,
        ):
            source.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # One step (pages=-1): a snapshot under one read transaction. In steps, every write
            # by the server would restart the copy.
            source.backup(copy, pages=-1, progress=_pages(on_progress))
            # A self-contained file: no -wal beside it.
            copy.execute("PRAGMA journal_mode = DELETE")
            (status,) = copy.execute("PRAGMA quick_check").fetchone()
    except sqlite3.Error as exc:
        msg = f"No se pudo copiar {source_file} a {target}: {exc}."
        raise BackupError(msg) from exc
    if status != "ok":
        msg = f"La copia de {source_file} en {target} no está íntegra: {status}."
        raise BackupError(msg)


def _sqlite_restore(url: str, backup: Path, on_progress: Callable[[int, int], None] | None) -> None:
    target = _sqlite_file(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _closing(sqlite3.connect(f"{backup.resolve().as_uri()}?mode=ro", uri=True)) as source:
            (status,) = source.execute("PRAGMA quick_check").fetchone()
            if status != "ok":
                msg = f"La copia {backup} no está íntegra ({status}); no se ha restaurado nada."
                raise BackupError(msg)
            with _closing(sqlite3.connect(target)) as database:
                database.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                # One step: every page of the database is replaced in one transaction.
                source.backup(database, pages=-1, progress=_pages(on_progress))
                database.execute("PRAGMA journal_mode = WAL")
    except sqlite3.Error as exc:
        msg = (
            f"No se pudo restaurar {backup} en {target}: {exc}. La base de datos sigue como estaba."
        )
        raise BackupError(msg) from exc


def _sqlite_revision(path: Path) -> str:
    try:
        with _closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error as exc:
        msg = f"{path} es una base de datos SQLite, pero no de cardiomapa ({exc})."
        raise BackupError(msg) from exc
    if row is None:
        msg = f"{path} es una base de datos de cardiomapa sin esquema (vacía): no es una copia."
        raise BackupError(msg)
    return str(row[0])


def _pages(
    on_progress: Callable[[int, int], None] | None,
) -> Callable[[int, int, int], object] | None:
    if on_progress is None:
        return None
    return lambda _status, remaining, total: on_progress(total - remaining, total)


class _closing:
    """``with`` for a sqlite3 connection that closes it (sqlite3's own only ends a transaction)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> sqlite3.Connection:
        return self.connection

    def __exit__(self, *exc: object) -> None:
        self.connection.close()


# --- PostgreSQL -------------------------------------------------------------------------------

#: Drops what a restore replaces: every table, view, materialized view and sequence of the
#: current schema that no extension owns (PostGIS's spatial_ref_sys stays, and PostGIS itself).
_DROP_OURS = """
DO $cardiomapa$
DECLARE
    item record;
BEGIN
    FOR item IN
        SELECT format('%I.%I', n.nspname, c.relname) AS name, c.relkind
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
          AND NOT EXISTS (
              SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e'
          )
        ORDER BY c.relkind DESC
    LOOP
        EXECUTE format(
            'DROP %s IF EXISTS %s CASCADE',
            CASE item.relkind
                WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE'
            END,
            item.name
        );
    END LOOP;
END
$cardiomapa$;
"""


#: A relation in ``pg_restore --list``: "ID; OID OID TYPE SCHEMA NAME OWNER".
_TOC_RELATION = re.compile(
    r"^\d+; \d+ \d+ (?:TABLE|SEQUENCE|VIEW|MATERIALIZED VIEW|FOREIGN TABLE) (\S+) (\S+) "
)

#: The current schema's relations that no extension owns, with the table owning each sequence.
_RELATIONS = """
SELECT c.relname, owner.relname
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_depend d
  ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')
LEFT JOIN pg_class owner ON owner.oid = d.refobjid
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.objid = c.oid AND e.deptype = 'e')
"""


def _refuse_foreign_relations(url: str, listing: str) -> None:
    """Refuse to restore over relations that are neither cardiomapa's nor in the backup.

    The restore drops the schema's relations before replaying the dump: in a database shared
    with another application, that application's tables would be lost.
    """
    known = {"alembic_version", *metadata.tables}
    known |= {m.group(2) for line in listing.splitlines() if (m := _TOC_RELATION.match(line))}
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text(_RELATIONS)).all()
    finally:
        engine.dispose()
    foreign = sorted({name for name, owner in rows if name not in known and owner not in known})
    if foreign:
        msg = (
            f"La base de datos contiene tablas o vistas que no son de cardiomapa ni están en la "
            f"copia: {', '.join(foreign)}. Restaurar las borraría; restaure en una base de datos "
            "propia de cardiomapa (vacía o creada para él)."
        )
        raise BackupError(msg)


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection URI without the password, and the environment that carries it."""
    parsed: URL = make_url(url)
    env = {**os.environ}
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        msg = (
            f"No se encuentra {name}: instale el cliente de PostgreSQL "
            "(`apt-get install postgresql-client`)."
        )
        raise BackupError(msg)
    return found


def _run(command: list[str], *, env: dict[str, str], failure: str) -> str:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = done.stderr.strip() or f"código {done.returncode}"
        msg = f"{failure}: {detail}"
        raise BackupError(msg)
    return done.stdout


def _pg_dump(url: str, target: Path) -> None:
    conninfo, env = _libpq(url)
    _run(
        [_tool("pg_dump"), "--format=custom", f"--file={target}", f"--dbname={conninfo}"],
        env=env,
        failure=f"pg_dump no pudo escribir la copia {target}",
    )


def _dump_revision(path: Path) -> str:
    text = _run(
        [_tool("pg_restore"), "--data-only", "--table=alembic_version", "--file=-", str(path)],
        env={**os.environ},
        failure=f"{path} no es un volcado de pg_dump legible",
    )
    lines = text.splitlines()
    starts = [
        i for i, line in enumerate(lines) if line.startswith("COPY ") and "alembic_version" in line
    ]
    values = []
    if starts:
        for line in lines[starts[0] + 1 :]:
            if line == "\\.":
                break
            values.append(line.strip())
    if len(values) != 1:
        msg = f"{path} es un volcado de PostgreSQL, pero no de una base de datos de cardiomapa."
        raise BackupError(msg)
    return values[0]


def _pg_restore(url: str, backup: Path) -> None:
    engine = create_db_engine(url)
    try:
        with engine.begin() as connection:
            _require_postgis(connection)  # the dump's tables need it; it is not in the replay
    finally:
        engine.dispose()
    conninfo, env = _libpq(url)
    listing = _run(
        [_tool("pg_restore"), "--list", str(backup)],
        env=env,
        failure=f"{backup} no es un volcado de pg_dump legible",
    )
    _refuse_foreign_relations(url, listing)
    # The extensions stay as the database has them (creating one may need a superuser).
    entries = [line for line in listing.splitlines() if " EXTENSION " not in line]
    with tempfile.TemporaryDirectory(prefix="cardiomapa-restore-") as folder:
        chosen = Path(folder) / "entries.list"
        chosen.write_text("\n".join(entries) + "\n", encoding="utf-8")
        drop = Path(folder) / "drop.sql"
        drop.write_text(_DROP_OURS, encoding="utf-8")
        replay = Path(folder) / "restore.sql"
        _run(
            [_tool("pg_restore"), "--no-owner", "--no-privileges", f"--use-list={chosen}",
             f"--file={replay}", str(backup)],
            env=env,
            failure=f"pg_restore no pudo leer {backup}",
        )  # fmt: skip
        # Both scripts in one transaction: on any error nothing was dropped.
        _run(
            [_tool("psql"), "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1",
             "--single-transaction", f"--file={drop}", f"--file={replay}",
             f"--dbname={conninfo}"],
            env=env,
            failure=f"No se pudo restaurar {backup}; la base de datos sigue como estaba",
        )  # fmt: skip
