"""The planners' analyses: coverage, gaps, siting, lives saved and the plan's indicators, with
the same parameters and answers as the CLI's ``--format json``, typed by the response models of
:mod:`api.planning_schemas`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response

from api.deps import ClockDep, PrincipalDep, SettingsDep, StoreDep
from api.http import ERRORS, GEOJSON, GEOJSON_ERRORS, GeoJSONResponse
from api.planning_schemas import (
    CoverageAnswer,
    CoveragePublic,
    GapsPublic,
    IndicatorsPublic,
    LivesSitingPublic,
    OutcomesPublic,
    SitingAnswer,
    SitingPublic,
    WeeklyCoveragePublic,
)
from api.schemas import Day, Instant
from geo.clock import Clock, local_today
from geo.core import outputs
from geo.core.coverage import DEFAULT_RADIUS_M
from geo.core.distance import DEFAULT_DETOUR_FACTOR
from geo.core.results import AnalysisInputs
from geo.core.siting import objective_conflicts, parse_actions
from geo.errors import InputError
from geo.io.store import Store
from geo.services.analysis import (
    coverage_analysis,
    gaps_analysis,
    indicators_analysis,
    outcomes_analysis,
    siting_analysis,
    weekly_analysis,
)
from geo.services.inputs import (
    density_references,
    load_inputs,
    outcome_parameters,
    plan_registers,
    section_incomes,
)
from geo.services.tokens import require_role
from geo.settings import Settings

router = APIRouter(prefix="/api", tags=["planificación"])

#: Radii and cells under 10 m mean nothing on foot, and would ask the siting for a candidate grid
#: every few millimetres (memory without bound) or put every resident in one cell.
RadiusQuery = Annotated[
    float, Query(ge=10, le=5000, description="Distancia a pie que cuenta como cubierta (m).")
]
AtQuery = Annotated[
    Instant | None,
    Query(description="Instante ISO 8601 (sin zona = hora local); sin él, 24/7."),
]
DetourQuery = Annotated[float, Query(ge=1, le=3, description="Factor de rodeo (línea recta).")]
#: How an analysis answers: its document, validated by the route's response model and written by
#: ``json.dumps`` as it always was (pydantic's own JSON writer spells some floats otherwise:
#: ``1e-06`` as ``1e-6``); members that only some requests produce are left out when absent.
DOCUMENT: dict[str, Any] = {
    "response_class": JSONResponse,
    "response_model_exclude_unset": True,
    "responses": ERRORS,
}


@dataclass(frozen=True)
class Planning:
    """A planner's or an admin's request: the app's settings, its one Store and its clock."""

    settings: Settings
    store: Store
    clock: Clock

    def inputs(self) -> AnalysisInputs:
        """The analysis inputs, read through the app's one Store (a request never opens another)."""
        return load_inputs(self.settings, store=self.store)

    def today(self, inputs: AnalysisInputs) -> dt.date:
        """The city's today by the app's clock."""
        return local_today(self.clock, inputs.city.timezone)


def _planning(
    settings: SettingsDep, store: StoreDep, principal: PrincipalDep, clock: ClockDep
) -> Planning:
    """Only planners and admins run the analyses (any other role: 403)."""
    require_role(principal, "planner", "admin")
    return Planning(settings, store, clock)


PlanningDep = Annotated[Planning, Depends(_planning)]


@router.get(
    "/coverage",
    response_model=CoverageAnswer,
    summary="Cobertura por zona CEAS (como `cardiomapa coverage`)",
    **DOCUMENT,
)
def coverage(
    planning: PlanningDep,
    radius_m: RadiusQuery = DEFAULT_RADIUS_M,
    at: AtQuery = None,
    weekly: Annotated[bool, Query(description="Perfil de las 168 horas de la semana.")] = False,
    week_of: Annotated[Day | None, Query(description="Semana de referencia.")] = None,
    by: Annotated[Literal["ceas", "income"], Query(description="Desglose.")] = "ceas",
    detour_factor: DetourQuery = DEFAULT_DETOUR_FACTOR,
    assume_unknown_open: bool = False,
) -> CoveragePublic | WeeklyCoveragePublic:
    inputs = planning.inputs()
    reference = week_of or planning.today(inputs)
    if weekly:
        week = weekly_analysis(
            inputs, radius_m=radius_m, week_of=reference, detour_factor=detour_factor,
            assume_unknown_open=assume_unknown_open,
        )  # fmt: skip
        return WeeklyCoveragePublic.model_validate(outputs.plain(week.document))
    analysis = coverage_analysis(
        inputs,
        radius_m=radius_m,
        at=at,
        reference_date=reference,
        detour_factor=detour_factor,
        assume_unknown_open=assume_unknown_open,
        incomes=section_incomes(planning.settings) if by == "income" else None,
    )
    return CoveragePublic.model_validate(outputs.plain(analysis.document))


@router.get(
    "/gaps",
    response_model=GapsPublic,
    summary="Huecos de cobertura (como `cardiomapa gaps`)",
    **DOCUMENT,
)
def gaps(
    planning: PlanningDep,
    radius_m: RadiusQuery = DEFAULT_RADIUS_M,
    at: AtQuery = None,
    cell_m: Annotated[float | None, Query(ge=10, le=5000, description="Lado de celda (m).")] = None,
    detour_factor: DetourQuery = DEFAULT_DETOUR_FACTOR,
) -> GapsPublic:
    inputs = planning.inputs()
    analysis = gaps_analysis(
        inputs, radius_m=radius_m, at=at, cell_m=cell_m, detour_factor=detour_factor,
        reference_date=planning.today(inputs),
    )  # fmt: skip
    return GapsPublic.model_validate(outputs.plain(analysis.document))


@router.get(
    "/siting",
    response_model=SitingAnswer,
    summary="Propuesta de nuevos emplazamientos (como `cardiomapa site`)",
    **DOCUMENT,
)
def siting(
    planning: PlanningDep,
    new: Annotated[
        int,
        Query(ge=1, le=200, description="Acciones a proponer (nuevos o ampliaciones a 24 h)."),
    ] = 10,
    actions: Annotated[
        str,
        Query(
            max_length=100,
            description="Qué puede proponer cada paso, separado por comas: new (desfibrilador "
            "nuevo) y extend-hours (abrir 24 h uno existente). Otro valor: 422 "
            "invalid_actions.",
        ),
    ] = "new",
    radius_m: Annotated[
        float | None,
        Query(
            ge=10,
            le=5000,
            description="Distancia a pie que cuenta como cubierta (residents: 100 m por "
            "defecto) o alcance del modelo de vidas (lives: el parámetro reach_m).",
        ),
    ] = None,
    objective: Annotated[
        Literal["residents", "lives"],
        Query(
            description="residents (residentes nuevos cubiertos) o lives (vidas salvadas al año "
            "que estima el modelo)."
        ),
    ] = "residents",
    method: Annotated[Literal["exact", "greedy"], Query()] = "exact",
    candidates: Annotated[
        Literal["entities", "all"],
        Query(description="entities (entidades sin desfibrilador) o all (+ cohousing y rejilla)."),
    ] = "entities",
    target_share: Annotated[float | None, Query(ge=0, le=1)] = None,
    target_lives: Annotated[
        float | None,
        Query(
            ge=0,
            le=1000,
            description="Con objective=lives: el mínimo de nuevos equipos para salvar estas "
            "vidas al año en total (con los actuales).",
        ),
    ] = None,
    senior_weight: Annotated[float, Query(ge=0, le=100)] = 1.0,
    at: AtQuery = None,
    week_of: Annotated[
        Day | None,
        Query(
            description="Semana de referencia de los horarios (lives) o inicio del año en que "
            "se comprueba el 24/7 (por defecto, hoy)."
        ),
    ] = None,
    time_limit_s: Annotated[float, Query(gt=0, le=60)] = 20.0,
    detour_factor: DetourQuery = DEFAULT_DETOUR_FACTOR,
) -> SitingPublic | LivesSitingPublic:
    lives = objective == "lives"
    chosen_actions = parse_actions(actions)
    conflicts = objective_conflicts(
        objective, target_share=target_share, target_lives=target_lives,
        senior_weight=senior_weight,
    )  # fmt: skip
    if conflicts:
        first = conflicts[0]
        raise InputError(first.message, code="conflicting_parameters", field=first.field)
    inputs = planning.inputs()
    analysis = siting_analysis(
        inputs,
        new=new,
        radius_m=radius_m if (radius_m is not None or lives) else DEFAULT_RADIUS_M,
        method=method,
        candidates=candidates,
        target_share=target_share,
        senior_weight=senior_weight,
        at=at,
        time_limit_s=time_limit_s,
        detour_factor=detour_factor,
        reference_date=week_of or planning.today(inputs),
        objective=objective,
        parameters=outcome_parameters(planning.settings) if lives else None,
        target_lives=target_lives,
        actions=chosen_actions,
    )
    answer = LivesSitingPublic if lives else SitingPublic
    return answer.model_validate(outputs.plain(analysis.document))


@router.get(
    "/outcomes",
    summary="Vidas salvadas al año que estima el modelo: ciudad, zonas CEAS y desfibriladores",
    response_class=Response,
    responses={
        200: {
            "model": OutcomesPublic,
            "description": "El documento (JSON) o una capa GeoJSON (EPSG:4326).",
            "content": {"application/json": {}, GEOJSON: {}},
        },
        **GEOJSON_ERRORS,
    },
)
def outcomes(
    planning: PlanningDep,
    at: Annotated[
        Instant | None,
        Query(
            description="Instante ISO 8601 (sin zona = hora local): como si toda hora fuera esa."
        ),
    ] = None,
    always: Annotated[
        bool, Query(description="Solo los desfibriladores disponibles 24/7 todo el año.")
    ] = False,
    week_of: Annotated[
        Day | None, Query(description="Semana de referencia (por defecto, la actual).")
    ] = None,
    radius_m: Annotated[
        float | None,
        Query(
            ge=10,
            le=5000,
            description="Distancia a pie a la que la probabilidad de uso llega a 0 (m); por "
            "defecto, el alcance del modelo (reach_m).",
        ),
    ] = None,
    detour_factor: DetourQuery = DEFAULT_DETOUR_FACTOR,
    assume_unknown_open: bool = False,
    fmt: Annotated[
        Literal["json", "geojson"], Query(alias="format", description="json o geojson.")
    ] = "json",
    layer: Annotated[
        Literal["zones", "devices"] | None,
        Query(description="Con format=geojson: zones (por defecto) o devices."),
    ] = None,
) -> Response:
    """Sin ``at`` ni ``always``, la semana tipo: cada hora pesa según cuándo ocurren las paradas.
    Son estimaciones de un modelo con banda del 5 al 95 %, no un recuento de casos; las paradas
    en domicilio no se cuentan."""
    _check_outcome_query(at=at, always=always, week_of=week_of, fmt=fmt, layer=layer)
    inputs = planning.inputs()
    mode = "instant" if at is not None else "always" if always else "weekly"
    analysis = outcomes_analysis(
        inputs,
        outcome_parameters(planning.settings),
        mode=mode,
        at=at,
        week_of=week_of or planning.today(inputs),
        radius_m=radius_m,
        detour_factor=detour_factor,
        assume_unknown_open=assume_unknown_open,
    )
    document = analysis.document
    if fmt == "json":
        answer = OutcomesPublic.model_validate(outputs.plain(document))
        return JSONResponse(answer.model_dump(mode="json"))
    chosen = layer or "zones"
    frame = analysis.zones if chosen == "zones" else analysis.devices
    header = {k: v for k, v in document.items() if k not in ("zones", "devices")}
    return GeoJSONResponse(outputs.feature_collection(frame, layer=chosen, **header))


def _check_outcome_query(
    *, at: dt.datetime | None, always: bool, week_of: dt.date | None, fmt: str, layer: str | None
) -> None:
    """Parameters of /api/outcomes that do not go together: a 422 naming the one at fault."""
    if at is not None and always:
        msg = (
            "at y always=true no van juntos: use at para un instante, always=true para solo los "
            "disponibles 24/7, o ninguno para la semana tipo."
        )
        raise InputError(msg, code="conflicting_parameters", field="always")
    if at is not None and week_of is not None:
        msg = "week_of no se aplica con at (un instante ya fija su semana): quite uno de los dos."
        raise InputError(msg, code="conflicting_parameters", field="week_of")
    if layer is not None and fmt != "geojson":
        msg = "layer solo se aplica con format=geojson (el JSON lleva zonas y desfibriladores)."
        raise InputError(msg, code="conflicting_parameters", field="layer")


@router.get(
    "/indicators",
    response_model=IndicatorsPublic,
    summary="Indicadores del plan por año (como `cardiomapa indicators`)",
    **DOCUMENT,
)
def indicators(
    planning: PlanningDep,
    year: Annotated[
        int | None, Query(ge=1900, le=2200, description="Solo este año del plan.")
    ] = None,
    as_of: Annotated[
        Day | None, Query(description="Fecha de los datos (por defecto, hoy).")
    ] = None,
    radius_m: RadiusQuery = DEFAULT_RADIUS_M,
    detour_factor: DetourQuery = DEFAULT_DETOUR_FACTOR,
) -> IndicatorsPublic:
    """Desfibriladores iniciales, nuevos y totales; entidades cardioprotegidas; formación; usos;
    cobertura al cierre de cada año; vidas salvadas al año estimadas, las que añaden los DEA del
    plan y el coste por año de vida ganado; densidad frente a las referencias."""
    inputs = planning.inputs()
    today = planning.today(inputs)
    training, uses = plan_registers(planning.settings, inputs, store=planning.store, today=today)
    day = as_of or today
    analysis = indicators_analysis(
        inputs,
        training=training,
        uses=uses,
        references=density_references(planning.settings),
        as_of=day,
        radius_m=radius_m,
        detour_factor=detour_factor,
        outcome_parameters=outcome_parameters(planning.settings),
        year=year,
    )
    return IndicatorsPublic.model_validate(outputs.plain(analysis.document))
