"""Backups of the whole database: ``backup`` and ``restore`` (and the copy ``load --replace``
writes first).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from geo.cli.common import _clock, _fail, _settings, console, errors
from geo.errors import BackupError, CardiomapaError
from geo.settings import Settings

BackupDirOption = Annotated[
    Path | None,
    typer.Option(
        "--backup-dir",
        envvar="CARDIOMAPA_BACKUP_DIR",
        help="Carpeta de las copias de seguridad. Por defecto, backups/ junto al archivo SQLite "
        "(var/backups con el predeterminado) o var/backups con PostgreSQL.",
    ),
]


def _backup_folder(settings: Settings, chosen: Path | None) -> Path:
    """``--backup-dir``, else ``backups/`` beside the SQLite file, else ``var/backups``."""
    if chosen is not None:
        return chosen
    from sqlalchemy.engine import make_url

    parsed = make_url(settings.database_url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return Path(str(parsed.database)).parent / "backups"
    return Path("var/backups")


def _backup_before(settings: Settings, folder: Path, *, label: str) -> Path | None:
    """A backup of the configured database before a command replaces what it holds.

    Returns its path, or ``None`` when the database holds no cardiomapa schema yet (nothing to
    lose). Raises :class:`geo.errors.BackupError` if it cannot be written: the command stops
    before changing anything.
    """
    from geo.io import backup

    if not _has_schema(settings.database_url):
        return None
    target = backup.default_backup_path(
        folder, settings.database_url, at=_clock(settings).now(), label=label
    )
    with errors.status(f"Escribiendo una copia de seguridad en {escape(str(target))}…"):
        info = backup.backup_database(settings.database_url, target)
    console.print(
        f"Copia de seguridad escrita en {info.path} ({_size(info.size_bytes)}).",
        highlight=False,
        soft_wrap=True,
    )
    return info.path


def _has_schema(url: str) -> bool:
    from sqlalchemy.engine import make_url

    from geo.io.store import create_db_engine, schema_revision

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        return False
    engine = create_db_engine(url)
    try:
        return schema_revision(engine) is not None
    finally:
        engine.dispose()


def _size(size_bytes: int) -> str:
    if size_bytes < 1024 * 1024:
        return f"{size_bytes / 1024:.0f} KB"
    return f"{size_bytes / 1024 / 1024:.1f} MB".replace(".", ",")


def backup_(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="Archivo que se escribe (no debe existir). Por defecto, uno nuevo con la "
            "fecha en --backup-dir.",
            dir_okay=False,
        ),
    ] = None,
    backup_dir: BackupDirOption = None,
) -> None:
    """Copia de seguridad de toda la base de datos; puede hacerse con el servidor en marcha.

    SQLite: una copia del archivo con la API de copia en línea de SQLite. PostgreSQL: pg_dump
    en formato custom (con PostGIS).
    """
    from geo.io import backup

    settings = _settings()
    try:
        target = file or backup.default_backup_path(
            _backup_folder(settings, backup_dir), settings.database_url, at=_clock(settings).now()
        )
        if target.exists():
            raise BackupError(f"{target} ya existe: elija otro archivo, no se sustituye.")
        kind = backup.KIND_LABELS[backup.database_kind(settings.database_url)]
        with errors.status(f"Copiando la base de datos ({kind}) a {escape(str(target))}…"):
            info = backup.backup_database(settings.database_url, target)
    except CardiomapaError as exc:
        raise _fail(exc) from None
    console.print(
        f"Copia de seguridad escrita en {info.path}: {kind}, esquema en la revisión "
        f"{info.revision}, {_size(info.size_bytes)}.",
        highlight=False,
        soft_wrap=True,
    )


def restore(
    file: Annotated[
        Path,
        typer.Argument(help="Copia que se restaura (de `cardiomapa backup`).", dir_okay=False),
    ],
    yes: Annotated[bool, typer.Option("--yes", help="No pedir confirmación.")] = False,
    no_backup: Annotated[
        bool,
        typer.Option(
            "--no-backup", help="No escribir antes una copia de lo que hay en la base de datos."
        ),
    ] = False,
    backup_dir: BackupDirOption = None,
) -> None:
    """Sustituye TODO el contenido de la base de datos por una copia de seguridad.

    Todo o nada: si algo falla, la base de datos sigue como estaba. Rechaza una copia del otro
    tipo de base de datos o de un esquema más nuevo que esta versión. Detenga el servidor antes
    (o reinícielo después).
    """
    from geo.io import backup

    settings = _settings()
    try:
        info = backup.check_restorable(settings.database_url, file)
        target = _plain_url(settings.database_url)
        console.print(
            f"Copia {info.path}: {backup.KIND_LABELS[info.kind]}, esquema en la revisión "
            f"{info.revision}, {_size(info.size_bytes)}.",
            highlight=False,
            soft_wrap=True,
        )
        if not yes and not _confirm(
            f"Se sustituirá todo el contenido de {target} por esta copia. ¿Continuar?"
        ):
            errors.print("No se ha restaurado nada.")
            raise typer.Exit(code=1)
        if not no_backup:
            _backup_before(
                settings, _backup_folder(settings, backup_dir), label="antes-de-restaurar"
            )
        with errors.status(f"Restaurando {escape(str(info.path))} en {escape(str(target))}…"):
            backup.restore_database(settings.database_url, info.path)
    except CardiomapaError as exc:
        raise _fail(exc) from None
    console.print(
        f"Restaurada {info.path} en {target}. Reinicie el servidor si estaba en marcha.",
        highlight=False,
        soft_wrap=True,
    )


def _confirm(question: str) -> bool:
    """Ask a yes/no question in Spanish (Typer's own asks "[y/N]"); no unless "s"/"sí" (or
    "y"/"yes")."""
    answer = typer.prompt(f"{question} [s/N]", default="", show_default=False)
    return answer.strip().lower() in {"s", "si", "sí", "y", "yes"}


def _plain_url(url: str) -> str:
    """The database URL without its password, to show."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
