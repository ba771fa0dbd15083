"""Files to share: an interactive ``map`` page and open-data ``export`` of a layer."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from geo.cli.common import (
    _city_today,
    _clock,
    _fail,
    _int,
    _open_store,
    _settings,
    console,
    errors,
    usage_error,
)
from geo.cli.options import Objective, RadiusOption, _instant
from geo.core.coverage import DEFAULT_RADIUS_M
from geo.core.outputs import data_notice
from geo.core.text import in_words
from geo.errors import CardiomapaError
from geo.render.maps import PlannerForm, basemap_of, citizen_map, self_contained
from geo.services.inputs import device_finder
from geo.services.publishing import planner_page


class MapKind(StrEnum):
    CITIZEN = "citizen"
    PLANNER = "planner"


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
    console.print(
        f"Mapa {in_words('map', kind)} ({what}) escrito en {out} ({size:,.0f} KB).",
        markup=False,
        highlight=False,
    )


_EXPORT_SUFFIXES = {".geojson": "geojson", ".json": "geojson", ".csv": "csv", ".gpkg": "gpkg"}
_EXPORT_LABELS = {"geojson": "GeoJSON", "csv": "CSV", "gpkg": "GeoPackage"}


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
        raise usage_error(
            f"no se deduce el formato de {out.name!r}: use --format geojson, csv o gpkg."
        )
    try:
        export.check_layer(layer)
        export_format = export.check_format(chosen)
    except CardiomapaError as exc:
        raise usage_error(str(exc)) from None
    if all_devices and layer != "defibrillators":
        raise usage_error("--all-devices solo se aplica a la capa defibrillators.")
    if not out.parent.is_dir():
        raise usage_error(f"la carpeta de --out {out.parent} no existe.")
    settings = _settings()
    try:
        with (
            _open_store(settings) as store,
            errors.status(f"Exportando {layer} a {escape(out.name)}…"),
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
