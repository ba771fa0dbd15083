"""``outcomes``: lives saved a year by the defibrillators, estimated by the outcome model."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from geo.cli.common import (
    _band,
    _day,
    _emit,
    _fail,
    _int,
    _lives,
    _open_store,
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
    ParametersOption,
    Scene,
    SetOption,
    UnknownOption,
    _instant,
    _one_moment,
    _parameters,
    _print_warnings,
    with_scene,
)
from geo.core import outputs
from geo.core.outcome_model import BAND_PERCENTILES
from geo.core.outcomes import OutcomeResult
from geo.core.results import AnalysisInputs
from geo.errors import CardiomapaError
from geo.services.analysis import outcomes_analysis
from geo.services.inputs import arrests_inputs


class OutcomesBy(StrEnum):
    ZONES = "zones"
    DEVICES = "devices"
    PARAMETERS = "parameters"


@with_scene
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
    scene: Scene = DEFAULT_SCENE,
    assume_unknown_open: UnknownOption = False,
) -> None:
    """Vidas salvadas al año estimadas: ciudad, zonas CEAS y cada desfibrilador, con banda."""
    _one_moment(at, always, weekly)
    if by is OutcomesBy.PARAMETERS and output is Format.GEOJSON:
        errors.print("[bold red]Error[/]: --by parameters solo admite --format csv o json.")
        raise typer.Exit(code=2)
    instant = _instant(at)
    settings, inputs = scene.load()
    reference = _day(week_of, settings, option="--week-of")
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
    except CardiomapaError as exc:
        raise _fail(exc) from None
    with working("Estimando las vidas salvadas…"):
        analysis = outcomes_analysis(
            inputs,
            parameters,
            mode=mode,
            at=instant,
            week_of=reference,
            radius_m=radius_m,
            detour_factor=scene.detour_factor,
            assume_unknown_open=assume_unknown_open,
            arrests=observed,
            arrests_years=arrests_years,
        )
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
        f"[bold]Vidas salvadas estimadas en {escape(inputs.city.name)}[/] — {when}\n"
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
