"""The plan's evaluation: its ``indicators`` year by year and the annual ``report``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from geo.cli.common import (
    _city_today,
    _clock,
    _date,
    _emit,
    _fail,
    _int,
    _store_unless_files,
    console,
    errors,
)
from geo.cli.options import (
    DEFAULT_SCENE,
    Format,
    FormatOption,
    RadiusOption,
    Scene,
    with_scene,
)
from geo.clock import local_now
from geo.core import outputs
from geo.core.coverage import DEFAULT_RADIUS_M
from geo.core.indicators import (
    INDICATOR_LABELS,
    OUTCOME_INDICATORS,
    Indicators,
    format_band,
    format_value,
    indicator_rows,
)
from geo.core.outcome_model import BAND_PERCENTILES
from geo.core.outputs import data_notice
from geo.core.plan_lives import BANDS
from geo.core.results import AnalysisInputs, IndicatorsAnalysis
from geo.core.text import in_words
from geo.errors import CardiomapaError
from geo.services.analysis import indicators_analysis
from geo.services.inputs import density_references, outcome_parameters, plan_registers
from geo.settings import Settings


@with_scene
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
    scene: Scene = DEFAULT_SCENE,
) -> None:
    """Indicadores del plan por año: desfibriladores, entidades, formación, usos, cobertura."""
    if output is Format.GEOJSON:
        errors.print("[bold red]Error[/]: --format admite table, json o csv para los indicadores.")
        raise typer.Exit(code=2)
    day = _date(as_of, option="--as-of") if as_of else None
    settings, inputs = scene.load()
    try:
        with errors.status("Calculando los indicadores…"):
            analysis, _ = _plan_indicators(
                settings, inputs, scene, as_of=day, radius_m=radius_m, year=year
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
        f"[bold]{escape(plan.name)}[/] — {escape(plan.action)}\n{escape(plan.goal)}. "
        f"Datos a {result.as_of:%d/%m/%Y}; "
        f"radio {result.radius_m:g} m ({in_words('distance_model', result.distance_model)}).",
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
        name = f"[bold]{escape(ref['name'])}[/]" if ref["is_city"] else escape(ref["name"])
        density.add_row(
            name,
            format_value("devices_per_100k", ref["devices_per_100k"]),
            "—" if ref["year"] is None or pd.isna(ref["year"]) else str(int(ref["year"])),
            "—" if ref["is_city"] else _int(ref["devices_needed"]),
        )
    console.print(density)
    for note in result.notes:
        errors.print(f"[yellow]Nota[/]: {escape(str(note))}", highlight=False)


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


@with_scene
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
    scene: Scene = DEFAULT_SCENE,
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
    settings, inputs = scene.load()
    try:
        with errors.status("Calculando los indicadores…") as status:
            analysis, training = _plan_indicators(
                settings, inputs, scene, as_of=day, radius_m=radius_m, year=year
            )
            status.update("Redactando el informe: huecos, propuesta, gráficos y mapas…")
            html = build_report(
                inputs,
                analysis,
                year=year,
                radius_m=radius_m,
                detour_factor=scene.detour_factor,
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


def _plan_indicators(
    settings: Settings,
    inputs: AnalysisInputs,
    scene: Scene,
    *,
    as_of: dt.date | None,
    radius_m: float,
    year: int | None,
) -> tuple[IndicatorsAnalysis, pd.DataFrame]:
    """The plan's indicators on ``as_of`` (today by default), and the training register read."""
    with _store_unless_files(settings, from_files=scene.data_dir is not None) as store:
        training, uses = plan_registers(settings, inputs, store=store, today=_city_today(settings))
    analysis = indicators_analysis(
        inputs,
        training=training,
        uses=uses,
        references=density_references(settings),
        as_of=as_of or _city_today(settings),
        radius_m=radius_m,
        detour_factor=scene.detour_factor,
        outcome_parameters=outcome_parameters(settings),
        year=year,
    )
    return analysis, training
