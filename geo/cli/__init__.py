"""The ``cardiomapa`` command line (Spanish messages, progress bars on long work).

An edge like the HTTP API: it reads the settings, calls :mod:`geo` and prints. ``serve`` imports
the web app only when it runs.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import geopandas as gpd
import numpy as np
import pandas as pd
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from geo.clock import Clock, local_now, local_today
from geo.core import arrests as arrest_records
from geo.core import outputs
from geo.core.availability import WEEKDAY_NAMES
from geo.core.coverage import DEFAULT_RADIUS_M, CoverageResult, WeeklyCoverage
from geo.core.distance import DEFAULT_DETOUR_FACTOR
from geo.core.indicators import (
    INDICATOR_LABELS,
    KIND_LABELS,
    OUTCOME_INDICATORS,
    Indicators,
    format_band,
    format_value,
    indicator_rows,
)
from geo.core.layers import DEFIBRILLATORS, LAYERS, Layers, LayerSchema, upkeep_warnings
from geo.core.outcome_model import BAND_PERCENTILES, OutcomeParameters
from geo.core.outcomes import OutcomeResult
from geo.core.outputs import data_notice
from geo.core.plan_lives import BANDS
from geo.core.results import AnalysisInputs, CoverageAnalysis, WeeklyAnalysis
from geo.errors import (
    BackupError,
    CardiomapaError,
    ImportFormatError,
    LayerValidationError,
    NotFoundError,
    Problem,
)
from geo.io.files import read_layers
from geo.io.importers import IMPORTERS, ine_sections
from geo.io.importers.run import ImportReport as DeviceImportReport
from geo.io.importers.run import import_devices
from geo.io.osm import load_network
from geo.io.store import (
    InvitationRecord,
    Store,
    TokenRecord,
    create_db_engine,
    schema_revision,
    utcnow,
)
from geo.io.store import migrate as migrate_schema
from geo.render.maps import PlannerForm, basemap_of, citizen_map, self_contained
from geo.services.analysis import (
    coverage_analysis,
    gaps_analysis,
    indicators_analysis,
    outcomes_analysis,
    siting_analysis,
    weekly_analysis,
)
from geo.services.contacts import import_contacts
from geo.services.inputs import (
    arrests_inputs,
    density_references,
    device_finder,
    load_inputs,
    outcome_parameters,
    plan_registers,
    section_incomes,
)
from geo.services.publishing import planner_page
from geo.services.reminders import ReminderRun, run_summary, send_reminders
from geo.services.tokens import INVITATION_DAYS, IssuedInvitation, issue_invitation, issue_token
from geo.services.training import (
    TRAINING_FILE,
    ImportReport,
    PreparedImport,
    import_training,
    prepare_import,
    read_csv_register,
    store_import,
)
from geo.settings import Settings

app = typer.Typer(
    name="cardiomapa",
    help="Mapa de desfibriladores y recursos de cuidados: carga de capas, servidor y análisis.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
T = TypeVar("T")
console = Console()
errors = Console(stderr=True, soft_wrap=True)  # messages stay whole, for people and grep

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Carpeta con los archivos de capas (defibrillators.geojson, ceas.geojson…). "
        "Por defecto, la muestra de data/.",
    ),
]


def _settings(data_dir: Path | None = None) -> Settings:
    try:
        settings = Settings()
    except ValidationError as exc:
        fields = ", ".join(f"CARDIOMAPA_{str(e['loc'][0]).upper()}" for e in exc.errors())
        errors.print(f"[bold red]Error[/]: configuración no válida en {fields}.", highlight=False)
        raise typer.Exit(code=2) from None
    if data_dir is None:
        return settings
    if not data_dir.is_dir():
        errors.print(f"[bold red]Error[/]: la carpeta de datos {data_dir} no existe.")
        raise typer.Exit(code=2)
    return settings.model_copy(update={"data_dir": data_dir})


def _clock(settings: Settings) -> Clock:
    """The clock this command runs on: the machine's, or ``CARDIOMAPA_CLOCK_START``'s."""
    return settings.clock(settings.load_city())


def _open_store(settings: Settings) -> Store:
    """The configured database, stamping what it writes by the command's clock."""
    return Store.open(settings.database_url, clock=_clock(settings))


@contextmanager
def _store_unless_files(settings: Settings, *, from_files: bool) -> Iterator[Store | None]:
    """The configured database for the length of a block, or None when reading the files."""
    if from_files:
        yield None
        return
    with _open_store(settings) as store:
        yield store


def _fail(exc: CardiomapaError) -> typer.Exit:
    errors.print(f"[bold red]Error[/] [dim]({exc.code})[/]: {exc}", highlight=False)
    return typer.Exit(code=1)


def _on_store(work: Callable[[Store], T]) -> T:
    """Run ``work`` on the configured database; a domain error ends the command in Spanish."""
    settings = _settings()
    try:
        with _open_store(settings) as store:
            return work(store)
    except CardiomapaError as exc:
        raise _fail(exc) from None


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    )


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


@app.command()
def load(
    data_dir: DataDirOption = None,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Sustituir lo que cargó una carga anterior. Se conserva lo que escribió la "
            "gente (registros de entidades, ediciones, notas, usos, avisos…); antes se escribe "
            "una copia de seguridad.",
        ),
    ] = False,
    if_empty: Annotated[
        bool,
        typer.Option("--if-empty", help="Cargar solo si la base de datos está vacía."),
    ] = False,
    no_backup: Annotated[
        bool,
        typer.Option("--no-backup", help="Con --replace, no escribir la copia de seguridad."),
    ] = False,
    backup_dir: BackupDirOption = None,
) -> None:
    """Valida los archivos de capas y los carga en la base de datos en una sola transacción."""
    settings = _settings(data_dir)
    kept: dict[str, list[str]] = {}
    try:
        store = _open_store(settings)
        with store:
            if if_empty and not store.is_empty():
                console.print("La base de datos ya tiene capas cargadas; no se carga nada.")
                _print_counts(store.counts())
                return
            layers = _validate(settings)
            register = _sample_register(settings, layers)  # checked before anything is written
            if replace and not no_backup and not store.is_empty():
                _backup_before(
                    settings, _backup_folder(settings, backup_dir), label="antes-de-cargar"
                )
            counts = _store(store, layers, replace=replace, kept=kept)
            imported = None if register is None else store_import(store, register, actor="cli")
    except LayerValidationError as exc:
        failure = _fail(exc)
        errors.print("No se ha cargado nada: la base de datos sigue como estaba.")
        raise failure from None
    except CardiomapaError as exc:
        raise _fail(exc) from None
    console.print(f"Capas cargadas desde {settings.data_dir}:")
    _print_counts(counts)
    _print_kept(kept)
    _print_layer_warnings(_layer_warnings(layers, today=_city_today(settings)))
    if imported is not None:
        _print_import(imported)


def _print_kept(kept: dict[str, list[str]]) -> None:
    """What a load --replace kept of what people wrote, and the file rows it did not load."""
    lines = (
        ("devices", "Desfibriladores conservados como estaban (los registró, importó o editó "
         "alguien, o tienen notas, usos, avisos o recordatorios)"),
        ("skipped", "Filas de defibrillators.geojson no cargadas porque son uno de esos "
         "desfibriladores (mismo id o misma procedencia)"),
        ("entities", "Entidades conservadas aunque el archivo no las trae (las nombran "
         "desfibriladores, tokens, contactos, invitaciones, formación o recordatorios)"),
    )  # fmt: skip
    for key, label in lines:
        ids = kept.get(key) or []
        if not ids:
            continue
        shown = ", ".join(ids[:_SHOWN_SKIPS]) + (" …" if len(ids) > _SHOWN_SKIPS else "")
        console.print(f"{label}: {len(ids)}: {shown}", highlight=False, soft_wrap=True)


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
    with errors.status(f"Escribiendo una copia de seguridad en {target}…"):
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


@app.command("backup")
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
        with errors.status(f"Copiando la base de datos ({kind}) a {target}…"):
            info = backup.backup_database(settings.database_url, target)
    except CardiomapaError as exc:
        raise _fail(exc) from None
    console.print(
        f"Copia de seguridad escrita en {info.path}: {kind}, esquema en la revisión "
        f"{info.revision}, {_size(info.size_bytes)}.",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
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
        with errors.status(f"Restaurando {info.path} en {target}…"):
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


def _layer_warnings(layers: Layers, *, today: dt.date) -> list[Problem]:
    """What was loaded but needs attention: devices whose pads or battery already expired."""
    if DEFIBRILLATORS.name not in layers.frames:
        return []
    devices = layers[DEFIBRILLATORS.name].drop(columns="geometry").to_dict("records")
    return [
        warning
        for index, record in enumerate(devices)  # the file's feature order
        for warning in upkeep_warnings(
            record, today=today, file=DEFIBRILLATORS.file_name, index=index
        )
    ]


def _print_layer_warnings(warnings: list[Problem]) -> None:
    if not warnings:
        return
    console.print(f"Avisos ({len(warnings)}), cargados igualmente:", highlight=False)
    for warning in warnings[:_SHOWN_SKIPS]:
        console.print(f"  - {warning}", highlight=False, soft_wrap=True, markup=False)
    if len(warnings) > _SHOWN_SKIPS:
        console.print(f"  … y {len(warnings) - _SHOWN_SKIPS} más.", highlight=False)


def _sample_register(settings: Settings, layers: Layers) -> PreparedImport | None:
    """``<data dir>/training.csv``, validated against the layers about to be loaded, if any."""
    path = settings.data_dir / TRAINING_FILE
    if not path.is_file():
        return None
    entity_ids = set(layers["entities"]["id"]) if "entities" in layers.frames else set()
    return prepare_import(path, today=_city_today(settings), entity_ids=entity_ids)


def _validate(settings: Settings) -> Layers:
    city = settings.load_city()
    with _progress() as progress:
        task = progress.add_task("Validando capas", total=len(LAYERS))

        def advance(schema: LayerSchema) -> None:
            progress.update(task, advance=1, description=f"Validando {schema.file_name}")

        return read_layers(settings.data_dir, city, on_layer=advance, today=_city_today(settings))


def _store(
    store: Store, layers: Layers, *, replace: bool, kept: dict[str, list[str]]
) -> dict[str, int]:
    with _progress() as progress:
        task = progress.add_task("Cargando", total=sum(layers.counts().values()))

        def advance(name: str, rows: int) -> None:
            progress.update(task, advance=rows, description=f"Cargando {name}")

        return store.load(layers, replace=replace, on_rows=advance, kept=kept)


def _print_counts(counts: dict[str, int]) -> None:
    table = Table("Capa", "Registros")
    for name, count in counts.items():
        table.add_row(name, f"{count:,}".replace(",", "."))
    console.print(table)


@app.command()
def layers() -> None:
    """Muestra las capas de la base de datos: registros y procedencia (source)."""
    summary = _on_store(Store.summary)
    table = Table("Capa", "Nombre", "Registros", "Procedencia (source: registros)")
    for layer in summary:
        sources = "\n".join(f"{source}: {n}" for source, n in layer.sources.items()) or "—"
        table.add_row(layer.name, layer.title, str(layer.count), sources)
    console.print(table)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Dirección en la que escuchar.")] = None,
    port: Annotated[int | None, typer.Option(help="Puerto.")] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Procesos que atienden peticiones (uno por núcleo, en producción sobre PostGIS).",
        ),
    ] = 1,
) -> None:
    """Sirve la aplicación web (mapa y API)."""
    import uvicorn

    from api.serving import APP_FACTORY, AddressInUse, WorkersError, run_workers

    settings = _settings()
    try:
        # Migrated here, once, before any worker starts; workers find the schema at head.
        _open_store(settings).close()  # and any failure is told here, in Spanish
    except CardiomapaError as exc:
        raise _fail(exc) from None
    # Each worker builds its own app (and its one Store) from the same environment. uvicorn's
    # own X-Forwarded-* handling is off (it trusts 127.0.0.1 by default, so any local client
    # could pick its address): the app believes only CARDIOMAPA_TRUSTED_PROXIES.
    options: dict[str, Any] = {
        "factory": True,
        "host": host if host is not None else settings.host,
        "port": port if port is not None else settings.port,
        "workers": workers,
        "proxy_headers": False,
    }
    if workers == 1:
        uvicorn.run(APP_FACTORY, **options)
        return
    try:
        run_workers(uvicorn.Config(APP_FACTORY, **options))
    except AddressInUse as exc:
        errors.print(
            f"[bold red]Error[/]: no se puede escuchar en {options['host']}:{options['port']}: "
            f"{exc.strerror}."
        )
        raise typer.Exit(code=1) from None
    except WorkersError as exc:
        errors.print(f"[bold red]Error[/]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(code=1) from None


@app.command()
def migrate() -> None:
    """Pone al día el esquema de la base de datos (lo crea si está vacía).

    `serve` y los demás comandos lo hacen al empezar; ejecútelo antes de arrancar varios
    procesos con otro gestor (p. ej. `uvicorn --factory api.app:app_from_environment`).
    """
    settings = _settings()
    try:
        engine = create_db_engine(settings.database_url)
        try:
            before = schema_revision(engine)
            migrate_schema(engine, clock=_clock(settings))
            after = schema_revision(engine)
        finally:
            engine.dispose()
    except CardiomapaError as exc:
        raise _fail(exc) from None
    if before == after:
        console.print(f"El esquema ya estaba al día (versión {after}).")
    else:
        console.print(f"Esquema actualizado: versión {before or 'vacía'} → {after}.")


# --- analysis ---------------------------------------------------------------------------------


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    GEOJSON = "geojson"
    CSV = "csv"


class Grouping(StrEnum):
    CEAS = "ceas"
    INCOME = "income"


RadiusOption = Annotated[
    float,
    typer.Option("--radius-m", help="Distancia a pie que cuenta como cubierta, en metros."),
]
AtOption = Annotated[
    str | None,
    typer.Option(
        "--at",
        help="Instante a evaluar, ISO 8601 (2026-11-23T22:00); sin zona = hora local.",
    ),
]
AlwaysOption = Annotated[
    bool, typer.Option("--always", help="Solo desfibriladores disponibles 24/7 (por defecto).")
]
FormatOption = Annotated[Format, typer.Option("--format", help="Formato de salida.")]
NetworkOption = Annotated[
    Path | None,
    typer.Option(
        "--network",
        help="Red peatonal (.osm, .osm.xml, .osm.pbf o .graphml) para medir a pie por las calles.",
        exists=True,
        dir_okay=False,
    ),
]
NoNetworkOption = Annotated[
    bool,
    typer.Option("--no-network", help="Usar línea recta × factor de rodeo aunque haya red."),
]
DetourOption = Annotated[
    float,
    typer.Option("--detour-factor", help="Factor de rodeo para la distancia en línea recta."),
]
UnknownOption = Annotated[
    bool,
    typer.Option(
        "--assume-unknown-open",
        help="Contar como abiertos los desfibriladores sin horario o con horario ilegible.",
    ),
]


CountOverdueOption = Annotated[
    bool,
    typer.Option(
        "--count-overdue",
        help=(
            "Contar también los desfibriladores con parches o batería caducados (el recuento "
            "antiguo, para comparar)."
        ),
    ),
]


def _instant(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        errors.print(
            f"[bold red]Error[/]: --at {text!r} no es una fecha y hora ISO 8601; "
            "ejemplo: 2026-11-23T22:00 (hora local) o 2026-11-23T21:00+00:00.",
            highlight=False,
        )
        raise typer.Exit(code=2) from None


def _inputs(
    data_dir: Path | None, network: Path | None, no_network: bool, *, count_overdue: bool = False
) -> tuple[Settings, AnalysisInputs]:
    settings = _settings(data_dir)
    try:
        with _store_unless_files(settings, from_files=data_dir is not None) as store:
            inputs = load_inputs(
                settings, store=store, network_file=network, use_network=not no_network
            )
    except CardiomapaError as exc:
        raise _fail(exc) from None
    return settings, replace(inputs, count_overdue=count_overdue)


def _emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _pct(share: float) -> str:
    return f"{share * 100:.1f} %".replace(".", ",")


def _int(value: float) -> str:
    return f"{int(value):,}".replace(",", ".")


def _describe_when(result: CoverageResult) -> str:
    if result.at is None:
        return "solo desfibriladores disponibles 24/7"
    return f"en el instante {result.at:%Y-%m-%d %H:%M} (hora local)"


def _print_warnings(result: CoverageResult | WeeklyCoverage | OutcomeResult) -> None:
    for note in result.notes:
        errors.print(f"[yellow]Aviso[/]: {note}", highlight=False)
    issues = result.hours_issues
    if issues:
        errors.print(
            f"[yellow]Aviso[/]: {len(issues)} desfibriladores con horario desconocido "
            "no se han contado:",
            highlight=False,
        )
        for issue in issues:
            errors.print(f"  - {issue}", highlight=False)


@app.command()
def coverage(
    radius_m: RadiusOption = DEFAULT_RADIUS_M,
    at: AtOption = None,
    always: AlwaysOption = False,
    weekly: Annotated[
        bool, typer.Option("--weekly", help="Perfil semanal: cobertura en cada hora de la semana.")
    ] = False,
    week_of: Annotated[
        str | None,
        typer.Option("--week-of", help="Fecha de la semana de referencia (por defecto, hoy)."),
    ] = None,
    by: Annotated[Grouping, typer.Option("--by", help="Desglose: zonas CEAS o renta.")] = (
        Grouping.CEAS
    ),
    output: FormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    network: NetworkOption = None,
    no_network: NoNetworkOption = False,
    detour_factor: DetourOption = DEFAULT_DETOUR_FACTOR,
    count_overdue: CountOverdueOption = False,
    assume_unknown_open: UnknownOption = False,
) -> None:
    """Población a menos de RADIO metros a pie de un desfibrilador disponible."""
    if sum((at is not None, always, weekly)) > 1:
        errors.print("[bold red]Error[/]: use solo una de --at, --always y --weekly.")
        raise typer.Exit(code=2)
    instant = _instant(at)
    settings, inputs = _inputs(data_dir, network, no_network, count_overdue=count_overdue)
    reference = _day(week_of, settings)
    try:
        if weekly:
            week = weekly_analysis(
                inputs,
                radius_m=radius_m,
                week_of=reference,
                detour_factor=detour_factor,
                assume_unknown_open=assume_unknown_open,
            )
            _emit_week(week, output)
            return
        analysis = coverage_analysis(
            inputs,
            radius_m=radius_m,
            at=instant,
            reference_date=reference,
            detour_factor=detour_factor,
            assume_unknown_open=assume_unknown_open,
            incomes=section_incomes(settings) if by is Grouping.INCOME else None,
        )
    except CardiomapaError as exc:
        raise _fail(exc) from None
    _emit_coverage(analysis, output, inputs)


def _day(text: str | None, settings: Settings, *, option: str = "--week-of") -> dt.date:
    """The date given as ``text``, or the city's today by the command's clock."""
    return _city_today(settings) if text is None else _date(text, option=option)


def _date(text: str, *, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        errors.print(f"[bold red]Error[/]: {option} {text!r} no es una fecha AAAA-MM-DD.")
        raise typer.Exit(code=2) from None


def _emit_coverage(analysis: CoverageAnalysis, output: Format, inputs: AnalysisInputs) -> None:
    result, income = analysis.result, analysis.income
    if output is Format.JSON:
        _emit(outputs.dumps(analysis.document))
    elif output is Format.CSV:
        _emit(outputs.to_csv(income if income is not None else result.by_zone))
    elif output is Format.GEOJSON:
        header = outputs.result_header(result)
        _emit(outputs.dumps(outputs.feature_collection(analysis.layer, **header)))
    else:
        _print_coverage(result, income, inputs)
    if output is not Format.TABLE:
        _print_warnings(result)


def _print_upkeep_gap(residents: int, *, counted: bool, weekly: bool = False) -> None:
    """The residents only devices with expired pads or battery protect (the upkeep gap)."""
    if not residents:
        return
    how = "contados como cubiertos (--count-overdue)" if counted else "no contados como cubiertos"
    when = "de media en la semana, " if weekly else ""
    console.print(
        f"Protegidos solo por desfibriladores con mantenimiento vencido: "
        f"[bold]{_int(residents)}[/] residentes ({when}{how})",
        highlight=False,
    )


def _print_coverage(
    result: CoverageResult, income: pd.DataFrame | None, inputs: AnalysisInputs
) -> None:
    console.print(
        f"[bold]Cobertura de desfibriladores en {inputs.city.name}[/] — {_describe_when(result)}\n"
        f"Radio: {result.radius_m:g} m a pie · {result.distance_model_description}\n"
        f"Desfibriladores contados: {result.devices_available} de {result.devices_total} · "
        f"Datos: {inputs.origin}",
        highlight=False,
    )
    console.print(
        f"Residentes cubiertos: [bold]{_int(result.residents_covered)}[/] de "
        f"{_int(result.residents)} ({_pct(result.share_covered)}) · 65 o más: "
        f"{_int(result.residents_65_plus_covered)} de {_int(result.residents_65_plus)} "
        f"({_pct(result.share_65_plus_covered)})",
        highlight=False,
    )
    _print_upkeep_gap(result.residents_only_overdue, counted=result.count_overdue)
    if income is not None:
        table = Table(
            "Quintil", "Secc.", "€/persona", "Resid.", "Cubiertos", "%", "65+ cub.", "% 65+"
        )
        for row in income.itertuples():
            table.add_row(
                str(row.quintile),
                str(row.sections),
                f"{_int(row.income_min)}–{_int(row.income_max)}",
                _int(row.residents),
                _int(row.residents_covered),
                _pct(row.share_covered),
                _int(row.residents_65_plus_covered),
                _pct(row.share_65_plus_covered),
            )
    else:
        table = Table("Zona CEAS", "Residentes", "Cubiertos", "%", "65+", "65+ cubiertos", "% 65+")
        for row in result.by_zone.itertuples():
            table.add_row(
                str(row.zone_name),
                _int(row.residents),
                _int(row.residents_covered),
                _pct(row.share_covered),
                _int(row.residents_65_plus),
                _int(row.residents_65_plus_covered),
                _pct(row.share_65_plus_covered),
            )
    console.print(table)
    _print_warnings(result)


def _emit_week(analysis: WeeklyAnalysis, output: Format) -> None:
    week = analysis.week
    if output is Format.JSON:
        _emit(outputs.dumps(analysis.document))
    elif output is Format.CSV:
        _emit(outputs.to_csv(week.slices))
    elif output is Format.GEOJSON:
        header = outputs.result_header(week)
        _emit(outputs.dumps(outputs.feature_collection(analysis.layer, **header)))
    else:
        _print_week(week)
    if output is not Format.TABLE:
        _print_warnings(week)


def _print_week(week: WeeklyCoverage) -> None:
    summary = week.to_dict()
    console.print(
        f"[bold]Perfil semanal de cobertura[/] — semana del {week.week_start:%Y-%m-%d}\n"
        f"Radio: {week.radius_m:g} m a pie · {week.distance_model_description}\n"
        f"24/7: {_pct(summary['share_covered_always'])} · media semanal: "
        f"{_pct(week.mean_share_covered)} · con todos abiertos siempre: "
        f"{_pct(summary['share_covered_potential'])}\n"
        f"Cobertura perdida por los horarios: {_pct(week.share_lost_to_hours)} de media; "
        f"{_pct(summary['share_lost_off_hours'])} en tardes, noches y fines de semana\n"
        f"Peor hora: {summary['worst_slot']['label']} "
        f"({_pct(summary['worst_slot']['share_covered'])})",
        highlight=False,
    )
    _print_upkeep_gap(week.residents_only_overdue, counted=week.count_overdue, weekly=True)
    festive = week.slices["holiday"].to_numpy().reshape(7, 24)[:, 0]
    days = [
        f"{name[:3]} {(week.week_start + dt.timedelta(days=day)).day}"
        + (" (festivo)" if festive[day] else "")
        for day, name in enumerate(WEEKDAY_NAMES)
    ]
    table = Table("Hora", *days)
    shares = week.slices["share_covered"].to_numpy().reshape(7, 24)
    for hour in range(24):
        table.add_row(f"{hour:02d}:00", *(_pct(shares[day, hour]) for day in range(7)))
    console.print(table)
    _print_warnings(week)


ParametersOption = Annotated[
    Path | None,
    typer.Option(
        "--parameters",
        help="Tabla CSV de parámetros del modelo de vidas (por defecto "
        "data/reference/outcome_parameters.csv).",
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Cambia un parámetro: clave=valor (sin rango) o clave=bajo:central:alto; "
        "repetible. Ejemplo: --set share_public=0.4",
    ),
]


def _parameters(
    settings: Settings, path: Path | None, set_values: list[str] | None
) -> OutcomeParameters:
    """The outcome parameters, from the shipped table or ``--parameters``, with ``--set``."""
    if path is not None and not path.is_file():
        errors.print(f"[bold red]Error[/]: no existe el archivo de parámetros {path}.")
        raise typer.Exit(code=2)
    values: dict[str, float | tuple[float, float, float]] = {}
    for text in set_values or ():
        key, sep, value = text.partition("=")
        try:
            numbers = [float(part.replace(",", ".")) for part in value.split(":")]
        except ValueError:
            numbers = []
        if not sep or len(numbers) not in (1, 3):
            errors.print(
                f"[bold red]Error[/]: --set {text!r}: se esperaba clave=valor o "
                "clave=bajo:central:alto (p. ej. share_public=0.4).",
                highlight=False,
            )
            raise typer.Exit(code=2)
        values[key.strip()] = (
            numbers[0] if len(numbers) == 1 else (numbers[0], numbers[1], numbers[2])
        )
    try:
        parameters = outcome_parameters(settings, path)
        return parameters.with_values(values) if values else parameters
    except CardiomapaError as exc:
        raise _fail(exc) from None


class OutcomesBy(StrEnum):
    ZONES = "zones"
    DEVICES = "devices"
    PARAMETERS = "parameters"


_lives = outputs.estimate  # lives per year: two significant figures (they are estimates)


def _band(row: Any, column: str = "lives_saved") -> str:
    low, high = row[f"{column}_low"], row[f"{column}_high"]
    return f"{_lives(row[column])} ({_lives(low)}–{_lives(high)})"


@app.command("outcomes")
def outcomes_(
    radius_m: Annotated[
        float | None,
        typer.Option(
            "--radius-m",
            help="Alcance: distancia a pie a la que la probabilidad de uso llega a 0 "
            "(por defecto, el parámetro reach_m: 200 m).",
        ),
    ] = None,
    at: AtOption = None,
    always: AlwaysOption = False,
    weekly: Annotated[
        bool,
        typer.Option(
            "--weekly",
            help="Cada hora de la semana según cuándo ocurren las paradas (por defecto).",
        ),
    ] = False,
    week_of: Annotated[
        str | None,
        typer.Option("--week-of", help="Fecha de la semana de referencia (por defecto, hoy)."),
    ] = None,
    by: Annotated[
        OutcomesBy,
        typer.Option("--by", help="Para csv y geojson: zones, devices o parameters (csv)."),
    ] = OutcomesBy.ZONES,
    top: Annotated[int, typer.Option("--top", min=1, help="Desfibriladores en la tabla.")] = 10,
    output: FormatOption = Format.TABLE,
    parameters_file: ParametersOption = None,
    set_values: SetOption = None,
    arrests: Annotated[
        bool,
        typer.Option(
            "--arrests",
            help="Mezclar las paradas pasadas guardadas (cardiomapa import arrests; capa "
            "privada) con el modelo: su reparto horario y dónde ocurrieron.",
        ),
    ] = False,
    arrests_years: Annotated[
        float | None,
        typer.Option(
            "--arrests-years",
            min=0.1,
            help="Con --arrests: años que cubren las paradas guardadas (por defecto, los años "
            "naturales que abarcan; dé el periodo si el archivo no cubre años enteros).",
        ),
    ] = None,
    data_dir: DataDirOption = None,
    network: NetworkOption = None,
    no_network: NoNetworkOption = False,
    detour_factor: DetourOption = DEFAULT_DETOUR_FACTOR,
    count_overdue: CountOverdueOption = False,
    assume_unknown_open: UnknownOption = False,
) -> None:
    """Vidas salvadas al año estimadas: ciudad, zonas CEAS y cada desfibrilador, con banda."""
    if sum((at is not None, always, weekly)) > 1:
        errors.print("[bold red]Error[/]: use solo una de --at, --always y --weekly.")
        raise typer.Exit(code=2)
    if by is OutcomesBy.PARAMETERS and output is Format.GEOJSON:
        errors.print("[bold red]Error[/]: --by parameters solo admite --format csv o json.")
        raise typer.Exit(code=2)
    instant = _instant(at)
    settings, inputs = _inputs(data_dir, network, no_network, count_overdue=count_overdue)
    reference = _day(week_of, settings)
    parameters = _parameters(settings, parameters_file, set_values)
    mode = "instant" if instant is not None else "always" if always else "weekly"
    try:
        observed = None
        if arrests:
            with _open_store(settings) as store:
                observed = arrests_inputs(store, inputs.city)
        if observed is not None and observed.empty:
            errors.print(
                "[bold red]Error[/]: --arrests: no hay paradas guardadas; impórtelas con "
                "cardiomapa import arrests ARCHIVO.csv."
            )
            raise typer.Exit(code=1)
        analysis = outcomes_analysis(
            inputs,
            parameters,
            mode=mode,
            at=instant,
            week_of=reference,
            radius_m=radius_m,
            detour_factor=detour_factor,
            assume_unknown_open=assume_unknown_open,
            arrests=observed,
            arrests_years=arrests_years,
        )
    except CardiomapaError as exc:
        raise _fail(exc) from None
    result = analysis.result
    if output is Format.JSON:
        _emit(outputs.dumps(analysis.document))
    elif output is Format.CSV:
        frames = {
            OutcomesBy.ZONES: result.by_zone,
            OutcomesBy.DEVICES: pd.DataFrame(result.devices.drop(columns="geometry")),
            OutcomesBy.PARAMETERS: pd.DataFrame(result.parameters.to_records()),
        }
        _emit(outputs.to_csv(frames[by]))
    elif output is Format.GEOJSON:
        header = {k: v for k, v in analysis.document.items() if k not in ("zones", "devices")}
        layer = analysis.devices if by is OutcomesBy.DEVICES else analysis.zones
        _emit(outputs.dumps(outputs.feature_collection(layer, **header)))
    else:
        _print_outcomes(result, inputs, top)
        _print_observed(analysis.document["observed_arrests"])
    if output is not Format.TABLE:
        _print_warnings(result)


def _print_observed(observed: dict[str, Any] | None) -> None:
    if observed is None:
        return
    console.print(
        f"Con {observed['events']} paradas fuera del domicilio registradas en "
        f"{observed['years']:g} años ({_lives(observed['observed_per_year'])} al año, frente a "
        f"{_lives(observed['model_per_year'])} del modelo): reparto horario y riesgo mezclados "
        f"con lo observado ({_lives(observed['blended_per_year'])} al año; el modelo pesa como "
        f"{observed['prior_years']:g} años). Capa privada: no se publica.",
        highlight=False,
    )


def _print_outcomes(result: OutcomeResult, inputs: AnalysisInputs, top: int) -> None:
    city = result.city
    when = {
        "weekly": f"cada hora de la semana del {result.week_start:%Y-%m-%d}"
        if result.week_start
        else "semanal",
        "always": "solo desfibriladores disponibles 24/7",
        "instant": f"como si todo el año fuera el instante {result.at:%Y-%m-%d %H:%M}"
        if result.at
        else "",
    }[result.mode]
    console.print(
        f"[bold]Vidas salvadas estimadas en {inputs.city.name}[/] — {when}\n"
        f"Alcance: {result.reach_m:g} m a pie (uso pleno hasta {result.full_use_m:g} m) · "
        f"{result.distance_model_description}\n"
        f"Desfibriladores contados: {city['devices_counted']} de {city['devices_total']} · "
        f"Datos: {inputs.origin}\n"
        f"Paradas al año entre los residentes: {_lives(city['arrests_per_year'])}, "
        f"fuera del domicilio {_lives(city['public_arrests_per_year'])}; con un DEA disponible "
        f"al alcance: {_lives(city['arrests_in_reach'])}; usos esperados: "
        f"{_lives(city['uses_per_year'])}\n"
        f"[bold]Vidas salvadas al año: {_band(city)}[/] — banda del "
        f"{BAND_PERCENTILES[0]:g} al {BAND_PERCENTILES[1]:g} % ({result.draws} simulaciones, "
        f"semilla {result.seed}); {_lives(city['lives_saved_per_million'])} por millón de "
        "habitantes",
        highlight=False,
    )
    zones = Table("Zona CEAS", "Residentes", "Paradas/año", "Al alcance", "Vidas/año (banda)")
    for row in result.by_zone.to_dict(orient="records"):
        zones.add_row(
            str(row["zone_name"]),
            _int(row["residents"]),
            _lives(row["arrests_per_year"]),
            _lives(row["arrests_in_reach"]),
            _band(row),
        )
    console.print(zones)
    devices = result.devices[result.devices["counted"]]
    for title, column in (
        ("Lo que se perdería sin cada desfibrilador", "marginal_lives"),
        ("Lo que añadiría cada uno abierto 24/7 (los horarios que más importan)", "gain_if_24_7"),
    ):
        ranked = devices.sort_values(column, ascending=False, kind="stable").head(top)
        ranked = ranked[ranked[column] > 0]
        if ranked.empty:
            continue
        table = Table("Desfibrilador", "Vidas/año (banda)", title=title, title_justify="left")
        for row in ranked.to_dict(orient="records"):
            table.add_row(f"{row['device_id']} {row['name'] or ''}".strip(), _band(row, column))
        console.print(table)
    console.print(
        "Estimaciones de un modelo, no recuentos: parámetros y fuentes en "
        "data/reference/outcome_parameters.csv (--by parameters --format csv).",
        highlight=False,
    )
    _print_warnings(result)


@app.command()
def gaps(
    radius_m: RadiusOption = DEFAULT_RADIUS_M,
    at: AtOption = None,
    always: AlwaysOption = False,
    top: Annotated[int, typer.Option("--top", min=1, help="Áreas a mostrar en la tabla.")] = 15,
    cell_m: Annotated[
        float | None,
        typer.Option("--cell-m", help="Lado de las celdas de huecos (por defecto 1,5 × radio)."),
    ] = None,
    output: FormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    network: NetworkOption = None,
    no_network: NoNetworkOption = False,
    detour_factor: DetourOption = DEFAULT_DETOUR_FACTOR,
    count_overdue: CountOverdueOption = False,
) -> None:
    """Huecos de cobertura: dónde vive la gente sin desfibrilador cerca, y entidades sin él."""
    if at is not None and always:
        errors.print("[bold red]Error[/]: use solo una de --at y --always.")
        raise typer.Exit(code=2)
    instant = _instant(at)
    settings, inputs = _inputs(data_dir, network, no_network, count_overdue=count_overdue)
    try:
        analysis = gaps_analysis(
            inputs, radius_m=radius_m, at=instant, cell_m=cell_m, detour_factor=detour_factor,
            reference_date=_city_today(settings),
        )  # fmt: skip
    except CardiomapaError as exc:
        raise _fail(exc) from None
    header = outputs.result_header(analysis.result)
    if output is Format.JSON:
        _emit(outputs.dumps(analysis.document))
    elif output is Format.CSV:
        _emit(outputs.to_csv(analysis.areas))
    elif output is Format.GEOJSON:
        _emit(outputs.dumps(outputs.feature_collection(analysis.layer, **header)))
    else:
        _print_gaps(analysis.result, analysis.areas, analysis.uncovered, inputs, top=top)


def _print_gaps(
    result: CoverageResult,
    areas: gpd.GeoDataFrame,
    uncovered: dict[str, gpd.GeoDataFrame],
    inputs: AnalysisInputs,
    *,
    top: int,
) -> None:
    console.print(
        f"[bold]Huecos de cobertura en {inputs.city.name}[/] — {_describe_when(result)}\n"
        f"Radio: {result.radius_m:g} m a pie · {result.distance_model_description}\n"
        f"Residentes sin desfibrilador a su alcance: "
        f"{_int(result.residents - result.residents_covered)} de {_int(result.residents)}",
        highlight=False,
    )
    table = Table("#", "Residentes", "65+", "Zona CEAS", "DEA más cercano (m)", "Lon", "Lat")
    zones = inputs.layers["ceas"]
    zone_names = dict(zip(zones["id"], zones["name"], strict=True))
    centres = areas.head(top).geometry.centroid.to_crs(outputs.WGS84)
    for row, centre in zip(areas.head(top).itertuples(), centres, strict=True):
        distance = _int(row.nearest_distance_m) if np.isfinite(row.nearest_distance_m) else "—"
        table.add_row(
            str(row.rank),
            _int(row.residents),
            _int(row.residents_65_plus),
            zone_names.get(row.zone_id, "—"),
            distance,
            f"{centre.x:.5f}",
            f"{centre.y:.5f}",
        )
    console.print(table)
    for name, title in (("entities", "Entidades del clúster"), ("cohousing", "Cohousing")):
        frame = uncovered[name]
        console.print(f"{title} sin desfibrilador disponible a {result.radius_m:g} m: {len(frame)}")
        for row in frame.itertuples():
            own = " (tiene uno propio, no disponible)" if row.holds_device else ""
            distance = "—" if not np.isfinite(row.distance_m) else f"{_int(row.distance_m)} m"
            console.print(f"  - {row.id} {row.name}: más cercano {distance}{own}", highlight=False)
    _print_warnings(result)


# --- siting -----------------------------------------------------------------------------------


class Method(StrEnum):
    EXACT = "exact"
    GREEDY = "greedy"


class Objective(StrEnum):
    RESIDENTS = "residents"
    LIVES = "lives"


class LivesPer(StrEnum):
    YEAR = "year"
    DECADE = "decade"


@app.command()
def site(
    new: Annotated[
        int, typer.Option("--new", min=1, help="Cuántos desfibriladores nuevos proponer.")
    ] = 10,
    radius_m: Annotated[
        float | None,
        typer.Option(
            "--radius-m",
            help="Distancia a pie que cuenta como cubierta (residents: 100 m por defecto) o "
            "alcance del modelo de vidas (lives: el parámetro reach_m, 200 m).",
        ),
    ] = None,
    objective: Annotated[
        Objective,
        typer.Option(
            "--objective",
            help="residents (residentes nuevos cubiertos) o lives (vidas salvadas al año "
            "estimadas: llegada, horarios y probabilidad de uso según la distancia).",
        ),
    ] = Objective.RESIDENTS,
    target_lives: Annotated[
        float | None,
        typer.Option(
            "--target-lives",
            min=0.0,
            help="Con --objective lives: el mínimo de nuevos desfibriladores para salvar "
            "estas vidas (en total, con los actuales) por año o por década (--lives-per).",
        ),
    ] = None,
    lives_per: Annotated[
        LivesPer, typer.Option("--lives-per", help="year o decade, para --target-lives.")
    ] = LivesPer.YEAR,
    week_of: Annotated[
        str | None,
        typer.Option(
            "--week-of",
            help="Semana de referencia de los horarios (lives) o inicio del año en que se "
            "comprueba el 24/7 (por defecto, hoy).",
        ),
    ] = None,
    parameters_file: ParametersOption = None,
    set_values: SetOption = None,
    method: Annotated[
        Method, typer.Option("--method", help="exact (óptimo probado) o greedy (orden voraz).")
    ] = Method.EXACT,
    candidates: Annotated[
        str,
        typer.Option(
            "--candidates",
            help="entities (entidades sin desfibrilador disponible), all (más cohousing y una "
            "rejilla regular) o un archivo GeoJSON de puntos con id.",
        ),
    ] = "entities",
    target_share: Annotated[
        float | None,
        typer.Option(
            "--target-share",
            min=0.0,
            max=1.0,
            help="Modo objetivo: el mínimo de nuevos desfibriladores para cubrir esta fracción "
            "de residentes (p. ej. 0.8).",
        ),
    ] = None,
    senior_weight: Annotated[
        float,
        typer.Option("--senior-weight", help="Cuánto pesa cada residente de 65+ (1 = igual)."),
    ] = 1.0,
    at: AtOption = None,
    time_limit_s: Annotated[
        float, typer.Option("--time-limit-s", help="Tiempo máximo del método exacto.")
    ] = 60.0,
    output: FormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    network: NetworkOption = None,
    no_network: NoNetworkOption = False,
    detour_factor: DetourOption = DEFAULT_DETOUR_FACTOR,
    count_overdue: CountOverdueOption = False,
) -> None:
    """Dónde instalar los próximos desfibriladores para proteger a más personas."""
    if output is Format.CSV:
        errors.print("[bold red]Error[/]: site admite --format table, json o geojson.")
        raise typer.Exit(code=2)
    lives = objective is Objective.LIVES
    if not lives and (target_lives is not None or parameters_file or set_values):
        errors.print(
            "[bold red]Error[/]: --target-lives, --parameters y --set solo valen con "
            "--objective lives."
        )
        raise typer.Exit(code=2)
    if lives and (target_share is not None or senior_weight != 1.0):
        errors.print(
            "[bold red]Error[/]: --target-share y --senior-weight son del objetivo residents; "
            "con --objective lives use --target-lives (las tasas por edad ya pesan a los "
            "mayores)."
        )
        raise typer.Exit(code=2)
    instant = _instant(at)
    settings, inputs = _inputs(data_dir, network, no_network, count_overdue=count_overdue)
    per_year = None
    if target_lives is not None:
        per_year = target_lives / 10 if lives_per is LivesPer.DECADE else target_lives
    try:
        analysis = siting_analysis(
            inputs,
            new=new,
            radius_m=radius_m if (radius_m is not None or lives) else DEFAULT_RADIUS_M,
            method=method.value,
            candidates=candidates,
            target_share=target_share,
            senior_weight=senior_weight,
            at=instant,
            time_limit_s=time_limit_s,
            detour_factor=detour_factor,
            objective=objective.value,
            parameters=_parameters(settings, parameters_file, set_values) if lives else None,
            target_lives=per_year,
            reference_date=_day(week_of, settings),
        )
    except CardiomapaError as exc:
        raise _fail(exc) from None
    document = analysis.document
    if output is Format.JSON:
        _emit(outputs.dumps(document))
    elif output is Format.GEOJSON:
        header = {k: v for k, v in document.items() if k not in ("sites", "zones")}
        _emit(outputs.dumps(outputs.feature_collection(analysis.chosen, **header)))
    elif lives:
        _print_lives_siting(document, analysis.chosen, inputs, lives_per)
    else:
        _print_siting(document, analysis.chosen, inputs)


def _print_lives_siting(
    document: dict[str, Any], chosen: gpd.GeoDataFrame, inputs: AnalysisInputs, per: LivesPer
) -> None:
    status = {
        "optimal": "óptimo probado",
        "gap": "hueco relativo alcanzado",
        "time_limit": "límite de tiempo alcanzado",
        "greedy": "orden voraz (sin garantía de óptimo)",
    }[str(document["status"])]
    before, after = document["before"], document["after"]
    goal = ""
    if document["target_lives"] is not None:
        wanted = document["target_lives"] * (10 if per is LivesPer.DECADE else 1)
        unit = "por década" if per is LivesPer.DECADE else "al año"
        goal = f"Objetivo: {_lives(wanted)} vidas {unit} en total\n"
    console.print(
        f"[bold]Propuesta de {document['new_devices']} nuevos desfibriladores en "
        f"{inputs.city.name} por vidas salvadas[/] — método {document['method']}: {status}\n"
        f"{goal}"
        f"Alcance: {float(document['radius_m']):g} m a pie · "
        f"{document['distance_model_description']}\n"
        f"Candidatos: {document['candidates']} ({document['candidates_count']}) · "
        f"Vidas salvadas al año: {_band(before)} → {_band(after)}; añaden "
        f"{_band(document, 'lives_gained')} (banda de la diferencia, simulación a simulación)",
        highlight=False,
    )
    table = Table(
        "#", "Emplazamiento", "Tipo", "+ vidas/año (central)", "Vidas/año tras", "Lon", "Lat"
    )
    for row in chosen.itertuples():
        table.add_row(
            str(row.step),
            f"{row.candidate_id} {row.name}",
            str(row.kind),
            _lives(float(row.lives_gained)),
            _lives(float(row.lives_saved_after)),
            f"{row.lon:.5f}",
            f"{row.lat:.5f}",
        )
    console.print(table)
    console.print(
        "Cada nuevo desfibrilador se supone público y abierto 24/7; estimaciones de un modelo "
        "(cardiomapa outcomes --by parameters --format csv para las fuentes).",
        highlight=False,
    )
    for note in document["warnings"]:
        errors.print(f"[yellow]Aviso[/]: {note}", highlight=False)


def _print_siting(
    document: dict[str, object], chosen: gpd.GeoDataFrame, inputs: AnalysisInputs
) -> None:
    gap = document["gap"]
    status = {
        "optimal": "óptimo probado",
        "time_limit": "límite de tiempo alcanzado",
        "greedy": "orden voraz (sin garantía de óptimo)",
    }[str(document["status"])]
    if gap not in (None, 0.0):
        status += f", hueco relativo {float(str(gap)) * 100:.2f} %"
    console.print(
        f"[bold]Propuesta de {document['new_devices']} nuevos desfibriladores en "
        f"{inputs.city.name}[/] — método {document['method']}: {status}\n"
        f"Radio: {float(str(document['radius_m'])):g} m a pie · "
        f"{document['distance_model_description']}\n"
        f"Candidatos: {document['candidates']} ({document['candidates_count']}) · Cobertura: "
        f"{_pct(float(str(document['share_covered_before'])))} → "
        f"{_pct(float(str(document['share_covered_after'])))}",
        highlight=False,
    )
    table = Table(
        "#", "Emplazamiento", "Tipo", "+ residentes", "+ 65+", "Cobertura tras", "Lon", "Lat"
    )
    for row in chosen.itertuples():
        table.add_row(
            str(row.step),
            f"{row.candidate_id} {row.name}",
            str(row.kind),
            _int(row.residents_gained),
            _int(row.residents_65_plus_gained),
            _pct(row.share_covered_after),
            f"{row.lon:.5f}",
            f"{row.lat:.5f}",
        )
    console.print(table)


# --- maps -------------------------------------------------------------------------------------


class MapKind(StrEnum):
    CITIZEN = "citizen"
    PLANNER = "planner"


@app.command("map")
def map_(
    out: Annotated[
        Path,
        typer.Option("--out", help="Archivo HTML que se escribe (autónomo: se abre sin servidor)."),
    ],
    kind: Annotated[
        MapKind,
        typer.Option(
            "--kind", help="citizen: desfibriladores y el más cercano; planner: cobertura."
        ),
    ] = MapKind.CITIZEN,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            help="Instante ISO 8601 (hora local sin zona). citizen: por defecto, ahora; "
            "planner: por defecto, solo los disponibles 24/7.",
        ),
    ] = None,
    radius_m: RadiusOption = DEFAULT_RADIUS_M,
    new: Annotated[int, typer.Option("--new", min=1, max=50, help="Propuestas (planner).")] = 10,
    objective: Annotated[
        Objective,
        typer.Option(
            "--objective",
            help="planner: las propuestas maximizan residentes cubiertos o vidas salvadas.",
        ),
    ] = Objective.RESIDENTS,
) -> None:
    """Escribe un mapa interactivo en un archivo HTML para compartirlo (desde la base de datos)."""
    settings = _settings()
    instant = _instant(at)
    if not out.parent.is_dir():
        errors.print(f"[bold red]Error[/]: la carpeta de --out {out.parent} no existe.")
        raise typer.Exit(code=2)
    clock = _clock(settings)
    today = _city_today(settings)
    try:
        with errors.status("Dibujando el mapa…"):
            if kind is MapKind.CITIZEN:
                with _open_store(settings) as store:
                    finder = device_finder(store, settings.load_city())
                    html = citizen_map(
                        finder,
                        zones=store.read_layer("ceas"),
                        at=instant or clock.now(),
                        basemap=basemap_of(settings),
                        notice=data_notice(layer.sources for layer in store.summary()),
                    )
                what = f"{len(finder)} desfibriladores"
            else:
                form = PlannerForm(
                    action=None,
                    day=instant.weekday() if instant else None,
                    hour=instant.hour if instant else 0,
                    radius_m=radius_m,
                    new=new,
                    objective=objective.value,
                )
                with _open_store(settings) as store:
                    html = planner_page(
                        settings, store, at=instant, form=form, reference_date=today
                    )
                by = (
                    "por vidas salvadas (alcance del modelo)"
                    if objective is Objective.LIVES
                    else "por residentes"
                )
                what = f"radio {radius_m:g} m, {new} propuestas {by}"
            out.write_text(self_contained(html), encoding="utf-8")
    except CardiomapaError as exc:
        raise _fail(exc) from None
    size = out.stat().st_size / 1024
    console.print(f"Mapa ({kind.value}, {what}) escrito en {out} ({size:,.0f} KB).")


@app.command()
def indicators(
    year: Annotated[
        int | None,
        typer.Option("--year", help="Solo este año del plan (con su variación interanual)."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Fecha de los datos, AAAA-MM-DD (por defecto, hoy)."),
    ] = None,
    radius_m: RadiusOption = DEFAULT_RADIUS_M,
    output: FormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    network: NetworkOption = None,
    no_network: NoNetworkOption = False,
    detour_factor: DetourOption = DEFAULT_DETOUR_FACTOR,
    count_overdue: CountOverdueOption = False,
) -> None:
    """Indicadores del plan por año: desfibriladores, entidades, formación, usos, cobertura."""
    if output is Format.GEOJSON:
        errors.print("[bold red]Error[/]: --format admite table, json o csv para los indicadores.")
        raise typer.Exit(code=2)
    day = _date(as_of, option="--as-of") if as_of else None
    settings, inputs = _inputs(data_dir, network, no_network, count_overdue=count_overdue)
    try:
        with errors.status("Calculando los indicadores…"):
            with _store_unless_files(settings, from_files=data_dir is not None) as store:
                training, uses = plan_registers(
                    settings, inputs, store=store, today=_city_today(settings)
                )
            analysis = indicators_analysis(
                inputs,
                training=training,
                uses=uses,
                references=density_references(settings),
                as_of=day or _city_today(settings),
                radius_m=radius_m,
                detour_factor=detour_factor,
                outcome_parameters=outcome_parameters(settings),
                year=year,
            )
    except CardiomapaError as exc:
        raise _fail(exc) from None
    if output is Format.JSON:
        _emit(outputs.dumps(analysis.document))
    elif output is Format.CSV:
        _emit(outputs.to_csv(indicator_rows(analysis.indicators, year=year)))
    else:
        _print_indicators(analysis.indicators, year)


def _print_indicators(result: Indicators, year: int | None) -> None:
    plan = result.plan
    console.print(
        f"[bold]{plan.name}[/] — {plan.action}\n{plan.goal}. Datos a {result.as_of:%d/%m/%Y}; "
        f"radio {result.radius_m:g} m ({result.distance_model}).",
        highlight=False,
    )
    rows = indicator_rows(result, year=year).set_index("indicator")
    columns = [c for c in rows.columns if c != "label"]
    table = Table("Indicador", *(_column_title(c, result) for c in columns))
    for key in INDICATOR_LABELS:
        if key in OUTCOME_INDICATORS:  # in the table of estimates, with their bands
            continue
        record = rows.loc[key]
        change = (c.startswith("change_") for c in columns)
        table.add_row(
            str(record["label"]),
            *(format_value(key, record[c], change=d) for c, d in zip(columns, change, strict=True)),
        )
    console.print(table)
    _print_lives(result, rows, [c for c in columns if not c.startswith("change_")])
    density = Table("Referencia", "DEA por 100.000 hab.", "Año", "Nuevos DEA para superarla")
    for ref in result.density.to_dict("records"):
        name = f"[bold]{ref['name']}[/]" if ref["is_city"] else ref["name"]
        density.add_row(
            name,
            format_value("devices_per_100k", ref["devices_per_100k"]),
            "—" if ref["year"] is None or pd.isna(ref["year"]) else str(int(ref["year"])),
            "—" if ref["is_city"] else _int(ref["devices_needed"]),
        )
    console.print(density)
    for note in result.notes:
        errors.print(f"[yellow]Nota[/]: {note}", highlight=False)


def _print_lives(result: Indicators, rows: pd.DataFrame, columns: list[str]) -> None:
    """The model's estimates with their bands, and how they were made."""
    lives = result.lives
    if lives is None:
        return
    low, high = BAND_PERCENTILES
    shown = [c for c in columns if c == "to_date" or result.year(int(c))["status"] != "future"]
    table = Table(
        "Estimación",
        *(_column_title(c, result) for c in shown),
        title=f"Vidas salvadas estimadas: valor central y banda del {low:g} al {high:g} %",
        title_justify="left",
    )
    for key in OUTCOME_INDICATORS:
        cells = []
        for column in shown:
            if key in BANDS:
                low_end, high_end = (rows.loc[end, column] for end in BANDS[key])
                text = format_band(key, rows.loc[key, column], low_end, high_end)
                cells.append(text.replace(" (", "\n("))
            else:
                cells.append(format_value(key, rows.loc[key, column]))
        table.add_row(INDICATOR_LABELS[key], *cells)
    console.print(table)
    weeks = ", ".join(
        f"{row.year}: semana del {row.outcome_week_start:%d/%m/%Y}"
        for row in result.years.itertuples()
        if row.status != "future"
    )
    plan = result.plan
    cost = plan.annual_cost_per_device_eur
    euros = "new_devices_annual_cost_eur"
    console.print(
        "Estimaciones del modelo semanal, no recuentos: cada hora de la semana que contiene el "
        f"cierre del año (en el año en curso, la de la fecha de los datos; {weeks}); alcance "
        f"{lives.reach_m:g} m a pie (uso pleno hasta {lives.full_use_m:g} m); "
        f"{lives.draws} simulaciones, semilla {lives.seed}. DEA del plan: los instalados desde "
        "su inicio que siguen en su sitio (también los pendientes de verificar, como en la "
        f"cobertura). {lives.home_arrests}\n"
        + (
            "Coste: sin configurar (plan.device_cost_eur y device_cost_source en city.json)."
            if cost is None
            else f"Coste anual por DEA: {format_value(euros, cost)} "
            f"({format_value(euros, plan.device_cost_eur)} en {plan.lifetime_years:g} años + "
            f"{format_value(euros, plan.device_upkeep_eur_per_year)} al año de mantenimiento; "
            f"fuente: {plan.device_cost_source})."
        ),
        highlight=False,
    )


def _column_title(column: str, result: Indicators) -> str:
    if column == "to_date":
        return f"Plan a {result.as_of:%d/%m/%Y}"
    if column.startswith("change_"):
        return f"Variación {column.removeprefix('change_')}"
    row = result.year(int(column))
    return f"{column} (en curso)" if row["status"] == "in_course" else column


# --- annual report ----------------------------------------------------------------------------


@app.command()
def report(
    year: Annotated[int, typer.Option("--year", help="Año del plan que se evalúa.")],
    out: Annotated[
        Path,
        typer.Option("--out", help="Archivo HTML que se escribe (autónomo e imprimible)."),
    ],
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Fecha de los datos, AAAA-MM-DD (por defecto, hoy)."),
    ] = None,
    radius_m: RadiusOption = DEFAULT_RADIUS_M,
    pdf: Annotated[
        Path | None,
        typer.Option("--pdf", help="Imprime además el informe a este PDF (con Chromium)."),
    ] = None,
    data_dir: DataDirOption = None,
    network: NetworkOption = None,
    no_network: NoNetworkOption = False,
    detour_factor: DetourOption = DEFAULT_DETOUR_FACTOR,
    count_overdue: CountOverdueOption = False,
) -> None:
    """Informe de evaluación anual del plan (HTML autónomo y, con --pdf, PDF)."""
    # matplotlib and the templates load only for this command.
    from geo.render.report import layer_sources, print_pdf
    from geo.services.publishing import build_report

    for option, path in (("--out", out), ("--pdf", pdf)):
        if path is not None and not path.parent.is_dir():
            errors.print(f"[bold red]Error[/]: la carpeta de {option} {path.parent} no existe.")
            raise typer.Exit(code=2)
    day = _date(as_of, option="--as-of") if as_of else None
    settings, inputs = _inputs(data_dir, network, no_network, count_overdue=count_overdue)
    try:
        with errors.status("Calculando los indicadores…") as status:
            with _store_unless_files(settings, from_files=data_dir is not None) as store:
                training, uses = plan_registers(
                    settings, inputs, store=store, today=_city_today(settings)
                )
            analysis = indicators_analysis(
                inputs,
                training=training,
                uses=uses,
                references=density_references(settings),
                as_of=day or _city_today(settings),
                radius_m=radius_m,
                detour_factor=detour_factor,
                outcome_parameters=outcome_parameters(settings),
                year=year,
            )
            status.update("Redactando el informe: huecos, propuesta, gráficos y mapas…")
            html = build_report(
                inputs,
                analysis,
                year=year,
                radius_m=radius_m,
                detour_factor=detour_factor,
                notice=data_notice(layer_sources(inputs.layers, training)),
                training=training,
                generated_at=local_now(_clock(settings), inputs.city.timezone),
            )
            out.write_text(html, encoding="utf-8")
    except CardiomapaError as exc:
        raise _fail(exc) from None
    console.print(f"Informe de {year} escrito en {out} ({out.stat().st_size / 1024:,.0f} KB).")
    if pdf is None:
        return
    try:
        with errors.status("Imprimiendo el PDF con Chromium…"):
            print_pdf(out, pdf)
    except CardiomapaError as exc:
        raise _fail(exc) from None
    console.print(f"PDF escrito en {pdf} ({pdf.stat().st_size / 1024:,.0f} KB).")


# --- open data exports ------------------------------------------------------------------------

_EXPORT_SUFFIXES = {".geojson": "geojson", ".json": "geojson", ".csv": "csv", ".gpkg": "gpkg"}
_EXPORT_LABELS = {"geojson": "GeoJSON", "csv": "CSV", "gpkg": "GeoPackage"}


def _usage_error(message: str) -> typer.Exit:
    errors.print(f"[bold red]Error[/]: {message}", highlight=False)
    return typer.Exit(code=2)


@app.command("export")
def export_(
    layer: Annotated[
        str,
        typer.Option(
            "--layer", help="Capa: defibrillators, ceas, entities, cohousing o population."
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Archivo que se escribe; si ya existe, se sustituye.")
    ],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="geojson, csv o gpkg (GeoPackage). Por defecto, según la extensión de --out.",
        ),
    ] = None,
    all_devices: Annotated[
        bool,
        typer.Option(
            "--all-devices",
            help="Desfibriladores: exportación para el personal, con los pendientes y "
            "rechazados y todos los campos (nunca las notas privadas). Por defecto, solo los "
            "verificados y los campos públicos, como la descarga de la web.",
        ),
    ] = False,
) -> None:
    """Exporta una capa a GeoJSON, CSV o GeoPackage (EPSG:4326) para QGIS y datos abiertos."""
    from geo.io import export

    chosen = fmt if fmt is not None else _EXPORT_SUFFIXES.get(out.suffix.lower())
    if chosen is None:
        raise _usage_error(
            f"no se deduce el formato de {out.name!r}: use --format geojson, csv o gpkg."
        )
    try:
        export.check_layer(layer)
        export_format = export.check_format(chosen)
    except CardiomapaError as exc:
        raise _usage_error(str(exc)) from None
    if all_devices and layer != "defibrillators":
        raise _usage_error("--all-devices solo se aplica a la capa defibrillators.")
    if not out.parent.is_dir():
        raise _usage_error(f"la carpeta de --out {out.parent} no existe.")
    settings = _settings()
    try:
        with (
            _open_store(settings) as store,
            errors.status(f"Exportando {layer} a {out.name}…"),
        ):
            result = export.export_layer(
                store,
                layer,
                fmt=export_format,
                out=out,
                public_only=not all_devices,
                data_licence=settings.data_licence,
            )
    except CardiomapaError as exc:
        raise _fail(exc) from None
    if layer == "defibrillators":
        scope = (
            "todos los desfibriladores y campos (exportación del personal, sin notas privadas)"
            if all_devices
            else "solo desfibriladores verificados y campos públicos"
        )
        errors.print(f"[dim]Incluye {scope}.[/]", highlight=False)
    console.print(
        f"{_int(result.count)} registros de {layer} escritos en {result.path} "
        f"({_EXPORT_LABELS[result.fmt.value]})",
        highlight=False,
        soft_wrap=True,
    )


# --- imports of device registers (OSM, regional open data) -------------------------------------

_SHOWN_SKIPS = 20


@app.command("import")
def import_(
    format_name: Annotated[
        str,
        typer.Argument(
            metavar="FORMATO",
            help="Formato del archivo: osm (Overpass JSON u OpenAEDMap GeoJSON), euskadi, "
            "madrid, jcyl-desa; ine-sections (secciones censales del INE, con --population); "
            "arrests (paradas cardiacas atendidas, CSV: capa privada, solo para el personal).",
        ),
    ],
    file: Annotated[
        Path,
        typer.Argument(metavar="ARCHIVO", help="Archivo a importar.", exists=True, dir_okay=False),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Solo validar y contar; no guardar nada.")
    ] = False,
    addresses: Annotated[
        Path | None,
        typer.Option(
            "--addresses",
            help="Portales con coordenadas para situar registros sin ellas (jcyl-desa).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    population: Annotated[
        Path | None,
        typer.Option(
            "--population",
            help="CSV de residentes por sección censal: código, total y 65 o más (ine-sections).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    duplicate_radius_m: Annotated[
        float,
        typer.Option(
            "--duplicate-radius-m",
            min=0,
            help="Un registro nuevo a menos de estos metros de un desfibrilador de otra "
            "procedencia, con nombre parecido o el mismo número de serie, es un posible "
            "duplicado y no se importa.",
        ),
    ] = 25.0,
    cell_m: Annotated[
        float | None,
        typer.Option(
            "--cell-m",
            min=arrest_records.MIN_CELL_M,
            max=arrest_records.MAX_CELL_M,
            help="Lado en metros de la cuadrícula a la que se agregan las posiciones de las "
            f"paradas (arrests; por defecto {arrest_records.DEFAULT_CELL_M:g}): solo se guarda "
            "el centro de la celda.",
        ),
    ] = None,
    append: Annotated[
        bool,
        typer.Option(
            "--append",
            help="Añadir las paradas a las guardadas en vez de sustituirlas (arrests).",
        ),
    ] = False,
) -> None:
    """Importa desfibriladores de OpenStreetMap o de un registro oficial: todo o nada,
    reimportar no duplica y los posibles duplicados se avisan sin importarlos.

    Con arrests importa paradas cardiacas pasadas (capa privada, todo o nada; sustituye a las
    guardadas salvo con --append): CSV en UTF-8 con cabecera occurred_at (hora local), lon, lat
    (grados), place_type (domicilio, vía pública, otro…) y, opcionales, bystander_cpr, aed_used,
    survived_30d, discharged_alive (sí/no), address, id, source. La posición se agrega al centro
    de una celda de --cell-m metros; la exacta y la dirección no se guardan."""
    if format_name == arrest_records.FORMAT:
        if addresses is not None or population is not None:
            raise _import_usage(
                f"las opciones --addresses y --population no se aplican al formato {format_name}."
            )
        _import_arrests(file, dry_run=dry_run, cell_m=cell_m, append=append)
        return
    if cell_m is not None or append:
        raise _import_usage(
            f"las opciones --cell-m y --append solo se aplican al formato {arrest_records.FORMAT}."
        )
    if format_name == ine_sections.FORMAT:
        if addresses is not None:
            raise _import_usage(f"la opción --addresses no se aplica al formato {format_name}.")
        _import_sections(file, population, dry_run=dry_run)
        return
    if population is not None:
        raise _import_usage(
            f"la opción --population solo se aplica al formato {ine_sections.FORMAT}."
        )
    parser = IMPORTERS.get(format_name)
    if parser is None:
        formats = ", ".join(sorted([*IMPORTERS, ine_sections.FORMAT, arrest_records.FORMAT]))
        raise _import_usage(f"formato {format_name!r} desconocido; se admite: {formats}.")
    # Options an importer may take, by keyword: each is passed only to the importers whose
    # signature names it, and refused for the others. A new option: add it above and here.
    options = _importer_options(parser, format_name, {"addresses": addresses})
    settings = _settings()
    try:
        city = settings.load_city()
        with errors.status(f"Leyendo {file.name}…"):
            parsed = parser(file, city=city, **options)
        with _open_store(settings) as store, _progress() as progress:
            task = progress.add_task("Validando", total=max(len(parsed.records), 1))

            def advance(stage: str, done: int, total: int) -> None:
                progress.update(task, description=stage, completed=done, total=max(total, 1))

            report = import_devices(
                store,
                parsed,
                city,
                dry_run=dry_run,
                actor="cli",
                today=_city_today(settings),
                duplicate_radius_m=duplicate_radius_m,
                on_progress=advance,
            )
    except ImportFormatError as exc:
        failure = _fail(exc)
        errors.print("No se ha importado nada: la base de datos sigue como estaba.")
        raise failure from None
    except CardiomapaError as exc:
        raise _fail(exc) from None
    _print_device_import(report)


def _import_sections(file: Path, population: Path | None, *, dry_run: bool) -> None:
    """``import ine-sections``: census sections + residents CSV → the population layer."""
    settings = _settings()
    try:
        city = settings.load_city()
        with errors.status(f"Leyendo {file.name}…"):
            result = ine_sections.parse(file, city=city, population=population)
        if not dry_run:
            with _open_store(settings) as store:
                store.replace_layer(
                    "population", result.frame, actor="cli", source=ine_sections.SOURCE
                )
    except (ImportFormatError, LayerValidationError) as exc:
        failure = _fail(exc)
        errors.print("No se ha importado nada: la base de datos sigue como estaba.")
        raise failure from None
    except CardiomapaError as exc:
        raise _fail(exc) from None
    if dry_run:
        console.print("[bold]Simulación: no se ha guardado nada.[/]", highlight=False)
    console.print(
        f"Secciones censales de {result.sections_file} con la población de "
        f"{result.population_file} (procedencia {ine_sections.SOURCE!r}; licencia: "
        f"{ine_sections.LICENCE}).",
        highlight=False,
        soft_wrap=True,
    )
    table = Table("Secciones", "Número")
    rows = (
        ("leídas", result.sections_read),
        (f"de {city.name}", result.sections_in_city),
        ("con población (puntos de la capa)", result.matched),
        ("sin cifras en la tabla", len(result.without_figures)),
        ("en la tabla sin geometría", len(result.without_geometry)),
    )
    for label, count in rows:
        table.add_row(label, _int(count))
    console.print(table)
    verb = "sustituiría" if dry_run else "sustituye"
    console.print(
        f"Residentes: {_int(result.residents)} ({_int(result.residents_65_plus)} de 65 o más) "
        f"frente a {_int(result.city_population)} del perfil; esta capa {verb} a la de "
        "población.",
        highlight=False,
        soft_wrap=True,
    )
    for note in result.notes:
        console.print(note, highlight=False, soft_wrap=True, markup=False)


def _import_arrests(file: Path, *, dry_run: bool, cell_m: float | None, append: bool) -> None:
    """``import arrests``: past cardiac arrests (PRIVATE), coarsened, into their own table."""
    settings = _settings()
    size = arrest_records.DEFAULT_CELL_M if cell_m is None else cell_m
    try:
        city = settings.load_city()
        rows = read_csv_register(
            file,
            required=arrest_records.CSV_REQUIRED_COLUMNS,
            optional=arrest_records.CSV_OPTIONAL_COLUMNS,
        )
        frame = arrest_records.parse_arrests(
            rows,
            file=file.name,
            city=city,
            now=local_now(settings.clock(city), city.timezone),
            source=f"csv:{file.name}",
            cell_m=size,
        )
        stored = before = None
        if not dry_run:
            with _open_store(settings) as store:
                if append:
                    stored = store.append_arrests(frame, actor="cli")
                else:
                    before, stored = store.replace_arrests(frame, actor="cli")
    except LayerValidationError as exc:
        failure = _fail(exc)
        errors.print("No se ha importado nada: la base de datos sigue como estaba.")
        raise failure from None
    except CardiomapaError as exc:
        raise _fail(exc) from None
    if dry_run:
        console.print("[bold]Simulación: no se ha guardado nada.[/]", highlight=False)
    places = frame["place_type"].value_counts()
    detail = " · ".join(
        f"{label}: {int(places.get(code, 0))}"
        for code, label in arrest_records.PLACE_LABELS.items()
    )
    first, last = frame["occurred_at"].min(), frame["occurred_at"].max()
    console.print(
        f"Paradas de {file.name}: {len(frame)} leídas ({detail}), del {first:%Y-%m-%d} al "
        f"{last:%Y-%m-%d}. Posiciones agregadas a celdas de {size:g} m ({city.metric_crs}): "
        "solo se guarda el centro de la celda, nunca la posición exacta ni la dirección.",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
    if stored is not None:
        what = f"sustituyen a las {before} anteriores" if before is not None else "añadidas"
        console.print(f"Guardadas ({what}): {stored} paradas en total.", highlight=False)
    console.print(
        "Capa privada: solo la usan el personal y sus análisis; nunca se publica ni se exporta.",
        highlight=False,
    )


def _importer_options(
    parser: Callable[..., object], format_name: str, given: dict[str, object]
) -> dict[str, object]:
    """The options given that the importer takes; exits (2) on one it does not take."""
    import inspect

    accepted = {
        name
        for name, parameter in inspect.signature(parser).parameters.items()
        if parameter.kind in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD)
    }
    options = {}
    for name, value in given.items():
        if value is None:
            continue
        if name not in accepted:
            flag = "--" + name.replace("_", "-")
            raise _import_usage(f"la opción {flag} no se aplica al formato {format_name}.")
        options[name] = value
    return options


def _import_usage(message: str) -> typer.Exit:
    errors.print(f"[bold red]Error[/]: {message}", highlight=False)
    return typer.Exit(code=2)


def _print_device_import(report: DeviceImportReport) -> None:
    """Counts, skipped records and warnings of a device import."""
    if report.dry_run:
        console.print("[bold]Simulación: no se ha guardado nada.[/]", highlight=False)
    console.print(
        f"Importación {report.format} de {report.file} (procedencia {report.source!r}; "
        f"licencia: {report.licence}).",
        highlight=False,
        soft_wrap=True,
    )
    table = Table("Registros", "Número")
    verb = "se insertarían" if report.dry_run else "insertados"
    rows = (
        ("leídos", report.read),
        (verb, report.inserted),
        ("se actualizarían" if report.dry_run else "actualizados", report.updated),
        ("sin cambios", report.unchanged),
        ("omitidos", len(report.skipped)),
        ("posibles duplicados (entre los omitidos)", len(report.duplicates)),
    )
    for label, count in rows:
        table.add_row(label, _int(count))
    console.print(table)
    for title, ids in ((verb.capitalize(), report.inserted_ids),
                       ("Se actualizarían" if report.dry_run else "Actualizados",
                        report.updated_ids)):  # fmt: skip
        if ids:
            more = f" … y {len(ids) - _SHOWN_SKIPS} más" if len(ids) > _SHOWN_SKIPS else ""
            shown = ", ".join(ids[:_SHOWN_SKIPS])
            console.print(f"{title}: {shown}{more}.", highlight=False, soft_wrap=True)
    skipped = [(item.record, item.source_id, item.reason) for item in report.skipped]
    flagged = [(item.record, item.source_id, item.message) for item in report.flagged]
    for title, items in (("Registros omitidos", skipped), ("Avisos", flagged)):
        if not items:
            continue
        console.print(f"{title}:", highlight=False)
        for record, source_id, text in items[:_SHOWN_SKIPS]:
            ref = f" ({source_id})" if source_id else ""
            line = f"  - registro {record}{ref}: {text}"
            console.print(line, highlight=False, soft_wrap=True, markup=False)
        if len(items) > _SHOWN_SKIPS:
            console.print(f"  … y {len(items) - _SHOWN_SKIPS} más.", highlight=False)
    for note in report.notes:
        console.print(note, highlight=False, soft_wrap=True)


# --- walking network --------------------------------------------------------------------------

network_app = typer.Typer(help="Red peatonal para medir distancias a pie por las calles.")
app.add_typer(network_app, name="network")


@network_app.command("load")
def network_load(
    file: Annotated[
        Path, typer.Argument(help="Archivo OSM (.osm, .osm.pbf) o GraphML de osmnx.", exists=True)
    ],
) -> None:
    """Carga una red peatonal en la base de datos (sustituye a la anterior)."""
    settings = _settings()
    try:
        city = settings.load_city()
        with console.status(f"Leyendo {file.name}…"):
            walking = load_network(file, crs=city.metric_crs)
        with _open_store(settings) as store, _progress() as progress:
            task = progress.add_task("Guardando", total=walking.n_nodes + walking.n_edges)
            nodes, edges = store.save_network(
                walking, on_rows=lambda _name, rows: progress.update(task, advance=rows)
            )
    except CardiomapaError as exc:
        raise _fail(exc) from None
    console.print(
        f"Red guardada en la base de datos: {_int(nodes)} nodos y {_int(edges)} tramos "
        f"de {walking.source}."
    )


@network_app.command("info")
def network_info() -> None:
    """Muestra la red peatonal cargada, si la hay."""
    settings = _settings()
    try:
        city = settings.load_city()
        with _open_store(settings) as store:
            walking = store.read_network(crs=city.metric_crs)
    except CardiomapaError as exc:
        raise _fail(exc) from None
    if walking is None:
        console.print("No hay red peatonal cargada: se usa la distancia en línea recta × rodeo.")
    else:
        console.print(f"Red cargada: {walking.describe()}.")


@network_app.command("clear")
def network_clear() -> None:
    """Borra la red peatonal de la base de datos."""
    _on_store(Store.clear_network)
    console.print("Red peatonal borrada.")


# --- API tokens -------------------------------------------------------------------------------

token_app = typer.Typer(help="Tokens de la API para entidades, planificación y administración.")
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    entity: Annotated[
        str | None, typer.Option("--entity", help="Id de la entidad (token de entidad).")
    ] = None,
    role: Annotated[
        str | None, typer.Option("--role", help="planner o admin (token del Ayuntamiento).")
    ] = None,
    label: Annotated[str | None, typer.Option("--label", help="Para quién es.")] = None,
    expires_days: Annotated[
        int | None, typer.Option("--expires-days", min=1, help="Caduca tras estos días.")
    ] = None,
) -> None:
    """Emite un token: se muestra una sola vez (solo se guarda su huella SHA-256)."""
    if (entity is None) == (role is None):
        errors.print("[bold red]Error[/]: indique --entity ID o --role planner|admin (solo uno).")
        raise typer.Exit(code=2)
    if role is not None and role not in ("planner", "admin"):
        errors.print(f"[bold red]Error[/]: --role {role!r} no admitido; use planner o admin.")
        raise typer.Exit(code=2)
    expires = None
    if expires_days is not None:
        expires = _clock(_settings()).now() + dt.timedelta(days=expires_days)
    issued = _on_store(
        lambda store: issue_token(
            store, role=role or "entity", entity_id=entity, label=label, expires_at=expires
        )
    )
    record = issued.record
    errors.print(
        f"Token {record.id} creado ({record.role}"
        + (f", entidad {record.entity_id}" if record.entity_id else "")
        + (f", caduca {record.expires_at:%Y-%m-%d}" if record.expires_at else "")
        + "). Guárdelo ahora: no se volverá a mostrar.",
        highlight=False,
    )
    _emit(issued.secret)


@token_app.command("list")
def token_list() -> None:
    """Lista los tokens emitidos (nunca sus secretos)."""
    tokens = _on_store(Store.tokens)
    table = Table("Id", "Rol", "Entidad", "Etiqueta", "Creado (UTC)", "Caduca", "Estado")
    now = utcnow(_clock(_settings()))
    for token in tokens:
        if token.revoked_at is not None:
            state = f"revocado {token.revoked_at:%Y-%m-%d}"
        elif token.expires_at is not None and token.expires_at <= now:
            state = "caducado"
        else:
            state = "activo"
        table.add_row(
            str(token.id),
            token.role,
            token.entity_id or "—",
            token.label,
            f"{token.created_at:%Y-%m-%d %H:%M}",
            f"{token.expires_at:%Y-%m-%d}" if token.expires_at else "—",
            state,
        )
    console.print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="Id del token (columna Id de token list).")],
) -> None:
    """Revoca un token: deja de valer en la siguiente petición."""
    record = _on_store(lambda store: store.revoke_token(token_id, actor="cli"))
    console.print(f"Token {record.id} revocado ({record.revoked_at:%Y-%m-%d %H:%M} UTC).")


# --- the training register (plan action 1.3) ----------------------------------------------------

training_app = typer.Typer(help="Registro de formación en soporte vital básico y uso del DEA.")
app.add_typer(training_app, name="training")


def _city_today(settings: Settings) -> dt.date:
    """Today in the city's time zone, by the command's clock."""
    city = settings.load_city()
    return local_today(settings.clock(city), city.timezone)


def _print_import(report: ImportReport) -> None:
    verb = "Se importarían" if report.dry_run else "Importadas"
    console.print(
        f"Registro de formación {report.file}: {report.read} filas leídas · {verb}: "
        f"{report.inserted} nuevas, {report.updated} actualizadas, {report.unchanged} sin cambios."
        + (" (simulación: no se ha guardado nada)" if report.dry_run else ""),
        highlight=False,
    )


@training_app.command("import")
def training_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV en UTF-8, separado por comas o punto y coma, con cabecera: "
            "held_on, entity_id, place, kind, people_trained y, opcionales, trainer, notes, "
            "id, source.",
            exists=True,
            dir_okay=False,
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Solo validar y contar; no guardar nada.")
    ] = False,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="Procedencia de las filas sin columna source (por defecto csv:<archivo>).",
        ),
    ] = None,
    today: Annotated[
        str | None,
        typer.Option(
            "--today",
            help="Fecha de referencia AAAA-MM-DD: ninguna formación puede ser posterior "
            "(por defecto, hoy).",
        ),
    ] = None,
) -> None:
    """Importa un registro de formación en CSV: todo o nada, y reimportarlo no duplica."""
    settings = _settings()
    day = _reference_day(today, settings)
    try:
        with _open_store(settings) as store:
            report = import_training(
                store, file, today=day, actor="cli", source=source, dry_run=dry_run
            )
    except LayerValidationError as exc:
        failure = _fail(exc)
        errors.print("No se ha importado nada: la base de datos sigue como estaba.")
        raise failure from None
    except CardiomapaError as exc:
        raise _fail(exc) from None
    _print_import(report)


def _reference_day(text: str | None, settings: Settings) -> dt.date:
    if text is None:
        return _city_today(settings)
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        errors.print(f"[bold red]Error[/]: --today {text!r} no es una fecha AAAA-MM-DD.")
        raise typer.Exit(code=2) from None


@training_app.command("list")
def training_list(
    year: Annotated[int | None, typer.Option("--year", help="Solo las de este año.")] = None,
    entity: Annotated[
        str | None, typer.Option("--entity", help="Solo las de esta entidad (id).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Cuántas mostrar.")] = 100,
) -> None:
    """Lista las acciones de formación registradas, de la más reciente a la más antigua."""
    items, total = _on_store(
        lambda store: store.training_actions(year=year, entity_id=entity, limit=limit)
    )
    table = Table("Id", "Fecha", "Entidad", "Lugar", "Tipo", "Personas", "Procedencia")
    for item in items:
        reference = "" if item["source_id"] is None else f": {item['source_id']}"
        table.add_row(
            str(item["id"]),
            item["held_on"].isoformat(),
            item["entity_id"] or "—",
            item["place"],
            KIND_LABELS[item["kind"]],
            str(item["people_trained"]),
            item["source"] + reference,
        )
    console.print(table)
    people = sum(item["people_trained"] for item in items)
    shown = f"{len(items)} de {total}" if len(items) < total else str(total)
    console.print(f"Acciones mostradas: {shown} · personas formadas en ellas: {_int(people)}.")


# --- entities' access, contacts and maintenance reminders ---------------------------------------

entity_app = typer.Typer(help="Acceso de las entidades al portal: invitaciones y revocación.")
app.add_typer(entity_app, name="entity")


def _require_entity(store: Store, entity_id: str) -> str:
    """The entity's name; a clear error when it is not in the entities layer."""
    found = store.query_layer("entities", ids=[entity_id])
    if found.empty:
        msg = f"No existe la entidad {entity_id!r} en la capa de entidades."
        raise NotFoundError(msg)
    return str(found.iloc[0]["name"])


@entity_app.command("invite")
def entity_invite(
    entity_id: Annotated[str, typer.Argument(help="Id de la entidad (capa de entidades).")],
    days: Annotated[
        int, typer.Option("--days", min=1, max=90, help="Días que vale el enlace.")
    ] = INVITATION_DAYS,
) -> None:
    """Crea un enlace de invitación de un solo uso: se muestra una sola vez."""
    settings = _settings()

    def work(store: Store) -> tuple[str, IssuedInvitation]:
        name = _require_entity(store, entity_id)
        return name, issue_invitation(store, entity_id=entity_id, days=days, actor="cli")

    name, issued = _on_store(work)
    errors.print(
        f"Invitación {issued.record.id} para {name} ({entity_id}), válida hasta el "
        f"{issued.record.expires_at:%d/%m/%Y %H:%M} UTC y para un solo uso. Envíe el enlace a "
        "la entidad: no se volverá a mostrar.",
        highlight=False,
    )
    _emit(issued.url(settings.base_url()))


@entity_app.command("revoke")
def entity_revoke(
    entity_id: Annotated[str, typer.Argument(help="Id de la entidad (capa de entidades).")],
) -> None:
    """Revoca todos los tokens y las invitaciones abiertas de una entidad."""

    def work(store: Store) -> tuple[str, tuple[int, int]]:
        name = _require_entity(store, entity_id)
        return name, store.revoke_entity_access(entity_id, actor="cli")

    name, (tokens, invitations) = _on_store(work)
    console.print(
        f"Acceso de {name} ({entity_id}) revocado: {tokens} token(s) y {invitations} "
        "invitación(es) abiertas dejan de valer.",
        highlight=False,
    )


@entity_app.command("list")
def entity_list() -> None:
    """Lista las entidades con su correo de contacto (sí/no), tokens e invitaciones."""

    def work(
        store: Store,
    ) -> tuple[
        gpd.GeoDataFrame, dict[str, dict[str, Any]], list[TokenRecord], list[InvitationRecord]
    ]:
        return store.query_layer("entities"), store.contacts(), store.tokens(), store.invitations()

    entities, contacts, tokens, invitations = _on_store(work)
    now = utcnow(_clock(_settings()))
    table = Table("Id", "Nombre", "Correo de contacto", "Tokens activos", "Último uso (UTC)",
                  "Invitaciones abiertas")  # fmt: skip
    for entity_id, name in sorted(zip(entities["id"], entities["name"], strict=True)):
        live = [
            t for t in tokens
            if t.entity_id == entity_id and t.revoked_at is None
            and (t.expires_at is None or t.expires_at > now)
        ]  # fmt: skip
        used = [t.last_used_at for t in tokens if t.entity_id == entity_id and t.last_used_at]
        open_ = [
            i for i in invitations
            if i.entity_id == entity_id
            and i.used_at is None and i.revoked_at is None and i.expires_at > now
        ]  # fmt: skip
        table.add_row(
            str(entity_id),
            str(name),
            "sí" if (contacts.get(entity_id) or {}).get("email") else "no",
            str(len(live)),
            f"{max(used):%Y-%m-%d %H:%M}" if used else "—",
            str(len(open_)),
        )
    console.print(table)


contacts_app = typer.Typer(help="Contactos privados de las entidades (para los avisos).")
app.add_typer(contacts_app, name="contacts")


@contacts_app.command("import")
def contacts_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV en UTF-8, separado por comas o punto y coma, con cabecera "
            "entity_id,person,email,phone.",
            exists=True,
            dir_okay=False,
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Solo validar y contar; no guardar nada.")
    ] = False,
) -> None:
    """Importa los contactos de las entidades: se valida todo antes y no se guarda nada si hay
    algún error."""
    settings = _settings()
    try:
        with _open_store(settings) as store:
            report = import_contacts(store, file, actor="cli", dry_run=dry_run)
    except LayerValidationError as exc:
        failure = _fail(exc)
        errors.print("No se ha importado nada: la base de datos sigue como estaba.")
        raise failure from None
    except CardiomapaError as exc:
        raise _fail(exc) from None
    verb = "Se importarían" if report.dry_run else "Importados"
    console.print(
        f"Contactos {report.file}: {report.read} filas leídas · {verb}: {report.inserted} "
        f"nuevos, {report.updated} actualizados, {report.unchanged} sin cambios."
        + (" (simulación: no se ha guardado nada)" if report.dry_run else ""),
        highlight=False,
    )


reminders_app = typer.Typer(help="Avisos de mantenimiento por correo a las entidades.")
app.add_typer(reminders_app, name="reminders")


class ReportFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


@reminders_app.command("send")
def reminders_send(
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Mostrar qué se enviaría y a quién; no enviar, guardar ni crear invitaciones.",
        ),
    ] = False,
    output: Annotated[
        ReportFormat, typer.Option("--format", help="table o json.")
    ] = ReportFormat.TABLE,
    today: Annotated[
        str | None,
        typer.Option("--today", help="Fecha de referencia AAAA-MM-DD (por defecto, hoy)."),
    ] = None,
    within_days: Annotated[
        int | None,
        typer.Option(
            "--within-days",
            min=0,
            max=3650,
            help="Avisar de baterías y parches que caducan en estos días "
            "(CARDIOMAPA_REMINDER_WITHIN_DAYS, 30).",
        ),
    ] = None,
    unchecked_days: Annotated[
        int | None,
        typer.Option(
            "--unchecked-days",
            min=1,
            max=3650,
            help="Avisar de equipos sin revisar en más de estos días "
            "(CARDIOMAPA_REMINDER_UNCHECKED_DAYS, 183).",
        ),
    ] = None,
    repeat_days: Annotated[
        int | None,
        typer.Option(
            "--repeat-days",
            min=0,
            max=3650,
            help="No repetir el mismo aviso antes de estos días "
            "(CARDIOMAPA_REMINDER_REPEAT_DAYS, 7).",
        ),
    ] = None,
) -> None:
    """Envía a cada entidad un correo con sus desfibriladores que necesitan revisión."""
    settings = _settings()
    day = _reference_day(today, settings)
    try:
        with _open_store(settings) as store:
            run = send_reminders(
                store, settings, today=day, dry_run=dry_run, within_days=within_days,
                unchecked_days=unchecked_days, repeat_days=repeat_days,
            )  # fmt: skip
    except CardiomapaError as exc:
        raise _fail(exc) from None
    if output is ReportFormat.JSON:
        _emit(json.dumps(run_summary(run), ensure_ascii=False, indent=2))
    else:
        _print_reminders(run)
    if run.failed:
        raise typer.Exit(code=1)


def _print_reminders(run: ReminderRun) -> None:
    plan = run.plan
    summary = run_summary(run)
    states = {"would_send": "se enviaría", "sent": "enviado", "failed": "FALLÓ",
              "not_sent": "no enviado"}  # fmt: skip
    table = Table("Entidad", "Destinatario", "Desfibriladores y motivos", "Estado",
                  title=f"Avisos de mantenimiento ({plan.today:%d/%m/%Y})")  # fmt: skip
    for message in summary["messages"]:
        lines = [
            f"{device['name']}: " + "; ".join(r["text"] for r in device["reasons"])
            for device in message["devices"]
        ]
        status = states[message["status"]]
        if message["error"]:
            status += f": {message['error']}"
        table.add_row(f"{message['entity_name']} ({message['entity_id']})",
                      message["recipient"], "\n".join(lines), status)  # fmt: skip
    if summary["messages"]:
        console.print(table)
    for skipped in plan.skipped:
        console.print(
            f"Sin aviso: {skipped.entity_name or '—'} ({skipped.entity_id}), "
            f"{len(skipped.devices)} desfibrilador(es): {skipped.reason}.",
            highlight=False,
        )
    if plan.unassigned:
        console.print(
            f"{len(plan.unassigned)} desfibrilador(es) con revisión pendiente sin entidad "
            f"responsable: {', '.join(plan.unassigned)}.",
            highlight=False,
        )
    if plan.held_back:
        console.print(
            f"{plan.held_back} aviso(s) ya enviados en los últimos {plan.repeat_days} días no "
            "se repiten.",
            highlight=False,
        )
    if run.dry_run:
        console.print(
            f"Simulación: se enviarían {len(plan.messages)} correo(s); no se ha enviado ni "
            "guardado nada.",
            highlight=False,
        )
    else:
        console.print(
            f"Enviados {len(run.sent)} correo(s)"
            + (f"; {len(run.failed)} fallaron y se reintentarán en el próximo envío."
               if run.failed else ".")
            ,
            highlight=False,
        )  # fmt: skip


if __name__ == "__main__":
    app()
