"""Defibrillators: nearest for citizens, listing, downloads, registration, upkeep, reports, uses."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import geopandas as gpd
from fastapi import APIRouter, BackgroundTasks, Header, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import (
    CityDep,
    ClockDep,
    FindersDep,
    MaybePrincipalDep,
    PrincipalDep,
    SettingsDep,
    StoreDep,
    TodayDep,
    current_finder,
)
from api.http import (
    ERRORS,
    GEOJSON,
    GEOJSON_ERRORS,
    OPTIONAL_TOKEN,
    BboxQuery,
    GeoJSONResponse,
    LimitQuery,
    OffsetQuery,
    page_links,
    parse_bbox,
)
from api.reports import take_report
from api.schemas import (
    DeviceCollection,
    DeviceCreate,
    DeviceFeature,
    DeviceProperties,
    DeviceSaved,
    DeviceUpdate,
    EmergencyNotes,
    Instant,
    NearbyDevicePublic,
    NearestPublic,
    PointGeometry,
    ReportCreate,
    ReportReceipt,
    ReviewDecision,
    UseCreate,
    WarningPublic,
)
from geo.clock import city_instant
from geo.core.availability import available_at, device_availability, local_instant
from geo.core.distance import NetworkDistance
from geo.core.layers import (
    DEFIBRILLATORS,
    DEVICE_STATUS_VALUES,
    VERIFICATION_VALUES,
    check_inside,
    upkeep_warnings,
)
from geo.core.nearest import NearbyDevice, walking_directions_url
from geo.errors import InputError, NotFoundError, Problem
from geo.io import export
from geo.io.export import FILE_STEMS, MEDIA_TYPES, PUBLISHED_LAYERS, ExportFormat
from geo.io.store import Store, record_from_row
from geo.services import registry
from geo.services.tokens import Principal

router = APIRouter(prefix="/api", tags=["desfibriladores"])


# --- citizens ---------------------------------------------------------------------------------


@router.get(
    "/nearest",
    response_model=NearestPublic,
    summary="Desfibriladores más cercanos disponibles ahora (o en un instante)",
    responses=ERRORS,
)
async def nearest(
    finders: FindersDep,
    city: CityDep,
    clock: ClockDep,
    lat: Annotated[float, Query(ge=-90, le=90, description="Latitud (grados).")],
    lon: Annotated[float, Query(ge=-180, le=180, description="Longitud (grados).")],
    at: Annotated[
        Instant | None, Query(description="Instante ISO 8601; sin zona = hora local.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10, description="Cuántos disponibles.")] = 3,
) -> Response:
    """Los ``limit`` desfibriladores disponibles más cercanos, y después, marcados, los que
    están más cerca pero cerrados, restringidos o sin horario conocido."""
    # The hot path of the API: async, so it never waits for the thread pool. Reading the
    # layer's revision after a commit (any process's), a rebuild, and walking-network searches
    # (Dijkstra) run in the pool; a straight-line lookup takes ~0.1 ms and runs on the loop.
    check_inside(lon, lat, city, field="lat,lon")
    instant = city_instant(at, city.timezone) if at is not None else clock.now()
    finder = await current_finder(finders)
    if isinstance(finder.model, NetworkDistance):
        found = await run_in_threadpool(finder.nearest, lon, lat, at=instant, limit=limit)
    else:
        found = finder.nearest(lon, lat, at=instant, limit=limit)
    answer = NearestPublic(
        at=local_instant(instant, city.timezone),
        lon=lon,
        lat=lat,
        distance_model=finder.model.name,
        distance_model_description=finder.model.describe(),
        results=[_nearby(device, lon, lat) for device in found],
    )
    # Serialised once here; returning the model would have FastAPI validate it again.
    return Response(answer.model_dump_json(), media_type="application/json")


def _nearby(device: NearbyDevice, lon: float, lat: float) -> NearbyDevicePublic:
    fields = device.fields
    return NearbyDevicePublic(
        id=device.device_id,
        name=fields["name"],
        state=device.state,  # type: ignore[arg-type]
        state_text=device.state_text + (" (24 h)" if device.always_open else ""),
        available=device.available,
        maintenance=device.maintenance,  # type: ignore[arg-type]
        notice=device.notice,
        pads_expiry=fields["pads_expiry"],
        battery_expiry=fields["battery_expiry"],
        always_open=device.always_open,
        opens_at=device.next_change if device.state == "closed" else None,
        closes_at=device.next_change if device.state == "open" else None,
        distance_m=round(device.distance_m, 1),
        walk_min=round(device.walk_min, 1),
        location_text=fields["location_text"],
        address=fields["address"],
        access=fields["access"],
        opening_hours=fields["opening_hours"],
        indoor=fields["indoor"],
        level=fields["level"],
        phone=fields["phone"],
        check_date=fields["check_date"],
        lon=device.lon,
        lat=device.lat,
        directions_url=walking_directions_url(device.lon, device.lat, from_lon=lon, from_lat=lat),
    )


@router.get(
    "/defibrillators",
    response_model=DeviceCollection,
    summary="Desfibriladores (GeoJSON), con filtros y paginación",
    response_class=GeoJSONResponse,
    responses=GEOJSON_ERRORS,
    openapi_extra=OPTIONAL_TOKEN,
)
def list_devices(
    request: Request,
    store: StoreDep,
    city: CityDep,
    finders: FindersDep,
    principal: MaybePrincipalDep,
    bbox: BboxQuery = None,
    status: Annotated[
        list[str] | None, Query(description="active, out_of_service, removed (repetible).")
    ] = None,
    verification: Annotated[
        list[str] | None,
        Query(description="pending, verified, rejected. Sin token solo se ven los verificados."),
    ] = None,
    open_at: Annotated[
        Instant | None, Query(description="Solo los disponibles en este instante.")
    ] = None,
    limit: LimitQuery = 100,
    offset: OffsetQuery = 0,
) -> Response:
    """Públicos: los verificados. Con token de entidad, además los propios pendientes; con token
    de planificación o administración, todos."""
    if open_at is not None:  # a local time the clocks skip is refused before any work
        open_at = city_instant(open_at, city.timezone, field="open_at")
    where: dict[str, list[str]] = {}
    filters = (
        ("status", status, DEVICE_STATUS_VALUES),
        ("verification", verification, VERIFICATION_VALUES),
    )
    for name, values, allowed in filters:
        if values:
            wrong = [v for v in values if v not in allowed]
            if wrong:
                msg = f"{name} {wrong[0]!r} no admitido; se admite: {', '.join(allowed)}."
                raise InputError(msg, code="invalid_choice", field=name)
            where[name] = values
    frame = store.query_layer(
        "defibrillators", bbox=parse_bbox(bbox), where=where, with_version=True
    )
    visible = [registry.can_see(principal, row) for row in _rows(frame)]
    frame = frame[visible]
    if open_at is not None:
        availability = device_availability(
            frame, timezone=city.timezone, calendar=city.calendar, reports=finders.get().reports
        )
        frame = frame[available_at(availability, open_at)]
    matched = len(frame)
    page = frame.iloc[offset : offset + limit]
    notes = store.private_notes(list(page["id"])) if principal is not None else {}
    collection = DeviceCollection(
        features=[_feature(record_from_row(page, i), principal, notes) for i in range(len(page))],
        numberMatched=matched,
        numberReturned=len(page),
        links=page_links(request, offset=offset, limit=limit, matched=matched),
        notice=_notice(page),
    )
    return _geojson(collection.model_dump(mode="json"))


@router.get(
    "/defibrillators/{device_id}",
    response_model=DeviceFeature,
    summary="Un desfibrilador (GeoJSON Feature); su versión va en ETag",
    response_class=GeoJSONResponse,
    responses=GEOJSON_ERRORS,
    openapi_extra=OPTIONAL_TOKEN,
)
def get_device(
    device_id: str,
    store: StoreDep,
    principal: MaybePrincipalDep,
) -> Response:
    record = registry.visible_device(store, principal, device_id)
    return _device_response(store, record, principal)


# --- entities ---------------------------------------------------------------------------------


@router.post(
    "/defibrillators",
    response_model=DeviceSaved,
    status_code=201,
    summary="Registrar un desfibrilador (entra como pendiente de verificación)",
    response_class=GeoJSONResponse,
    responses=GEOJSON_ERRORS,
)
def register_device(
    body: DeviceCreate,
    store: StoreDep,
    city: CityDep,
    finders: FindersDep,
    principal: PrincipalDep,
    today: TodayDep,
) -> Response:
    """Una última revisión (check_date) posterior a hoy o anterior a la instalación es un 422
    que nombra el campo; una caducidad ya pasada se guarda y se avisa en ``warnings``."""
    record = registry.register_device(
        store,
        city,
        principal,
        properties=_properties(body.properties.model_dump(exclude_none=True)),
        geometry=body.geometry.model_dump(),
        private=body.emergency.model_dump() if body.emergency else None,
        operator_entity_id=body.operator_entity_id,
        today=today,
    )
    finders.invalidate()
    response = _device_response(
        store, record, principal, status=201, warnings=_warnings(record, today)
    )
    response.headers["Location"] = f"/api/defibrillators/{record['id']}"
    return response


@router.patch(
    "/defibrillators/{device_id}",
    response_model=DeviceSaved,
    summary="Actualizar un desfibrilador propio (horario, ubicación, estado, mantenimiento)",
    response_class=GeoJSONResponse,
    responses=GEOJSON_ERRORS,
)
def update_device(
    device_id: str,
    body: DeviceUpdate,
    store: StoreDep,
    city: CityDep,
    finders: FindersDep,
    principal: PrincipalDep,
    today: TodayDep,
    if_match: Annotated[
        str | None, Header(description='Versión leída (ETag), p. ej. "3".', max_length=100)
    ] = None,
) -> Response:
    """Las mismas reglas de fechas que al registrar; ``warnings`` describe el desfibrilador
    guardado (toda caducidad ya pasada, la haya cambiado esta petición o no)."""
    changes = _properties(body.properties.model_dump(exclude_unset=True)) if body.properties else {}
    if "name" in changes and changes["name"] is None:
        raise InputError("El nombre no puede quedar vacío.", code="missing_field", field="name")
    record = registry.update_device(
        store,
        city,
        principal,
        device_id,
        changes=changes,
        geometry=body.geometry.model_dump() if body.geometry else None,
        private=body.emergency.model_dump() if body.emergency else None,
        if_version=_version(if_match),
        today=today,
    )
    finders.invalidate()
    return _device_response(store, record, principal, warnings=_warnings(record, today))


@router.post(
    "/defibrillators/{device_id}/uses",
    status_code=201,
    summary="Comunicar un uso del desfibrilador (entidad titular o personal municipal)",
    responses=ERRORS,
)
def record_use(
    device_id: str,
    body: UseCreate,
    store: StoreDep,
    city: CityDep,
    finders: FindersDep,
    principal: PrincipalDep,
    clock: ClockDep,
) -> dict[str, int]:
    """Con ``pads_replaced`` true, ``pads_expiry`` pasa a ser la caducidad de los parches del
    desfibrilador en la misma transacción que el uso (o no se guarda ninguno de los dos)."""
    use_id = registry.record_use(
        store, city, principal, device_id, values=body.model_dump(), now=clock.now()
    )
    if body.pads_replaced:
        finders.invalidate()
    return {"id": use_id}


# --- citizens' reports ------------------------------------------------------------------------


@router.post(
    "/defibrillators/{device_id}/reports",
    response_model=ReportReceipt,
    status_code=202,
    summary="Avisar de un problema (falta, averiado, movido, horario): va a moderación",
    responses=ERRORS,
)
def report_problem(
    device_id: str,
    body: ReportCreate,
    request: Request,
    store: StoreDep,
    city: CityDep,
    settings: SettingsDep,
    finders: FindersDep,
    background: BackgroundTasks,
) -> ReportReceipt:
    report_id = take_report(
        request, body, device_id=device_id, store=store, city=city, settings=settings,
        finders=finders, background=background,
    )  # fmt: skip
    return ReportReceipt(
        id=report_id,
        status="pending",
        message="Gracias: el aviso queda pendiente de revisión por el Ayuntamiento.",
    )


# --- moderation -------------------------------------------------------------------------------


@router.post(
    "/defibrillators/{device_id}/review",
    response_model=DeviceFeature,
    summary="Verificar o rechazar un desfibrilador pendiente (planificación, administración)",
    response_class=GeoJSONResponse,
    responses=GEOJSON_ERRORS,
)
def review_device(
    device_id: str,
    body: ReviewDecision,
    store: StoreDep,
    finders: FindersDep,
    principal: PrincipalDep,
) -> Response:
    record = registry.review_device(
        store, principal, device_id, decision=body.decision, note=body.note
    )
    finders.invalidate()
    return _device_response(store, record, principal)


# --- downloads --------------------------------------------------------------------------------


@router.get(
    "/downloads/{layer}.{fmt}",
    summary="Descarga de una capa (GeoJSON, CSV o GeoPackage), con licencia y procedencia",
    description=(
        "Capas: " + ", ".join(PUBLISHED_LAYERS) + ". Formatos: geojson (RFC 7946), csv (UTF-8 "
        "con BOM; lon/lat o geometría WKT) y gpkg (GeoPackage). Todo en EPSG:4326. De los "
        "desfibriladores, solo los verificados, sin notas privadas."
    ),
    tags=["descargas"],
    response_class=Response,
    responses={
        200: {"content": {GEOJSON: {}, "text/csv": {}, MEDIA_TYPES[ExportFormat.GPKG]: {}}},
        **GEOJSON_ERRORS,
    },
)
def download(
    layer: Annotated[str, Path(max_length=100, description="Capa, p. ej. defibrillators.")],
    fmt: Annotated[str, Path(max_length=100, description="geojson, csv o gpkg.")],
    store: StoreDep,
    settings: SettingsDep,
) -> Response:
    if layer not in PUBLISHED_LAYERS:
        msg = f"No hay descarga de la capa {layer!r}; se descargan: {', '.join(PUBLISHED_LAYERS)}."
        raise NotFoundError(msg)
    if fmt not in set(ExportFormat):
        formats = ", ".join(f.value for f in ExportFormat)
        msg = f"No hay descarga en formato {fmt!r}; los formatos son: {formats}."
        raise NotFoundError(msg)
    export_format = ExportFormat(fmt)
    content, _ = export.export_bytes(
        store, layer, export_format, public_only=True, data_licence=settings.data_licence
    )
    filename = f"{FILE_STEMS[layer]}.{export_format.value}"
    return Response(
        content,
        media_type=MEDIA_TYPES[export_format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# --- helpers ----------------------------------------------------------------------------------


def _notice(frame: gpd.GeoDataFrame) -> str:
    return export.records_notice(frame)


def _rows(frame: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    return frame[["verification", "operator_entity_id"]].to_dict("records")


def _properties(values: dict[str, Any]) -> dict[str, Any]:
    """Request values back into layer-file terms (dates as text) for the one validator."""
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in values.items()}


def _version(if_match: str | None) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or len(text) > 9:
        msg = 'If-Match debe llevar la versión recibida en ETag, p. ej. "3".'
        raise InputError(msg, code="invalid_if_match", field="If-Match")
    return int(text)


def _feature(
    record: dict[str, Any],
    principal: Principal | None,
    notes: dict[str, dict[str, str | None]],
) -> DeviceFeature:
    geometry = record["geometry"]
    emergency = None
    if registry.can_see_private(principal, record):
        emergency = EmergencyNotes(**notes.get(record["id"], {}))
    properties = {name: record[name] for name in DEFIBRILLATORS.field_names if name != "id"}
    return DeviceFeature(
        id=record["id"],
        geometry=PointGeometry(type="Point", coordinates=[geometry.x, geometry.y]),
        properties=DeviceProperties(**properties, version=record["version"], emergency=emergency),
    )


def _warnings(record: dict[str, Any], today: dt.date) -> list[Problem]:
    """What needs attention about a device just saved (expiries already past)."""
    return upkeep_warnings(record, today=today, file="petición")


def _device_response(
    store: Store,
    record: dict[str, Any],
    principal: Principal | None,
    *,
    status: int = 200,
    warnings: list[Problem] | None = None,
) -> Response:
    """The device as a Feature; with ``warnings`` (a write's answer), as a :class:`DeviceSaved`."""
    notes = store.private_notes([record["id"]]) if principal is not None else {}
    feature = _feature(record, principal, notes)
    if warnings is not None:
        feature = DeviceSaved(
            **dict(feature),
            warnings=[
                WarningPublic(field=f"properties.{w.field}", code=w.code, message=w.message)
                for w in warnings
            ],
        )
    response = _geojson(feature.model_dump(mode="json"), status=status)
    response.headers["ETag"] = f'"{record["version"]}"'
    return response


def _geojson(document: dict[str, Any], *, status: int = 200) -> Response:
    return GeoJSONResponse(document, status_code=status)
