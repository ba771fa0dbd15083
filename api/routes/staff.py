"""Planners and administrators: citizens' reports, reported uses, the audit log and upkeep."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from api.deps import CityDep, ClockDep, FindersDep, PrincipalDep, StoreDep
from api.http import ERRORS, LimitQuery, OffsetQuery
from api.schemas import (
    AuditEntry,
    AuditPage,
    Day,
    MaintenanceItem,
    MaintenancePublic,
    ReportPage,
    ReportPublic,
    ReportReview,
    UsePage,
    UsePublic,
)
from geo.clock import local_today
from geo.core import outputs
from geo.services import registry
from geo.services.tokens import require_role

router = APIRouter(prefix="/api", tags=["planificación"])


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
    finders: FindersDep,
) -> ReportPublic:
    report = registry.review_report(
        store, principal, report_id, decision=body.decision, note=body.note
    )
    finders.invalidate()  # a reviewed "missing"/"broken" report no longer marks its device
    return ReportPublic(**report)


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
    city: CityDep,
    clock: ClockDep,
    within_days: Annotated[int, Query(ge=0, le=3650, description="Caducan en estos días.")] = 30,
    unchecked_days: Annotated[
        int, Query(ge=1, le=3650, description="Sin revisar en más de estos días.")
    ] = registry.UNCHECKED_DAYS,
    today: Annotated[Day | None, Query(description="Fecha de referencia (hoy).")] = None,
) -> MaintenancePublic:
    """El personal municipal ve todos; una entidad, los suyos."""
    require_role(principal, "entity", "planner", "admin")
    where = {} if principal.is_staff else {"operator_entity_id": [principal.entity_id]}
    devices = store.query_layer("defibrillators", where=where)
    day = today or local_today(clock, city.timezone)
    due = registry.maintenance_due(
        devices, today=day, within_days=within_days, unchecked_days=unchecked_days
    )
    items = [MaintenanceItem(**row) for row in outputs.records(due)]
    return MaintenancePublic(
        today=day, within_days=within_days, unchecked_days=unchecked_days, items=items
    )
