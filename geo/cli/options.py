"""The options of the analyses (coverage, outcomes, gaps, site, map, indicators, report) and
the inputs they read: the layers, the walking network, the outcome model's parameters.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape

from geo.cli.common import (
    DataDirOption,
    _fail,
    _settings,
    _store_unless_files,
    errors,
    working,
)
from geo.core.coverage import CoverageResult, WeeklyCoverage
from geo.core.distance import DEFAULT_DETOUR_FACTOR
from geo.core.outcome_model import OutcomeParameters
from geo.core.outcomes import OutcomeResult
from geo.core.results import AnalysisInputs
from geo.errors import CardiomapaError
from geo.services.inputs import load_inputs, outcome_parameters
from geo.settings import Settings


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    GEOJSON = "geojson"
    CSV = "csv"


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


@dataclass(frozen=True)
class Scene:
    """What every analysis command reads, from the options it shares with the others:
    ``--data-dir``, ``--network``, ``--no-network``, ``--detour-factor``, ``--count-overdue``."""

    data_dir: Path | None = None
    network: Path | None = None
    no_network: bool = False
    detour_factor: float = DEFAULT_DETOUR_FACTOR
    count_overdue: bool = False

    def load(self) -> tuple[Settings, AnalysisInputs]:
        """The settings and the layers (from ``--data-dir`` or the database), exit 1 on error."""
        return _inputs(
            self.data_dir, self.network, self.no_network, count_overdue=self.count_overdue
        )


_SCENE_OPTIONS = {
    "data_dir": DataDirOption,
    "network": NetworkOption,
    "no_network": NoNetworkOption,
    "detour_factor": DetourOption,
    "count_overdue": CountOverdueOption,
}
DEFAULT_SCENE = Scene()

Command = TypeVar("Command", bound=Callable[..., None])


def with_scene(command: Command) -> Command:
    """Give ``command`` the :class:`Scene` options, declared once here.

    ``command`` takes a parameter ``scene: Scene = DEFAULT_SCENE``. Typer sees, in its place,
    the five options of the scene (so ``--help`` lists them there), and the command receives
    them as one ``Scene``.
    """
    signature = inspect.signature(command, eval_str=True)
    parameters: list[inspect.Parameter] = []
    for parameter in signature.parameters.values():
        if parameter.name != "scene":
            parameters.append(parameter)
            continue
        parameters += [
            inspect.Parameter(
                name,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                annotation=option,
                default=getattr(DEFAULT_SCENE, name),
            )
            for name, option in _SCENE_OPTIONS.items()
        ]
    if len(parameters) == len(signature.parameters):
        msg = f"{command.__name__} has no parameter 'scene' for with_scene"
        raise TypeError(msg)

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        scene = Scene(**{name: kwargs.pop(name) for name in _SCENE_OPTIONS if name in kwargs})
        command(*args, scene=scene, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": None}
    return wrapper  # type: ignore[return-value]


class Objective(StrEnum):
    RESIDENTS = "residents"
    LIVES = "lives"


def _one_moment(at: str | None, always: bool, weekly: bool) -> None:
    """Refuse (exit 2) more than one of ``--at``, ``--always`` and ``--weekly``."""
    if sum((at is not None, always, weekly)) > 1:
        errors.print("[bold red]Error[/]: use solo una de --at, --always y --weekly.")
        raise typer.Exit(code=2)


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
    with (
        working("Leyendo las capas…"),
        _store_unless_files(settings, from_files=data_dir is not None) as store,
    ):
        inputs = load_inputs(
            settings, store=store, network_file=network, use_network=not no_network
        )
    return settings, replace(inputs, count_overdue=count_overdue)


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


def _print_warnings(result: CoverageResult | WeeklyCoverage | OutcomeResult) -> None:
    for note in result.notes:
        errors.print(f"[yellow]Aviso[/]: {escape(str(note))}", highlight=False)
    issues = result.hours_issues
    if issues:
        errors.print(
            f"[yellow]Aviso[/]: {len(issues)} desfibriladores con horario desconocido "
            "no se han contado:",
            highlight=False,
        )
        for issue in issues:
            errors.print(f"  - {issue}", highlight=False)
