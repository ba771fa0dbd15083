"""``site``: where the next defibrillators protect the most residents or save the most lives."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import geopandas as gpd
import typer
from rich.markup import escape
from rich.table import Table

from geo.cli.common import (
    _band,
    _day,
    _emit,
    _int,
    _lives,
    _pct,
    console,
    errors,
    usage_error,
    working,
)
from geo.cli.options import (
    DEFAULT_SCENE,
    AtOption,
    Format,
    FormatOption,
    Objective,
    ParametersOption,
    Scene,
    SetOption,
    _instant,
    _parameters,
    with_scene,
)
from geo.core import outputs
from geo.core.coverage import DEFAULT_RADIUS_M
from geo.core.results import AnalysisInputs, SitingAnalysis
from geo.core.siting import objective_conflicts, parse_actions
from geo.core.text import in_words
from geo.errors import InputError
from geo.services.analysis import siting_analysis


class Method(StrEnum):
    EXACT = "exact"
    GREEDY = "greedy"


class LivesPer(StrEnum):
    YEAR = "year"
    DECADE = "decade"


@with_scene
def site(
    new: Annotated[
        int,
        typer.Option(
            "--new",
            min=1,
            help="Cuántas acciones proponer (nuevos desfibriladores o, con --actions "
            "new,extend-hours, también ampliaciones a 24 h).",
        ),
    ] = 10,
    actions: Annotated[
        str,
        typer.Option(
            "--actions",
            help="Qué puede proponer cada paso, separado por comas: new (un desfibrilador "
            "nuevo) y extend-hours (abrir 24 h, o pasar a una vitrina exterior, un "
            "desfibrilador existente que hoy cierra).",
        ),
    ] = "new",
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
    scene: Scene = DEFAULT_SCENE,
) -> None:
    """Dónde instalar los próximos desfibriladores para proteger a más personas."""
    lives = objective is Objective.LIVES
    _check_site_options(
        output,
        lives=lives,
        target_lives=target_lives,
        parameters_file=parameters_file,
        set_values=set_values,
        target_share=target_share,
        senior_weight=senior_weight,
    )
    try:
        chosen_actions = parse_actions(actions, field="--actions")
    except InputError as exc:
        raise usage_error(escape(str(exc))) from None
    instant = _instant(at)
    settings, inputs = scene.load()
    per_year = _lives_per_year(target_lives, lives_per)
    with working("Buscando emplazamientos…"):
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
            detour_factor=scene.detour_factor,
            objective=objective.value,
            parameters=_parameters(settings, parameters_file, set_values) if lives else None,
            target_lives=per_year,
            reference_date=_day(week_of, settings, option="--week-of"),
            actions=chosen_actions,
        )
    _emit_siting(analysis, output, inputs, lives=lives, per=lives_per)


def _check_site_options(
    output: Format,
    *,
    lives: bool,
    target_lives: float | None,
    parameters_file: Path | None,
    set_values: list[str] | None,
    target_share: float | None,
    senior_weight: float,
) -> None:
    """Refuse (exit 2) a format site does not write and the options of the other objective."""
    if output is Format.CSV:
        errors.print("[bold red]Error[/]: site admite --format table, json o geojson.")
        raise typer.Exit(code=2)
    conflicts = objective_conflicts(
        "lives" if lives else "residents",
        target_share=target_share,
        target_lives=target_lives,
        senior_weight=senior_weight,
        lives_options=[
            name for name, given in (("parameters", parameters_file), ("set", set_values)) if given
        ],
        spell=_option,
    )
    for conflict in conflicts:
        errors.print(f"[bold red]Error[/]: {escape(conflict.message)}", highlight=False)
    if conflicts:
        raise typer.Exit(code=2)


def _option(name: str, value: str | None) -> str:
    """A parameter as the command line spells it: ``--objective lives``."""
    option = "--" + name.replace("_", "-")
    return option if value is None else f"{option} {value}"


def _lives_per_year(target_lives: float | None, per: LivesPer) -> float | None:
    """``--target-lives`` in lives a year (it may be given per decade)."""
    if target_lives is None:
        return None
    return target_lives / 10 if per is LivesPer.DECADE else target_lives


def _emit_siting(
    analysis: SitingAnalysis, output: Format, inputs: AnalysisInputs, *, lives: bool, per: LivesPer
) -> None:
    """The proposal as JSON, as GeoJSON of the chosen sites, or as a table for people."""
    document = analysis.document
    if output is Format.JSON:
        _emit(outputs.dumps(document))
    elif output is Format.GEOJSON:
        header = {k: v for k, v in document.items() if k not in ("sites", "zones")}
        _emit(outputs.dumps(outputs.feature_collection(analysis.chosen, **header)))
    elif lives:
        _print_lives_siting(document, analysis.chosen, inputs, per)
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
        f"[bold]Propuesta de {_plan_words(document)} en "
        f"{escape(inputs.city.name)} por vidas salvadas[/] — método "
        f"{in_words('method', document['method'])}: {status}\n"
        f"{goal}"
        f"Alcance: {float(document['radius_m']):g} m a pie · "
        f"{document['distance_model_description']}\n"
        f"Candidatos: {escape(in_words('candidates', document['candidates']))} "
        f"({document['candidates_count']}) · "
        f"Vidas salvadas al año: {_band(before)} → {_band(after)}; añaden "
        f"{_band(document, 'lives_gained')} (banda de la diferencia, simulación a simulación)",
        highlight=False,
    )
    table = Table("#", "Acción", "Dónde", "+ vidas/año (central)", "Vidas/año tras")
    for row in chosen.itertuples():
        table.add_row(
            str(row.step),
            in_words("action", row.action),
            _where(row),
            _lives(float(row.lives_gained)),
            _lives(float(row.lives_saved_after)),
        )
    console.print(table)
    console.print(
        "Cada nuevo desfibrilador se supone público y abierto 24/7 (y cada uno abierto 24 h, "
        "también: ampliar su horario o llevarlo a una vitrina exterior en el mismo sitio "
        "alcanza a las mismas personas); estimaciones de un modelo "
        "(cardiomapa outcomes --by parameters --format csv para las fuentes).",
        highlight=False,
    )
    for note in document["warnings"]:
        errors.print(f"[yellow]Aviso[/]: {escape(str(note))}", highlight=False)


def _where(row: Any) -> str:
    """Where a step is, in words: its place (``near``) and, when that is not the site itself,
    the site's name; without a known place near, its latitude and longitude."""
    near = row.near if isinstance(row.near, dict) else None
    if near is not None and (row.action == "extend_hours" or near["name"] == row.name):
        return escape(str(near["text"]))
    place = near["text"] if near is not None else f"en {row.lat:.5f}, {row.lon:.5f}"
    return escape(f"{row.name}, {place}")


def _plan_words(document: dict[str, Any]) -> str:
    """``"2 nuevos desfibriladores y 1 abierto 24 h"``: what the plan's steps do."""
    new, extended = int(document["new_devices"]), int(document.get("extended_devices", 0))
    words = f"{new} nuevos desfibriladores"
    if "extend_hours" in document.get("actions", ()):
        words += f" y {extended} {'abierto' if extended == 1 else 'abiertos'} 24 h"
    return words


def _print_siting(
    document: dict[str, Any], chosen: gpd.GeoDataFrame, inputs: AnalysisInputs
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
        f"[bold]Propuesta de {_plan_words(document)} en "
        f"{escape(inputs.city.name)}[/] — método {in_words('method', document['method'])}: "
        f"{status}\n"
        f"Radio: {float(str(document['radius_m'])):g} m a pie · "
        f"{document['distance_model_description']}\n"
        f"Candidatos: {escape(in_words('candidates', document['candidates']))} "
        f"({document['candidates_count']}) · Cobertura: "
        f"{_pct(float(str(document['share_covered_before'])))} → "
        f"{_pct(float(str(document['share_covered_after'])))}",
        highlight=False,
    )
    table = Table("#", "Acción", "Dónde", "+ residentes", "+ 65+", "Cobertura tras")
    for row in chosen.itertuples():
        table.add_row(
            str(row.step),
            in_words("action", row.action),
            _where(row),
            _int(row.residents_gained),
            _int(row.residents_65_plus_gained),
            _pct(row.share_covered_after),
        )
    console.print(table)
