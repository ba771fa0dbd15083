"""The database and the server: ``load`` the layer files, list the ``layers``, ``migrate`` the
schema and ``serve`` the web app (imported only when it runs).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from geo.cli.backups import BackupDirOption, _backup_before, _backup_folder
from geo.cli.common import (
    _SHOWN_SKIPS,
    DataDirOption,
    _city_today,
    _clock,
    _fail,
    _on_store,
    _open_store,
    _progress,
    _settings,
    console,
    errors,
)
from geo.cli.training import _print_import
from geo.core.layers import DEFIBRILLATORS, LAYERS, Layers, LayerSchema, upkeep_warnings
from geo.errors import CardiomapaError, LayerValidationError, Problem
from geo.io.files import read_layers
from geo.io.serve_record import clear_serve, record_serve
from geo.io.store import Store, create_db_engine, schema_revision
from geo.io.store import migrate as migrate_schema
from geo.services.training import TRAINING_FILE, PreparedImport, prepare_import, store_import
from geo.settings import Settings


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
    console.print(f"Capas cargadas desde {settings.data_dir}:", markup=False, highlight=False)
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
        console.print(
            f"{label}: {len(ids)}: {shown}", highlight=False, soft_wrap=True, markup=False
        )


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


def layers() -> None:
    """Muestra las capas de la base de datos: registros y procedencia (source)."""
    summary = _on_store(Store.summary)
    table = Table("Capa", "Nombre", "Registros", "Procedencia (source: registros)")
    for layer in summary:
        sources = "\n".join(f"{source}: {n}" for source, n in layer.sources.items()) or "—"
        table.add_row(layer.name, layer.title, str(layer.count), sources)
    console.print(table)


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
    # The workers build their settings from the environment: tell them where they listen, so
    # the links and QR codes they make (Settings.base_url) name the port actually served.
    os.environ["CARDIOMAPA_HOST"] = str(options["host"])
    os.environ["CARDIOMAPA_PORT"] = str(options["port"])
    from api.serving import AddressInUse, check_free

    try:  # refused before the record is written: a busy port must not replace another's record
        check_free(options["host"], options["port"])
    except AddressInUse as exc:
        errors.print(
            f"[bold red]Error[/]: no se puede escuchar en {options['host']}:{options['port']}: "
            f"{escape(str(exc.strerror))}."
        )
        raise typer.Exit(code=1) from None
    # And tell the other commands on this database (entity invite, reminders send).
    try:
        record_serve(settings.database_url, host=options["host"], port=options["port"])
    except OSError as exc:  # a read-only folder: serve all the same, links fall back
        errors.print(
            f"Aviso: no se ha podido anotar la dirección del servidor ({escape(str(exc))}); "
            "`entity invite` usará CARDIOMAPA_PUBLIC_URL o la dirección predeterminada.",
            highlight=False,
        )
    # uvicorn re-raises the SIGTERM it stopped on once it has shut down: make that an exit that
    # unwinds (exit status 143, as the signal's), so the record is cleared on the way out.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        _run(options, workers)
    finally:
        clear_serve(settings.database_url)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _run(options: dict[str, Any], workers: int) -> None:
    import uvicorn

    from api.serving import APP_FACTORY, AddressInUse, WorkersError, run_workers

    if workers == 1:
        uvicorn.run(APP_FACTORY, **options)
        return
    try:
        run_workers(uvicorn.Config(APP_FACTORY, **options))
    except AddressInUse as exc:
        errors.print(
            f"[bold red]Error[/]: no se puede escuchar en {options['host']}:{options['port']}: "
            f"{escape(str(exc.strerror))}."
        )
        raise typer.Exit(code=1) from None
    except WorkersError as exc:
        errors.print(f"[bold red]Error[/]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(code=1) from None


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
