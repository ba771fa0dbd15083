"""The training register (plan action 1.3) for planners and administrators: record, list, delete
and import the CSV registers organisers keep. The rules live in :mod:`geo.services.training`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Response

from api.deps import CityDep, ClockDep, PrincipalDep, StoreDep
from api.http import ERRORS, LimitQuery, OffsetQuery
from api.schemas import (
    FIRST_YEAR,
    LAST_YEAR,
    TrainingCreate,
    TrainingImportPublic,
    TrainingPage,
    TrainingPublic,
)
from geo.services import training
from geo.services.tokens import require_role

router = APIRouter(prefix="/api", tags=["formación"])

#: Where rows of a CSV sent to the import come from, unless it says so in a ``source`` column.
IMPORT_SOURCE = "csv:api"
#: How the problems of a CSV sent to the import name it.
IMPORT_FILE = "CSV enviado"

TrainingId = Annotated[int, Path(ge=1, le=2_147_483_647, description="Id de la formación.")]


def _public(row: dict[str, Any]) -> TrainingPublic:
    return TrainingPublic(**row, kind_label=training.KIND_LABELS[row["kind"]])


@router.post(
    "/training",
    response_model=TrainingPublic,
    status_code=201,
    summary="Registrar una acción de formación en SVB y DEA ya impartida",
    responses=ERRORS,
)
def record_training(
    body: TrainingCreate,
    response: Response,
    store: StoreDep,
    city: CityDep,
    clock: ClockDep,
    principal: PrincipalDep,
) -> TrainingPublic:
    row = training.record_training(store, principal, body.model_dump(), today=city.today(clock))
    response.headers["Location"] = f"/api/training/{row['id']}"
    return _public(row)


@router.get(
    "/training",
    response_model=TrainingPage,
    summary="Acciones de formación, de la más reciente a la más antigua",
    responses=ERRORS,
)
def list_training(
    store: StoreDep,
    principal: PrincipalDep,
    year: Annotated[
        int | None, Query(ge=FIRST_YEAR, le=LAST_YEAR, description="Año en que se impartió.")
    ] = None,
    entity_id: Annotated[str | None, Query(max_length=200, description="Entidad.")] = None,
    limit: LimitQuery = 100,
    offset: OffsetQuery = 0,
) -> TrainingPage:
    require_role(principal, "planner", "admin")
    items, matched = store.training_actions(
        year=year, entity_id=entity_id, limit=limit, offset=offset
    )
    return TrainingPage(items=[_public(item) for item in items], numberMatched=matched)


@router.delete(
    "/training/{training_id}",
    status_code=204,
    response_class=Response,
    summary="Borrar una acción de formación (queda en el registro de cambios)",
    responses=ERRORS,
)
def delete_training(training_id: TrainingId, store: StoreDep, principal: PrincipalDep) -> Response:
    training.delete_training(store, principal, training_id)
    return Response(status_code=204)


@router.post(
    "/training/import",
    response_model=TrainingImportPublic,
    summary="Importar un registro de formación en CSV (todo o nada; reimportar no duplica)",
    description=(
        "Cuerpo: el CSV en UTF-8 (con o sin BOM), separado por comas o por punto y coma, con "
        "cabecera. Columnas obligatorias: "
        f"{', '.join(training.CSV_REQUIRED_COLUMNS)}; opcionales: "
        f"{', '.join(training.CSV_OPTIONAL_COLUMNS)}. Fechas AAAA-MM-DD o DD/MM/AAAA. Un archivo "
        "con algún problema no cambia nada y la respuesta 422 los lista todos, con su línea."
    ),
    responses=ERRORS,
)
def import_training(
    body: Annotated[bytes, Body(media_type="text/csv", description="El registro en CSV.")],
    store: StoreDep,
    city: CityDep,
    clock: ClockDep,
    principal: PrincipalDep,
    dry_run: Annotated[bool, Query(description="Solo validar y contar; no guardar.")] = False,
    source: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description=f"Procedencia de las filas sin columna source ({IMPORT_SOURCE}).",
        ),
    ] = None,
) -> TrainingImportPublic:
    require_role(principal, "planner", "admin")
    report = training.import_training(
        store,
        body,
        today=city.today(clock),
        actor=principal.actor,
        name=IMPORT_FILE,
        source=source or IMPORT_SOURCE,
        dry_run=dry_run,
    )
    return TrainingImportPublic(
        read=report.read,
        inserted=report.inserted,
        updated=report.updated,
        unchanged=report.unchanged,
        dry_run=report.dry_run,
    )
