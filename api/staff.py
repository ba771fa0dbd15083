"""Planners and administrators: moderation queues, audit log, maintenance, and the analysis."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from api.deps import PrincipalDep, SettingsDep, StoreDep
from api.devices import ERRORS, LimitQuery, OffsetQuery
from api.schemas import (
    AuditEntry,
    AuditPage,
    Day,
    Instant,
    MaintenanceItem,
    MaintenancePublic,
    ReportPage,
    ReportPublic,
    ReportReview,
    UsePage,
    UsePublic,
)
from geo import outputs, registry
from geo.analysis import (
    coverage_analysis,
    gaps_analysis,
    indicators_analysis,
    siting_analysis,
    weekly_analysis,
)
from geo.coverage import DEFAULT_DETOUR_FACTOR, DEFAULT_RADIUS_M
from geo.inputs import density_references, load_inputs, plan_registers, section_incomes
from geo.settings import Settings
from geo.tokens import require_role

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


@router.get("/reports", response_model=ReportPage, summary="Avisos ciudadanos", responses=ERRORS)
def list_reports(
    store: StoreDep,
    principal: PrincipalDep,
    status: Annotated[
        Literal["pending", "accepted", "rejected"] | None, Query(description="Filtro.")
    ] = None,
    device_id: Annotated[str | None, Query(max_length=200)] = None,
    limit: LimitQuery = 100,
    offset: OffsetQuery = 0,
) -> ReportPage:
    require_role(principal, "planner", "admin")
    items, matched = store.reports(
        status=[status] if status else None, device_id=device_id, limit=limit, offset=offset
    )
    return ReportPage(items=[ReportPublic(**item) for item in items], numberMatched=matched)


@router.post(
    "/reports/{report_id}/review",
    response_model=ReportPublic,
    summary="Aceptar o rechazar un aviso pendiente",
    responses=ERRORS,
)
def review_report(
    report_id: Annotated[int, Path(ge=1, le=2_147_483_647)],
    body: ReportReview,
    store: StoreDep,
    principal: PrincipalDep,
) -> ReportPublic:
    return ReportPublic(
        **registry.review_report(
            store, principal, report_id, decision=body.decision, note=body.note
        )
    )


@router.get("/uses", response_model=UsePage, summary="Usos comunicados", responses=ERRORS)
def list_uses(
    store: StoreDep,
    principal: PrincipalDep,
    device_id: Annotated[str | None, Query(max_length=200)] = None,
    limit: LimitQuery = 100,
    offset: OffsetQuery = 0,
) -> UsePage:
    require_role(principal, "planner", "admin")
    items, matched = store.uses(device_id=device_id, limit=limit, offset=offset)
    return UsePage(items=[UsePublic(**item) for item in items], numberMatched=matched)


@router.get(
    "/audit",
    response_model=AuditPage,
    summary="Registro de cambios (quién, cuándo, antes, después)",
    responses=ERRORS,
)
def audit(
    store: StoreDep,
    principal: PrincipalDep,
    record_type: Annotated[
        Literal[
            "device",
            "report",
            "use",
            "token",
            "training",
            "contact",
            "invitation",
            "entity",
            "reminder",
        ]
        | None,
        Query(description="Tipo de registro."),
    ] = None,
    record_id: Annotated[str | None, Query(max_length=200)] = None,
    limit: LimitQuery = 100,
    offset: OffsetQuery = 0,
) -> AuditPage:
    require_role(principal, "planner", "admin")
    items, matched = store.audit_entries(
        record_type=record_type, record_id=record_id, limit=limit, offset=offset
    )
    return AuditPage(items=[AuditEntry(**item) for item in items], numberMatched=matched)


@router.get(
    "/maintenance",
    response_model=MaintenancePublic,
    summary="Baterías o parches que caducan pronto, y equipos sin revisar en 6 meses",
    responses=ERRORS,
)
def maintenance(
    store: StoreDep,
    principal: PrincipalDep,
    within_days: Annotated[int, Query(ge=0, le=3650, description="Caducan en estos días.")] = 30,
    unchecked_days: Annotated[
        int, Query(ge=1, le=3650, description="Sin revisar en más de estos días.")
    ] = registry.UNCHECKED_DAYS,
    today: Annotated[Day | None, Query(description="Fecha de referencia (hoy).")] = None,
) -> MaintenancePublic:
    """El personal municipal ve todos; una entidad, los suyos."""
    where = {} if principal.is_staff else {"operator_entity_id": [principal.entity_id]}
    devices = store.query_layer("defibrillators", where=where)
    day = today or dt.datetime.now(tz=dt.UTC).date()
    due = registry.maintenance_due(
        devices, today=day, within_days=within_days, unchecked_days=unchecked_days
    )
    items = [MaintenanceItem(**row) for row in outputs.records(due)]
    return MaintenancePublic(
        today=day, within_days=within_days, unchecked_days=unchecked_days, items=items
    )


# --- analysis (same parameters and answers as the CLI's --format json) -------------------------


def _inputs(settings: Settings) -> Any:
    return load_inputs(settings, from_files=False)


@router.get("/coverage", summary="Cobertura por zona CEAS (como `cardiomapa coverage`)",
            responses=ERRORS)  # fmt: skip
def coverage(
    settings: SettingsDep,
    principal: PrincipalDep,
    radius_m: RadiusQuery = DEFAULT_RADIUS_M,
    at: AtQuery = None,
    weekly: Annotated[bool, Query(description="Perfil de las 168 horas de la semana.")] = False,
    week_of: Annotated[Day | None, Query(description="Semana de referencia.")] = None,
    by: Annotated[Literal["ceas", "income"], Query(description="Desglose.")] = "ceas",
    detour_factor: DetourQuery = DEFAULT_DETOUR_FACTOR,
    assume_unknown_open: bool = False,
) -> dict[str, Any]:
    require_role(principal, "planner", "admin")
    inputs = _inputs(settings)
    reference = week_of or dt.datetime.now(tz=dt.UTC).date()
    if weekly:
        week = weekly_analysis(
            inputs, radius_m=radius_m, week_of=reference, detour_factor=detour_factor,
            assume_unknown_open=assume_unknown_open,
        )  # fmt: skip
        return outputs.plain(week.document)
    analysis = coverage_analysis(
        inputs,
        radius_m=radius_m,
        at=at,
        reference_date=reference,
        detour_factor=detour_factor,
        assume_unknown_open=assume_unknown_open,
        incomes=section_incomes(settings) if by == "income" else None,
    )
    return outputs.plain(analysis.document)


@router.get("/gaps", summary="Huecos de cobertura (como `cardiomapa gaps`)", responses=ERRORS)
def gaps(
    settings: SettingsDep,
    principal: PrincipalDep,
    radius_m: RadiusQuery = DEFAULT_RADIUS_M,
    at: AtQuery = None,
    cell_m: Annotated[float | None, Query(ge=10, le=5000, description="Lado de celda (m).")] = None,
    detour_factor: DetourQuery = DEFAULT_DETOUR_FACTOR,
) -> dict[str, Any]:
    require_role(principal, "planner", "admin")
    analysis = gaps_analysis(
        _inputs(settings), radius_m=radius_m, at=at, cell_m=cell_m, detour_factor=detour_factor
    )
    return outputs.plain(analysis.document)


@router.get("/siting", summary="Propuesta de nuevos emplazamientos (como `cardiomapa site`)",
            responses=ERRORS)  # fmt: skip
def siting(
    settings: SettingsDep,
    principal: PrincipalDep,
    new: Annotated[int, Query(ge=1, le=200, description="Nuevos desfibriladores.")] = 10,
    radius_m: RadiusQuery = DEFAULT_RADIUS_M,
    method: Annotated[Literal["exact", "greedy"], Query()] = "exact",
    candidates: Annotated[
        Literal["entities", "all"],
        Query(description="entities (entidades sin desfibrilador) o all (+ cohousing y rejilla)."),
    ] = "entities",
    target_share: Annotated[float | None, Query(ge=0, le=1)] = None,
    senior_weight: Annotated[float, Query(ge=0, le=100)] = 1.0,
    at: AtQuery = None,
    time_limit_s: Annotated[float, Query(gt=0, le=60)] = 20.0,
    detour_factor: DetourQuery = DEFAULT_DETOUR_FACTOR,
) -> dict[str, Any]:
    require_role(principal, "planner", "admin")
    analysis = siting_analysis(
        _inputs(settings),
        new=new,
        radius_m=radius_m,
        method=method,
        candidates=candidates,
        target_share=target_share,
        senior_weight=senior_weight,
        at=at,
        time_limit_s=time_limit_s,
        detour_factor=detour_factor,
    )
    return outputs.plain(analysis.document)


@router.get(
    "/indicators",
    summary="Indicadores del plan por año (como `cardiomapa indicators`)",
    responses=ERRORS,
)
def indicators(
    settings: SettingsDep,
    principal: PrincipalDep,
    year: Annotated[
        int | None, Query(ge=1900, le=2200, description="Solo este año del plan.")
    ] = None,
    as_of: Annotated[
        Day | None, Query(description="Fecha de los datos (por defecto, hoy).")
    ] = None,
    radius_m: RadiusQuery = DEFAULT_RADIUS_M,
    detour_factor: DetourQuery = DEFAULT_DETOUR_FACTOR,
) -> dict[str, Any]:
    """Desfibriladores iniciales, nuevos y totales; entidades cardioprotegidas; formación; usos;
    cobertura al cierre de cada año; densidad frente a las referencias."""
    require_role(principal, "planner", "admin")
    inputs = _inputs(settings)
    training, uses = plan_registers(settings, inputs, from_files=False)
    day = as_of or inputs.city.today()
    analysis = indicators_analysis(
        inputs,
        training=training,
        uses=uses,
        references=density_references(settings),
        as_of=day,
        radius_m=radius_m,
        detour_factor=detour_factor,
        year=year,
    )
    return outputs.plain(analysis.document)
