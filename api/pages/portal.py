"""The entity portal, ``/entidades``: an entity registers and looks after its defibrillators.

For people who have never seen an API: sign in with an invitation link (or a pasted token), see
"Mis desfibriladores" with their moderation state, state now and upkeep, register a device
(map, weekly hours editor, emergency-only notes), edit it, record a check in one tap, mark it out
of service or removed, report a use, and keep the entity's private contact up to date.

Every write goes through :mod:`geo.services.registry` (devices, uses) or the store's audited
``set_contacts``, with the same validation as the JSON API; this module only turns form fields
into those calls and their errors back into messages next to the fields.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from shapely.geometry import mapping

from api import web
from api.deps import CityDep, ClockDep, FindersDep, SettingsDep, StoreDep, app_clock, city_today
from api.errors import translate_validation_error
from api.schemas import UseCreate
from geo.city import CityProfile
from geo.clock import Clock, city_instant, local_now
from geo.core.availability import open_state
from geo.core.layers import ACCESS_VALUES, upkeep_warnings
from geo.core.outputs import data_notice
from geo.errors import (
    AuthenticationError,
    CardiomapaError,
    ForbiddenError,
    LayerValidationError,
    LocalTimeError,
    NotFoundError,
    RateLimitedError,
    VersionMismatchError,
)
from geo.io.store import Store, record_from_row
from geo.render.maps import ACCESS_TEXT
from geo.services import registry
from geo.services.contacts import validate_contact
from geo.services.tokens import ENTITY_SESSION_DAYS, Principal, check_invitation, redeem_invitation
from geo.settings import Settings

router = APIRouter(prefix="/entidades", include_in_schema=False)
SESSION = web.Session(
    cookie="cardiomapa_entidad",
    path="/entidades",
    max_age_s=ENTITY_SESSION_DAYS * 86_400,
    roles=("entity",),
)
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
STATUS_TEXT = {
    "active": "En servicio",
    "out_of_service": "Fuera de servicio",
    "removed": "Retirado",
}
VERIFICATION_TEXT = {
    "pending": "Pendiente de verificación",
    "verified": "Verificado",
    "rejected": "Rechazado",
}
REASON_TEXT = {
    "battery_expiry": "batería",
    "pads_expiry": "parches",
    "unchecked": "revisión",
    "never_checked": "revisión",
}
SEX_OPTIONS = [
    ("", "No consta"),
    ("female", "Mujer"),
    ("male", "Hombre"),
    ("unknown", "No se sabe"),
]
YES_NO = [("", "No consta"), ("true", "Sí"), ("false", "No")]


# --- context shared by every page -------------------------------------------------------------


def _nav(current: str) -> list[dict[str, Any]]:
    items = [
        ("/entidades", "Mis desfibriladores"),
        ("/entidades/nuevo", "Registrar uno"),
        ("/entidades/contacto", "Contacto"),
    ]
    return [{"url": url, "label": label, "current": url == current} for url, label in items]


def _entity_name(store: Store, entity_id: str | None) -> str:
    if entity_id is None:
        return "—"
    frame = store.query_layer("entities", ids=[entity_id])
    return str(frame.iloc[0]["name"]) if not frame.empty else entity_id


def _page(
    template: str,
    *,
    request: Request,
    store: Store,
    city: CityProfile,
    principal: Principal | None,
    current: str = "",
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    token = SESSION.token(request)
    base: dict[str, Any] = {
        "city_name": city.name,
        "area_name": "Portal de entidades",
        "home_url": "/entidades",
        "nav": _nav(current) if principal else [],
        "signed_in": principal is not None,
        "who": _entity_name(store, principal.entity_id) if principal else "",
        "logout_url": "/entidades/salir",
        "csrf": web.csrf_token(token) if token and principal else "",
        "notice": data_notice(layer.sources for layer in store.summary()),
        "flash": DONE.get(request.query_params.get("hecho", "")),
        "warnings": _saved_warnings(request, store, principal),
        "problem": None,
    }
    return web.render(template, status_code=status_code, **(base | context))


def _signed_out(
    request: Request, store: Store, city: CityProfile, *, problem: str | None = None,
    status_code: int = 401, end: bool = True, headers: Mapping[str, str] | None = None,
) -> HTMLResponse:  # fmt: skip
    """The sign-in page; ``end``: also end the session a cookie held."""
    had_cookie = SESSION.token(request) is not None
    if had_cookie and problem is None:
        problem = "Su sesión ha terminado (caducó o se revocó el acceso). Vuelva a entrar."
    response = _page(
        "portal/login.html.j2", request=request, store=store, city=city, principal=None,
        status_code=status_code, title="Entrar", problem=problem,
    )  # fmt: skip
    if headers:
        response.headers.update(headers)
    if had_cookie and end:
        SESSION.end(response)
    return response


async def _session(request: Request, store: Store, city: CityProfile) -> Principal | HTMLResponse:
    """The entity signed in, or the page to show instead: sign-in (no session, or it ended) or
    429 (the client is over the failed-credential limit; the cookie is kept)."""
    try:
        principal = await run_in_threadpool(SESSION.principal, request, store)
    except RateLimitedError as exc:
        return _refused(request, store, city, exc)
    return principal if principal is not None else _signed_out(request, store, city)


def _refused(
    request: Request, store: Store, city: CityProfile, exc: RateLimitedError
) -> HTMLResponse:
    """The sign-in page saying why nothing is accepted now (429, ``Retry-After``)."""
    return _signed_out(
        request, store, city, problem=str(exc), status_code=429, end=False,
        headers={"Retry-After": str(exc.retry_after_s)},
    )  # fmt: skip


async def _checked_form(request: Request) -> dict[str, str]:
    """The form of a signed-in POST, after both CSRF checks."""
    form = await web.read_form(request)
    token = SESSION.token(request) or ""
    web.check_csrf(request, form, token)
    return form


#: What a page says after a change went through (``?hecho=<key>``: a key, never free text, so
#: a link cannot make the portal say something it did not).
DONE = {
    "entrada": "Ha entrado en el portal de su entidad.",
    "registrado": (
        "Desfibrilador registrado. Queda pendiente de verificación por el Ayuntamiento y "
        "aparecerá en el mapa público cuando se verifique."
    ),
    "guardado": "Cambios guardados.",
    "revisado": "Revisión anotada con fecha de hoy.",
    "estado": "Estado actualizado.",
    "uso": "Uso comunicado. Gracias: ayuda a medir cuántas personas se atienden.",
    "uso-parches": (
        "Uso comunicado y caducidad de los parches nuevos anotada. Gracias: ayuda a medir "
        "cuántas personas se atienden."
    ),
    "contacto": "Datos de contacto guardados.",
}


def _done(url: str, key: str, *, warn: str | None = None) -> RedirectResponse:
    """See ``url`` with the message of ``key``; with ``warn`` (a device id), also what needs
    attention about that device now (:func:`_saved_warnings`)."""
    assert key in DONE
    more = f"&aviso={warn}" if warn else ""
    return RedirectResponse(f"{url}?hecho={key}{more}", status_code=303)


def _saved_warnings(request: Request, store: Store, principal: Principal | None) -> list[str]:
    """After a save (``?aviso=<device id>``): the expiries of that device already past.

    Read from what is stored, so a link can only show what is true of the entity's own device.
    """
    device_id = request.query_params.get("aviso")
    if not device_id or principal is None:
        return []
    record = store.device(device_id)
    if record is None or record["operator_entity_id"] != principal.entity_id:
        return []
    return [w.message for w in upkeep_warnings(record, today=city_today(request), file="portal")]


def _warn_about(request: Request, record: dict[str, Any]) -> str | None:
    """The device's id if something needs attention about it after a save, for :func:`_done`."""
    warnings = upkeep_warnings(record, today=city_today(request), file="portal")
    return str(record["id"]) if warnings else None


def _not_found(
    request: Request, store: Store, city: CityProfile, principal: Principal, exc: Exception
) -> HTMLResponse:
    return _page(
        "portal/message.html.j2", request=request, store=store, city=city, principal=principal,
        status_code=404, title="No encontrado", problem=str(exc),
    )  # fmt: skip


def _forbidden(
    request: Request, store: Store, city: CityProfile, principal: Principal | None, exc: Exception
) -> HTMLResponse:
    return _page(
        "portal/message.html.j2", request=request, store=store, city=city, principal=principal,
        status_code=403, title="No permitido", problem=str(exc),
    )  # fmt: skip


# --- signing in -------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
async def home(request: Request, store: StoreDep, city: CityDep, clock: ClockDep) -> HTMLResponse:
    """Mis desfibriladores (or the sign-in page)."""
    principal = await _session(request, store, city)
    if isinstance(principal, HTMLResponse):
        return principal
    devices = await run_in_threadpool(_my_devices, store, city, principal, clock)
    return _page(
        "portal/home.html.j2", request=request, store=store, city=city, principal=principal,
        current="/entidades", title="Mis desfibriladores", devices=devices,
    )  # fmt: skip


@router.post("/sesion")
async def sign_in(request: Request, store: StoreDep, city: CityDep) -> Response:
    """A pasted token (for entities that were given one)."""
    try:
        web.check_origin(request)
    except ForbiddenError as exc:
        return _signed_out(request, store, city, problem=str(exc), status_code=403)
    form = await web.read_form(request)
    token = form.get("token", "").strip()
    if not token:
        return _signed_out(request, store, city, problem="Escriba su clave de acceso.")
    try:
        principal = await run_in_threadpool(web.throttled_authenticate, request, store, token)
    except RateLimitedError as exc:
        return _refused(request, store, city, exc)
    except AuthenticationError as exc:
        return _signed_out(request, store, city, problem=str(exc))
    if principal.role != "entity":
        problem = (
            "Esta clave es del personal municipal: entre por la página de gestión "
            "(/gestion). Aquí se entra con la clave o la invitación de una entidad."
        )
        return _signed_out(request, store, city, problem=problem, status_code=403)
    response = RedirectResponse("/entidades", status_code=303)
    SESSION.start(response, request, token)
    return response


@router.get("/invitacion/{code}", response_class=HTMLResponse)
async def invitation(code: str, request: Request, store: StoreDep, city: CityDep) -> HTMLResponse:
    """The link of an invitation: says who it is for; a button uses it (a GET never does, so a
    mail scanner following links cannot spend it)."""
    try:
        record = await run_in_threadpool(
            web.guarded, request, store, lambda: check_invitation(store, code)
        )
    except RateLimitedError as exc:
        return _refused(request, store, city, exc)
    except AuthenticationError as exc:
        return _signed_out(request, store, city, problem=str(exc))
    return _page(
        "portal/invitation.html.j2", request=request, store=store, city=city, principal=None,
        title="Invitación", entity_name=_entity_name(store, record.entity_id), code=code,
        expires_at=record.expires_at,
    )  # fmt: skip


@router.post("/invitacion/{code}")
async def use_invitation(code: str, request: Request, store: StoreDep, city: CityDep) -> Response:
    try:
        web.check_origin(request)
        issued = await run_in_threadpool(
            web.guarded, request, store, lambda: redeem_invitation(store, code)
        )
    except ForbiddenError as exc:
        return _signed_out(request, store, city, problem=str(exc), status_code=403)
    except RateLimitedError as exc:
        return _refused(request, store, city, exc)
    except AuthenticationError as exc:
        return _signed_out(request, store, city, problem=str(exc))
    response = _done("/entidades", "entrada")
    SESSION.start(response, request, issued.secret)
    return response


@router.post("/salir")
async def sign_out(request: Request) -> Response:
    form = await web.read_form(request)
    token = SESSION.token(request)
    if token:
        web.check_csrf(request, form, token)
    response = RedirectResponse("/entidades", status_code=303)
    SESSION.end(response)
    return response


@router.get("/limite.geojson")
async def outline(store: StoreDep, city: CityDep) -> Response:
    """The municipality and its CEAS zones, so the registration map has bearings without tiles."""
    zones = await run_in_threadpool(store.read_layer, "ceas")
    features = [
        {"type": "Feature", "properties": {"name": city.name, "kind": "municipality"},
         "geometry": mapping(city.boundary)},
        *({"type": "Feature", "properties": {"name": str(row.name), "kind": "ceas"},
           "geometry": mapping(row.geometry)} for row in zones.itertuples()),
    ]  # fmt: skip
    body = {"type": "FeatureCollection", "features": features}
    return Response(json.dumps(body), media_type="application/geo+json")


# --- my devices -------------------------------------------------------------------------------


def _state_now(record: dict[str, Any], city: CityProfile, now: dt.datetime) -> tuple[str, str]:
    """(css class, words) for what a citizen would find ``now``."""
    if record["status"] != "active":
        return "closed", STATUS_TEXT[record["status"]]
    text = record.get("opening_hours")
    if not text:
        return "unknown", "Horario sin indicar"
    try:
        is_open, change = open_state(text, now, timezone=city.timezone, calendar=city.calendar)
    except ValueError:
        return "unknown", "Horario no válido"
    if is_open:
        until = f" (cierra {change:%d/%m %H:%M})" if change else " (24 h)"
        return "open", "Abierto ahora" + until
    return "closed", "Cerrado ahora" + (f" (abre {change:%d/%m %H:%M})" if change else "")


def _review_note(store: Store, device_id: str) -> str | None:
    items, _ = store.audit_entries(record_type="device", record_id=device_id, limit=20)
    for item in items:
        if item["action"] == "reject":
            after = item.get("after") or {}
            return str(after.get("review_note") or "") or None
    return None


def _upkeep(
    record: dict[str, Any], due: dict[str, Any] | None, today: dt.date
) -> list[dict[str, str]]:
    """The upkeep lines of one device, each with its urgency (``ok``, ``due``, ``overdue``)."""
    lines = []
    reasons = set(due["reasons"]) if due else set()
    for name, label in (("battery_expiry", "Batería"), ("pads_expiry", "Parches")):
        day = record.get(name)
        if not isinstance(day, dt.date):
            lines.append({"label": label, "text": "caducidad sin indicar", "level": "ok"})
            continue
        days = (day - today).days
        if days < 0:
            text, level = f"caducó el {web.spanish_date(day)} (hace {-days} días)", "overdue"
        elif name in reasons:
            text, level = f"caduca el {web.spanish_date(day)} (en {days} días)", "due"
        else:
            text, level = f"caduca el {web.spanish_date(day)}", "ok"
        lines.append({"label": label, "text": text, "level": level})
    checked = record.get("check_date")
    if "never_checked" in reasons:
        lines.append({"label": "Revisión", "text": "nunca revisado", "level": "overdue"})
    elif "unchecked" in reasons:
        text = f"sin revisar desde el {web.spanish_date(checked)}"
        lines.append({"label": "Revisión", "text": text, "level": "overdue"})
    else:
        text = f"revisado el {web.spanish_date(checked)}"
        lines.append({"label": "Revisión", "text": text, "level": "ok"})
    return lines


def _my_devices(
    store: Store, city: CityProfile, principal: Principal, clock: Clock
) -> list[dict[str, Any]]:
    frame = store.query_layer(
        "defibrillators", where={"operator_entity_id": [principal.entity_id]}, with_version=True
    )
    now = local_now(clock, city.timezone)
    today = now.date()
    due = registry.maintenance_due(frame, today=today)
    due_by_id = {row["id"]: row for row in due.to_dict("records")}
    devices = []
    for position in range(len(frame)):
        record = record_from_row(frame, position)
        state_class, state_text = _state_now(record, city, now)
        devices.append({
            **record,
            "verification_text": VERIFICATION_TEXT[record["verification"]],
            "status_text": STATUS_TEXT[record["status"]],
            "state_class": state_class,
            "state_text": state_text,
            "hours_words": web.hours_in_words(record.get("opening_hours"), city, today=today),
            "review_note": (
                _review_note(store, record["id"]) if record["verification"] == "rejected" else None
            ),
            "upkeep": _upkeep(record, due_by_id.get(record["id"]), today)
            if record["status"] != "removed" else [],
        })  # fmt: skip
    order = {"active": 0, "out_of_service": 1, "removed": 2}
    return sorted(devices, key=lambda d: (order[d["status"]], str(d["name"]).lower()))


def _own_device(store: Store, principal: Principal, device_id: str) -> dict[str, Any]:
    """The entity's own device (another entity's is "not found": no hint that it exists)."""
    record = registry.visible_device(store, principal, device_id)
    if record["operator_entity_id"] != principal.entity_id:
        msg = f"No existe el desfibrilador {device_id!r}."
        raise NotFoundError(msg)
    return record


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


def _form_page(
    request: Request, store: Store, city: CityProfile, principal: Principal, *,
    settings: Settings,
    values: dict[str, str], errors: dict[str, str] | None = None,
    device: dict[str, Any] | None = None, conflict: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:  # fmt: skip
    bounds = city.boundary.bounds
    title = "Registrar un desfibrilador" if device is None else f"Editar: {device['name']}"
    return _page(
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
    principal = await _session(request, store, city)
    if isinstance(principal, HTMLResponse):
        return principal
    return _form_page(
        request, store, city, principal, settings=settings, values=_form_values(None, None)
    )


@router.post("/nuevo", response_class=HTMLResponse)
async def create_device(
    request: Request, store: StoreDep, city: CityDep, finders: FindersDep, settings: SettingsDep
) -> Response:
    principal = await _session(request, store, city)
    if isinstance(principal, HTMLResponse):
        return principal
    try:
        form = await _checked_form(request)
    except ForbiddenError as exc:
        return _forbidden(request, store, city, principal, exc)
    properties, geometry, private, errors = _parse_device_form(form)
    values = {**form}
    if geometry is None:
        errors |= _field_errors(city, properties, today=city_today(request))
        return _form_page(
            request,
            store,
            city,
            principal,
            settings=settings,
            values=values,
            errors=errors,
            status_code=422,
        )
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
        if isinstance(exc, ForbiddenError):
            return _forbidden(request, store, city, principal, exc)
        return _form_page(request, store, city, principal, settings=settings, values=values,
                          errors=_form_errors(exc), status_code=422)  # fmt: skip
    finders.invalidate()
    return _done("/entidades", "registrado", warn=_warn_about(request, record))


@router.get("/desfibriladores/{device_id}", response_class=HTMLResponse)
async def edit_device(
    device_id: str,
    request: Request,
    store: StoreDep,
    city: CityDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> HTMLResponse:
    principal = await _session(request, store, city)
    if isinstance(principal, HTMLResponse):
        return principal
    try:
        record = await run_in_threadpool(_own_device, store, principal, device_id)
    except NotFoundError as exc:
        return _not_found(request, store, city, principal, exc)
    private = store.private_notes([device_id]).get(device_id)
    device = await run_in_threadpool(_device_view, store, city, clock, record)
    values = _form_values(record, private)
    return _form_page(
        request, store, city, principal, settings=settings, values=values, device=device
    )


def _device_view(
    store: Store, city: CityProfile, clock: Clock, record: dict[str, Any]
) -> dict[str, Any]:
    now = local_now(clock, city.timezone)
    today = now.date()
    frame = store.query_layer("defibrillators", ids=[record["id"]])
    due = registry.maintenance_due(frame, today=today)
    state_class, state_text = _state_now(record, city, now)
    uses, _ = store.uses(device_id=record["id"], limit=20)
    return {
        **record,
        "verification_text": VERIFICATION_TEXT[record["verification"]],
        "status_text": STATUS_TEXT[record["status"]],
        "state_class": state_class,
        "state_text": state_text,
        "hours_words": web.hours_in_words(record.get("opening_hours"), city, today=today),
        "review_note": _review_note(store, record["id"]),
        "upkeep": _upkeep(record, due.to_dict("records")[0] if len(due) else None, today),
        "uses": uses,
    }


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
    principal = await _session(request, store, city)
    if isinstance(principal, HTMLResponse):
        return principal
    try:
        form = await _checked_form(request)
        before = await run_in_threadpool(_own_device, store, principal, device_id)
    except ForbiddenError as exc:
        return _forbidden(request, store, city, principal, exc)
    except NotFoundError as exc:
        return _not_found(request, store, city, principal, exc)
    properties, geometry, private, errors = _parse_device_form(form)
    device = await run_in_threadpool(_device_view, store, city, clock, before)
    if geometry is None:
        errors |= _field_errors(city, properties, today=city_today(request))
        return _form_page(
            request,
            store,
            city,
            principal,
            settings=settings,
            values=form,
            errors=errors,
            device=device,
            status_code=422,
        )
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
        current = await run_in_threadpool(_own_device, store, principal, device_id)
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
        device = await run_in_threadpool(_device_view, store, city, clock, current)
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
        if isinstance(exc, ForbiddenError):
            return _forbidden(request, store, city, principal, exc)
        return _form_page(request, store, city, principal, settings=settings, values=form,
                          errors=_form_errors(exc), device=device, status_code=422)  # fmt: skip
    finders.invalidate()
    return _done(
        f"/entidades/desfibriladores/{device_id}", "guardado", warn=_warn_about(request, record)
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
    principal = await _session(request, store, city)
    if isinstance(principal, HTMLResponse):
        return principal
    try:
        form = await _checked_form(request)
        await run_in_threadpool(_own_device, store, principal, device_id)
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
        return _forbidden(request, store, city, principal, exc)
    except CardiomapaError as exc:
        status = 404 if isinstance(exc, NotFoundError) else 422
        return _page(
            "portal/message.html.j2", request=request, store=store, city=city,
            principal=principal, status_code=status, title="No se pudo guardar",
            problem="; ".join(web.field_errors(exc).values()),
            back=f"/entidades/desfibriladores/{device_id}",
        )  # fmt: skip
    finders.invalidate()
    return _done(
        f"/entidades/desfibriladores/{device_id}", message, warn=_warn_about(request, record)
    )


# --- uses -------------------------------------------------------------------------------------


USE_BOOLEANS = (
    "emergency_called", "shock_delivered", "circulation_recovered", "transferred_to_hospital",
    "rescuer_trained",
)  # fmt: skip


USE_LABELS = {
    "used_at": "Fecha y hora del uso", "people_attended": "Personas atendidas",
    "shocks": "Descargas", "patient_age_years": "Edad", "patient_sex": "Sexo", "notes": "Notas",
    "pads_replaced": "Parches", "pads_expiry": "Caducidad de los parches nuevos",
}  # fmt: skip


def _use_page(
    request: Request, store: Store, city: CityProfile, principal: Principal,
    device: dict[str, Any], *, values: dict[str, str], errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:  # fmt: skip
    return _page(
        "portal/use_form.html.j2", request=request, store=store, city=city,
        principal=principal, status_code=status_code, title=f"Comunicar un uso: {device['name']}",
        device=device, values=values, errors=errors or {}, yes_no=YES_NO, sex_options=SEX_OPTIONS,
    )  # fmt: skip


@router.get("/desfibriladores/{device_id}/uso", response_class=HTMLResponse)
async def new_use(
    device_id: str, request: Request, store: StoreDep, city: CityDep, clock: ClockDep
) -> HTMLResponse:
    principal = await _session(request, store, city)
    if isinstance(principal, HTMLResponse):
        return principal
    try:
        device = await run_in_threadpool(_own_device, store, principal, device_id)
    except NotFoundError as exc:
        return _not_found(request, store, city, principal, exc)
    now = local_now(clock, city.timezone).replace(second=0, microsecond=0)
    values = {"used_at": now.strftime("%Y-%m-%dT%H:%M"), "people_attended": "1"}
    return _use_page(request, store, city, principal, device, values=values)


@router.post("/desfibriladores/{device_id}/uso", response_class=HTMLResponse)
async def save_use(
    device_id: str, request: Request, store: StoreDep, city: CityDep, finders: FindersDep
) -> Response:
    principal = await _session(request, store, city)
    if isinstance(principal, HTMLResponse):
        return principal
    try:
        form = await _checked_form(request)
        device = await run_in_threadpool(_own_device, store, principal, device_id)
    except ForbiddenError as exc:
        return _forbidden(request, store, city, principal, exc)
    except NotFoundError as exc:
        return _not_found(request, store, city, principal, exc)
    raw: dict[str, Any] = {}
    for name in ("people_attended", "shocks", "patient_age_years", "patient_sex", "notes",
                 "pads_expiry"):  # fmt: skip
        if form.get(name, "").strip():
            raw[name] = form[name].strip()
    for name in (*USE_BOOLEANS, "pads_replaced"):
        if form.get(name) in ("true", "false"):
            raw[name] = form[name] == "true"
    used_at = form.get("used_at", "").strip()
    if used_at:
        # The form gives local wall-clock time; the API's schema reads a zoneless time as UTC.
        try:
            local = dt.datetime.fromisoformat(used_at)
        except ValueError:
            raw["used_at"] = used_at  # the schema names what is wrong
        else:
            try:
                raw["used_at"] = city_instant(local, city.timezone, field="used_at").isoformat()
            except LocalTimeError as exc:  # the hour the clocks skip
                errors = {"used_at": f"{USE_LABELS['used_at']}: {exc}"}
                return _use_page(request, store, city, principal, device, values=form,
                                 errors=errors, status_code=422)  # fmt: skip
            except OverflowError:  # year 1 or 9999 with an offset: the schema refuses the year
                raw["used_at"] = used_at
    try:
        values = UseCreate.model_validate(raw)
    except ValidationError as exc:
        errors = {
            problem.field or "": f"{USE_LABELS.get(problem.field or '', 'Uso')}: {problem.message}"
            for problem in translate_validation_error(exc.errors())
        }
        return _use_page(request, store, city, principal, device, values=form, errors=errors,
                         status_code=422)  # fmt: skip
    now = app_clock(request).now()
    try:
        await run_in_threadpool(
            lambda: registry.record_use(
                store, city, principal, device_id, values=values.model_dump(), now=now
            )
        )
    except CardiomapaError as exc:
        errors = {
            name: f"{USE_LABELS[name]}: {message}" if name in USE_LABELS else message
            for name, message in web.field_errors(exc).items()
        }
        return _use_page(request, store, city, principal, device, values=form, errors=errors,
                         status_code=422)  # fmt: skip
    if values.pads_replaced:
        finders.invalidate()
        return _done(f"/entidades/desfibriladores/{device_id}", "uso-parches")
    return _done(f"/entidades/desfibriladores/{device_id}", "uso")


# --- the entity's contact ---------------------------------------------------------------------


@router.get("/contacto", response_class=HTMLResponse)
async def contact(request: Request, store: StoreDep, city: CityDep) -> HTMLResponse:
    principal = await _session(request, store, city)
    if isinstance(principal, HTMLResponse):
        return principal
    assert principal.entity_id is not None
    stored = store.contact(principal.entity_id) or {}
    values = {name: stored.get(name) or "" for name in ("person", "email", "phone")}
    return _page(
        "portal/contact.html.j2", request=request, store=store, city=city, principal=principal,
        current="/entidades/contacto", title="Datos de contacto", values=values, errors={},
    )  # fmt: skip


@router.post("/contacto", response_class=HTMLResponse)
async def save_contact(request: Request, store: StoreDep, city: CityDep) -> Response:
    principal = await _session(request, store, city)
    if isinstance(principal, HTMLResponse):
        return principal
    assert principal.entity_id is not None
    try:
        form = await _checked_form(request)
    except ForbiddenError as exc:
        return _forbidden(request, store, city, principal, exc)
    values = {name: form.get(name, "") for name in ("person", "email", "phone")}
    try:
        clean = validate_contact(values)
        await run_in_threadpool(
            lambda: store.set_contacts(
                [{"entity_id": principal.entity_id, **clean}], actor=principal.actor
            )
        )
    except CardiomapaError as exc:
        return _page(
            "portal/contact.html.j2", request=request, store=store, city=city,
            principal=principal, current="/entidades/contacto", title="Datos de contacto",
            values=values, errors=web.field_errors(exc), status_code=422,
        )  # fmt: skip
    return _done("/entidades/contacto", "contacto")
