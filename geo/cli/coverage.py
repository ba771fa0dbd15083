"""``coverage`` (who lives within reach of an available defibrillator, at an instant or hour by
hour over a week) and ``gaps`` (where they do not).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

import geopandas as gpd
import numpy as np
import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from geo.cli.common import (
    _city_today,
    _day,
    _emit,
    _int,
    _pct,
    console,
    errors,
    working,
)
from geo.cli.options import (
    DEFAULT_SCENE,
    AlwaysOption,
    AtOption,
    Format,
    FormatOption,
    RadiusOption,
    Scene,
    UnknownOption,
    _instant,
    _one_moment,
    _print_warnings,
    with_scene,
)
from geo.core import outputs
from geo.core.availability import WEEKDAY_NAMES
from geo.core.coverage import DEFAULT_RADIUS_M, CoverageResult, WeeklyCoverage
from geo.core.results import AnalysisInputs, CoverageAnalysis, WeeklyAnalysis
from geo.services.analysis import coverage_analysis, gaps_analysis, weekly_analysis
from geo.services.inputs import section_incomes


class Grouping(StrEnum):
    CEAS = "ceas"
    INCOME = "income"


def _describe_when(result: CoverageResult) -> str:
    if result.at is None:
        return "solo desfibriladores disponibles 24/7"
    return f"en el instante {result.at:%Y-%m-%d %H:%M} (hora local)"


@with_scene
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
    scene: Scene = DEFAULT_SCENE,
    assume_unknown_open: UnknownOption = False,
) -> None:
    """Población a menos de RADIO metros a pie de un desfibrilador disponible."""
    _one_moment(at, always, weekly)
    instant = _instant(at)
    settings, inputs = scene.load()
    reference = _day(week_of, settings, option="--week-of")
    if weekly:
        with working("Calculando la cobertura hora a hora de la semana…"):
            week = weekly_analysis(
                inputs,
                radius_m=radius_m,
                week_of=reference,
                detour_factor=scene.detour_factor,
                assume_unknown_open=assume_unknown_open,
            )
        _emit_week(week, output)
        return
    with working("Calculando la cobertura…"):
        analysis = coverage_analysis(
            inputs,
            radius_m=radius_m,
            at=instant,
            reference_date=reference,
            detour_factor=scene.detour_factor,
            assume_unknown_open=assume_unknown_open,
            incomes=section_incomes(settings) if by is Grouping.INCOME else None,
        )
    _emit_coverage(analysis, output, inputs)


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
        f"[bold]Cobertura de desfibriladores en {escape(inputs.city.name)}[/] — "
        f"{_describe_when(result)}\n"
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


@with_scene
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
    scene: Scene = DEFAULT_SCENE,
) -> None:
    """Huecos de cobertura: dónde vive la gente sin desfibrilador cerca, y entidades sin él."""
    if at is not None and always:
        errors.print("[bold red]Error[/]: use solo una de --at y --always.")
        raise typer.Exit(code=2)
    instant = _instant(at)
    settings, inputs = scene.load()
    with working("Buscando los huecos de cobertura…"):
        analysis = gaps_analysis(
            inputs, radius_m=radius_m, at=instant, cell_m=cell_m,
            detour_factor=scene.detour_factor, reference_date=_city_today(settings),
        )  # fmt: skip
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
        f"[bold]Huecos de cobertura en {escape(inputs.city.name)}[/] — {_describe_when(result)}\n"
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
            escape(str(zone_names.get(row.zone_id, "—"))),
            distance,
            f"{centre.x:.5f}",
            f"{centre.y:.5f}",
        )
    console.print(table)
    for name, title in (
        ("entities", "Entidades del clúster"),
        ("cohousing", "Viviendas colaborativas (cohousing)"),
    ):
        frame = uncovered[name]
        console.print(f"{title} sin desfibrilador disponible a {result.radius_m:g} m: {len(frame)}")
        for row in frame.itertuples():
            own = " (tiene uno propio, no disponible)" if row.holds_device else ""
            distance = "—" if not np.isfinite(row.distance_m) else f"{_int(row.distance_m)} m"
            console.print(
                f"  - {row.id} {row.name}: más cercano {distance}{own}",
                highlight=False,
                markup=False,
            )
    _print_warnings(result)
