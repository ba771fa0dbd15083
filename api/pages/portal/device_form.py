"""Registering and editing a device from the portal: the form (map, weekly hours editor,
emergency-only notes), and the one-tap changes: checked today, out of service, removed, back."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from api import web
from api.deps import CityDep, ClockDep, FindersDep, SettingsDep, StoreDep, city_today
from api.pages.portal.common import (
    checked_form,
    done,
    entity_and_device,
    entity_session,
    forbidden_page,
    own_device,
    page,
    posted_about_device,
    warn_about,
)
from api.pages.portal.devices import device_view
from geo.city import CityProfile
from geo.core.layers import ACCESS_VALUES
from geo.errors import (
    CardiomapaError,
    ForbiddenError,
    LayerValidationError,
    NotFoundError,
    VersionMismatchError,
)
from geo.io.store import Store
from geo.render.maps import ACCESS_TEXT
from geo.services import registry
from geo.services.placement import map_context
from geo.services.tokens import Principal
from geo.settings import Settings

router = APIRouter(prefix="/entidades", include_in_schema=False)
#: Text fields of the device form, in the order they appear; all but ``name`` optional.
TEXT_FIELDS = (
    "name", "location_text", "address", "opening_hours", "level", "phone",
    "installed_on", "check_date", "battery_expiry", "pads_expiry",
)  # fmt: skip
PRIVATE_FIELDS = ("cabinet_code", "key_holder", "notes")
FIELD_LABELS = {
    "name": "Nombre", "location_text": "Dónde está exactamente", "address": "Dirección",
    "access": "Quién puede usarlo", "opening_hours": "Horario", "indoor": "Dentro de un edificio",
    "level": "Planta", "phone": "Teléfono", "installed_on": "Fecha de instalación",
    "check_date": "Última revisión", "battery_expiry": "Caducidad de la batería",
    "pads_expiry": "Caducidad de los parches", "lon": "Posición", "status": "Estado",
    "cabinet_code": "Código del armario", "key_holder": "Quién tiene la llave",
    "notes": "Notas para emergencias", "model": "Modelo", "serial_number": "Número de serie",
}  # fmt: skip
ACCESS_OPTIONS = [(value, ACCESS_TEXT[value].capitalize()) for value in ACCESS_VALUES]


@router.get("/contexto.geojson")
async def context(store: StoreDep, city: CityDep) -> Response:
    """The municipality, its CEAS zones and the devices on the citizens' map: the bearings of
    the place picker and of the desk's moderation map when there are no tiles."""
    body = await run_in_threadpool(map_context, store, city)
    return Response(json.dumps(body), media_type="application/geo+json")


# --- the device form --------------------------------------------------------------------------


def _form_values(record: dict[str, Any] | None, private: dict[str, Any] | None) -> dict[str, str]:
    """A stored device as the strings of its form."""
    if record is None:
        return {"access": "yes", "indoor": "", "opening_hours": ""}
    values: dict[str, str] = {}
    for name in TEXT_FIELDS:
        value = record.get(name)
        values[name] = value.isoformat() if isinstance(value, dt.date) else (value or "")
    values["access"] = record.get("access") or "unknown"
    indoor = record.get("indoor")
    values["indoor"] = "" if indoor is None else ("true" if indoor else "false")
    geometry = record["geometry"]
    values["lon"], values["lat"] = f"{geometry.x:.6f}", f"{geometry.y:.6f}"
    for name in PRIVATE_FIELDS:
        values[name] = (private or {}).get(name) or ""
    tags = record.get("tags") or {}
    for name in registry.TAG_FIELDS:
        values[name] = str(tags.get(name) or "")
    values["version"] = str(record.get("version", ""))
    return values


def _parse_device_form(
    form: dict[str, str],
) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, str | None], dict[str, str]]:
    """Form strings → (properties, geometry, private notes, errors of the position)."""
    properties: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        text = form.get(name, "").strip()
        properties[name] = text or None
    for name in registry.TAG_FIELDS:
        properties[name] = form.get(name, "").strip() or None
    access = form.get("access", "")
    properties["access"] = access or None
    indoor = form.get("indoor", "")
    properties["indoor"] = {"true": True, "false": False}.get(indoor)
    errors: dict[str, str] = {}
    geometry = None
    try:
        lon = float(form.get("lon", "").replace(",", ".").strip())
        lat = float(form.get("lat", "").replace(",", ".").strip())
    except ValueError:
        errors["lon"] = (
            "Falta la posición: toque el mapa donde está el desfibrilador, use «Usar mi "
            "ubicación» o escriba la longitud y la latitud (p. ej. -4.5288 y 42.0096)."
        )
    else:
        geometry = {"type": "Point", "coordinates": [lon, lat]}
    private = {name: form.get(name, "").strip() or None for name in PRIVATE_FIELDS}
    return properties, geometry, private, errors


def _field_errors(
    city: CityProfile, properties: dict[str, Any], *, today: dt.date
) -> dict[str, str]:
    """The other fields' problems of a form sent without a position (all shown at once)."""
    problems = registry.field_problems(
        city, {name: value for name, value in properties.items() if value is not None}, today=today
    )
    return _form_errors(LayerValidationError(problems)) if problems else {}


def _form_errors(exc: CardiomapaError) -> dict[str, str]:
    """Validation problems by form field, each starting with the field's label."""
    errors = web.field_errors(exc)
    if "geometry" in errors:
        errors["lon"] = errors.pop("geometry")
    return {
        name: f"{FIELD_LABELS[name]}: {message}" if name in FIELD_LABELS else message
        for name, message in errors.items()
    }


def _unplaced(
    request: Request, store: Store, city: CityProfile, principal: Principal, *,
    settings: Settings, values: dict[str, str], properties: dict[str, Any],
    errors: dict[str, str], device: dict[str, Any] | None = None,
) -> HTMLResponse:  # fmt: skip
    """The form again (422) when it has no valid position: the position's ``errors`` and the
    other fields' problems, all shown at once."""
    errors = errors | _field_errors(city, properties, today=city_today(request))
    return _form_page(request, store, city, principal, settings=settings, values=values,
                      errors=errors, device=device, status_code=422)  # fmt: skip


def _refused(
    exc: CardiomapaError, request: Request, store: Store, city: CityProfile,
    principal: Principal, *, settings: Settings, values: dict[str, str],
    device: dict[str, Any] | None = None,
) -> HTMLResponse:  # fmt: skip
    """The registry refused the device: the forbidden page, or the form again with its problems
    (422)."""
    if isinstance(exc, ForbiddenError):
        return forbidden_page(request, store, city, principal, exc)
    return _form_page(request, store, city, principal, settings=settings, values=values,
                      errors=_form_errors(exc), device=device, status_code=422)  # fmt: skip


def _form_page(
    request: Request, store: Store, city: CityProfile, principal: Principal, *,
    settings: Settings,
    values: dict[str, str], errors: dict[str, str] | None = None,
    device: dict[str, Any] | None = None, conflict: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:  # fmt: skip
    bounds = city.boundary.bounds
    title = "Registrar un desfibrilador" if device is None else f"Editar: {device['name']}"
    return page(
        "portal/device_form.html.j2", request=request, store=store, city=city,
        principal=principal, current="/entidades/nuevo" if device is None else "",
        status_code=status_code, title=title, values=values, errors=errors or {},
        device=device, conflict=conflict or {}, access_options=ACCESS_OPTIONS,
        labels=FIELD_LABELS,
        bounds=",".join(f"{value:.6f}" for value in bounds),
        tile_url=settings.tile_url, tile_attribution=settings.tile_attribution,
        action="/entidades/nuevo" if device is None
        else f"/entidades/desfibriladores/{device['id']}",
    )  # fmt: skip


@router.get("/nuevo", response_class=HTMLResponse)
async def new_device(
    request: Request, store: StoreDep, city: CityDep, settings: SettingsDep
) -> HTMLResponse:
    principal = await entity_session(request, store, city)
    if isinstance(principal, HTMLResponse):
        return principal
    return _form_page(
        request, store, city, principal, settings=settings, values=_form_values(None, None)
    )


@router.post("/nuevo", response_class=HTMLResponse)
async def create_device(
    request: Request, store: StoreDep, city: CityDep, finders: FindersDep, settings: SettingsDep
) -> Response:
    principal = await entity_session(request, store, city)
    if isinstance(principal, HTMLResponse):
        return principal
    try:
        form = await checked_form(request)
    except ForbiddenError as exc:
        return forbidden_page(request, store, city, principal, exc)
    properties, geometry, private, errors = _parse_device_form(form)
    values = {**form}
    if geometry is None:
        return _unplaced(
            request, store, city, principal, settings=settings, values=values,
            properties=properties, errors=errors,
        )  # fmt: skip
    today = city_today(request)
    try:
        record = await run_in_threadpool(
            lambda: registry.register_device(
                store, city, principal,
                properties={k: v for k, v in properties.items() if v is not None},
                geometry=geometry, private=private, today=today,
            )
        )  # fmt: skip
    except CardiomapaError as exc:
        return _refused(exc, request, store, city, principal, settings=settings, values=values)
    finders.invalidate()
    return done("/entidades", "registrado", warn=warn_about(request, record))


@router.get("/desfibriladores/{device_id}", response_class=HTMLResponse)
async def edit_device(
    device_id: str,
    request: Request,
    store: StoreDep,
    city: CityDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> HTMLResponse:
    found = await entity_and_device(request, store, city, device_id)
    if isinstance(found, HTMLResponse):
        return found
    principal, record = found
    private = store.private_notes([device_id]).get(device_id)
    device = await run_in_threadpool(device_view, store, city, clock, record)
    values = _form_values(record, private)
    return _form_page(
        request, store, city, principal, settings=settings, values=values, device=device
    )


@router.post("/desfibriladores/{device_id}", response_class=HTMLResponse)
async def save_device(
    device_id: str,
    request: Request,
    store: StoreDep,
    city: CityDep,
    clock: ClockDep,
    finders: FindersDep,
    settings: SettingsDep,
) -> Response:
    posted = await posted_about_device(request, store, city, device_id)
    if isinstance(posted, HTMLResponse):
        return posted
    principal, form, before = posted
    properties, geometry, private, errors = _parse_device_form(form)
    device = await run_in_threadpool(device_view, store, city, clock, before)
    if geometry is None:
        return _unplaced(
            request, store, city, principal, settings=settings, values=form,
            properties=properties, errors=errors, device=device,
        )  # fmt: skip
    version = form.get("version", "")
    today = city_today(request)
    try:
        record = await run_in_threadpool(
            lambda: registry.update_device(
                store, city, principal, device_id, changes=properties, geometry=geometry,
                private=private, if_version=int(version) if version.isdigit() else None,
                today=today,
            )
        )  # fmt: skip
    except VersionMismatchError:
        current = await run_in_threadpool(own_device, store, principal, device_id)
        stored = _form_values(current, store.private_notes([device_id]).get(device_id))
        conflict = {
            name: stored.get(name, "")
            for name in (
                *TEXT_FIELDS,
                *registry.TAG_FIELDS,
                "access",
                "indoor",
                "lon",
                "lat",
                *PRIVATE_FIELDS,
            )
            if stored.get(name, "") != form.get(name, "").strip()
        }
        values = {**form, "version": stored["version"]}
        device = await run_in_threadpool(device_view, store, city, clock, current)
        return _form_page(
            request,
            store,
            city,
            principal,
            settings=settings,
            values=values,
            device=device,
            conflict=conflict,
            status_code=409,
        )
    except CardiomapaError as exc:
        return _refused(
            exc, request, store, city, principal, settings=settings, values=form, device=device
        )
    finders.invalidate()
    return done(
        f"/entidades/desfibriladores/{device_id}", "guardado", warn=warn_about(request, record)
    )


@router.post("/desfibriladores/{device_id}/revisado", response_class=HTMLResponse)
async def checked_today(
    device_id: str,
    request: Request,
    store: StoreDep,
    city: CityDep,
    clock: ClockDep,
    finders: FindersDep,
) -> Response:
    """«Revisado hoy»: records a check (and, optionally, new expiry dates) in one tap.

    The entity confirms the device: its pending "missing"/"broken" reports are resolved.
    """
    changes_of = lambda form: {  # noqa: E731
        "check_date": city.today(clock).isoformat(),
        **{name: form[name].strip() for name in ("battery_expiry", "pads_expiry")
           if form.get(name, "").strip()},
    }  # fmt: skip
    confirmed = registry.confirmation_note(ENTITY_CONFIRMS, city.today(clock))
    return await _quick_change(device_id, request, store, city, finders, changes_of, "revisado",
                               resolve=lambda form: confirmed)  # fmt: skip


@router.post("/desfibriladores/{device_id}/estado", response_class=HTMLResponse)
async def change_status(
    device_id: str,
    request: Request,
    store: StoreDep,
    city: CityDep,
    clock: ClockDep,
    finders: FindersDep,
) -> Response:
    """Out of service, removed, or back in service."""

    def changes_of(form: dict[str, str]) -> dict[str, Any]:
        status = form.get("status", "")
        changes: dict[str, Any] = {"status": status}
        if status == "removed":
            changes["removed_on"] = city.today(clock).isoformat()
        elif status == "active":
            changes["removed_on"] = None
        return changes

    def resolve(form: dict[str, str]) -> str | None:
        # Back in service: the entity says it is there and working.
        if form.get("status", "") != "active":
            return None
        return registry.confirmation_note(ENTITY_CONFIRMS, city.today(clock),
                                          what=registry.BACK_IN_SERVICE)  # fmt: skip

    return await _quick_change(device_id, request, store, city, finders, changes_of,
                               "estado", resolve=resolve)  # fmt: skip


#: Who confirms a device from the portal, in the notes it leaves on the reports it resolves.
ENTITY_CONFIRMS = "La entidad"


async def _quick_change(
    device_id: str, request: Request, store: Store, city: CityProfile, finders: Any,
    changes_of: Any, message: str, *, resolve: Any = None,
) -> Response:  # fmt: skip
    principal = await entity_session(request, store, city)
    if isinstance(principal, HTMLResponse):
        return principal
    try:
        form = await checked_form(request)
        await run_in_threadpool(own_device, store, principal, device_id)
        record = await run_in_threadpool(
            lambda: registry.update_device(
                store,
                city,
                principal,
                device_id,
                changes=changes_of(form),
                resolve_reports=resolve(form) if resolve is not None else None,
                today=city_today(request),
            )
        )  # fmt: skip
    except ForbiddenError as exc:
        return forbidden_page(request, store, city, principal, exc)
    except CardiomapaError as exc:
        status = 404 if isinstance(exc, NotFoundError) else 422
        return page(
            "portal/message.html.j2", request=request, store=store, city=city,
            principal=principal, status_code=status, title="No se pudo guardar",
            problem="; ".join(web.field_errors(exc).values()),
            back=f"/entidades/desfibriladores/{device_id}",
        )  # fmt: skip
    finders.invalidate()
    return done(
        f"/entidades/desfibriladores/{device_id}", message, warn=warn_about(request, record)
    )
