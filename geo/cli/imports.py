"""``import``: device registers (OSM, regional open data), census sections and past cardiac
arrests.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from geo.cli.common import (
    _SHOWN_SKIPS,
    DryRunOption,
    _city_today,
    _int,
    _open_store,
    _progress,
    _settings,
    all_or_nothing,
    console,
    errors,
    usage_error,
)
from geo.clock import local_now
from geo.core import arrests as arrest_records
from geo.errors import ImportFormatError, LayerValidationError
from geo.io.importers import IMPORTERS, ine_sections
from geo.io.importers.base import ParsedImport
from geo.io.importers.run import ImportReport as DeviceImportReport
from geo.io.importers.run import import_devices
from geo.services.registers import read_csv_register


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
    dry_run: DryRunOption = False,
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
    _check_format_options(
        format_name, addresses=addresses, population=population, cell_m=cell_m, append=append
    )
    if format_name == arrest_records.FORMAT:
        _import_arrests(file, dry_run=dry_run, cell_m=cell_m, append=append)
    elif format_name == ine_sections.FORMAT:
        _import_sections(file, population, dry_run=dry_run)
    else:
        _import_device_register(
            format_name,
            file,
            addresses=addresses,
            dry_run=dry_run,
            duplicate_radius_m=duplicate_radius_m,
        )


def _check_format_options(
    format_name: str,
    *,
    addresses: Path | None,
    population: Path | None,
    cell_m: float | None,
    append: bool,
) -> None:
    """Refuse (exit 2) an option of another format than ``format_name``, before reading."""
    if format_name == arrest_records.FORMAT:
        if addresses is not None or population is not None:
            raise usage_error(
                f"las opciones --addresses y --population no se aplican al formato {format_name}."
            )
        return
    if cell_m is not None or append:
        raise usage_error(
            f"las opciones --cell-m y --append solo se aplican al formato {arrest_records.FORMAT}."
        )
    if format_name == ine_sections.FORMAT:
        if addresses is not None:
            raise usage_error(f"la opción --addresses no se aplica al formato {format_name}.")
    elif population is not None:
        raise usage_error(
            f"la opción --population solo se aplica al formato {ine_sections.FORMAT}."
        )


def _device_parser(format_name: str) -> Callable[..., ParsedImport]:
    """The reader of a device register's format; exits (2) on a format no command imports."""
    parser = IMPORTERS.get(format_name)
    if parser is None:
        formats = ", ".join(sorted([*IMPORTERS, ine_sections.FORMAT, arrest_records.FORMAT]))
        raise usage_error(f"formato {format_name!r} desconocido; se admite: {formats}.")
    return parser


def _import_device_register(
    format_name: str,
    file: Path,
    *,
    addresses: Path | None,
    dry_run: bool,
    duplicate_radius_m: float,
) -> None:
    """``import`` of a device register (osm, euskadi, madrid, jcyl-desa): all or nothing."""
    parser = _device_parser(format_name)
    # Options an importer may take, by keyword: each is passed only to the importers whose
    # signature names it, and refused for the others. A new option: add it above and here.
    options = _importer_options(parser, format_name, {"addresses": addresses})
    settings = _settings()
    with all_or_nothing(ImportFormatError):
        city = settings.load_city()
        with errors.status(f"Leyendo {escape(file.name)}…"):
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
    _print_device_import(report)


def _import_sections(file: Path, population: Path | None, *, dry_run: bool) -> None:
    """``import ine-sections``: census sections + residents CSV → the population layer."""
    settings = _settings()
    with all_or_nothing(ImportFormatError, LayerValidationError):
        city = settings.load_city()
        with errors.status(f"Leyendo {escape(file.name)}…"):
            result = ine_sections.parse(file, city=city, population=population)
        if not dry_run:
            with _open_store(settings) as store:
                store.replace_layer(
                    "population", result.frame, actor="cli", source=ine_sections.SOURCE
                )
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
    with all_or_nothing(LayerValidationError):
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
            raise usage_error(f"la opción {flag} no se aplica al formato {format_name}.")
        options[name] = value
    return options


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
            console.print(f"{title}: {shown}{more}.", highlight=False, soft_wrap=True, markup=False)
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
        console.print(note, highlight=False, soft_wrap=True, markup=False)
