"""The staff desk at ``/gestion``: moderation, citizens' reports, audit log, upkeep, entities.

Server-rendered pages for planners and administrators that work without JavaScript (one small
Leaflet map enhances the moderation queue). The session is the staff member's API token in an
HttpOnly cookie limited to ``/gestion`` (:class:`api.web.Session`), checked on every request;
every form post carries the CSRF field and a matching ``Origin``. Every write goes through
:mod:`geo.services.registry`, :mod:`geo.services.tokens` or the store's audited methods, as the
JSON API's do.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlencode

import shapely
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pyproj import Geod

from api import web
from api.errors import status_of
from api.pages import planners
from geo.city import CityProfile
from geo.clock import Clock, local_today
from geo.core.availability import DOWNGRADING_REPORTS
from geo.core.outputs import data_notice
from geo.errors import (
    AuthenticationError,
    CardiomapaError,
    ForbiddenError,
    InputError,
    NotFoundError,
    RateLimitedError,
)
from geo.io.store import CONTACT_FIELDS, REVIEW_STATUS, Store, record_from_row
from geo.render.maps import ACCESS_TEXT
from geo.services import registry
from geo.services.contacts import validate_contact
from geo.services.tokens import Principal, issue_invitation

router = APIRouter(include_in_schema=False)

SESSION = web.Session(
    cookie="cardiomapa_gestion", path="/gestion", max_age_s=8 * 3600, roles=("planner", "admin")
)
#: A one-shot message for the page a form redirects to (URL-quoted text, read once).
FLASH_COOKIE = "cardiomapa_gestion_aviso"
AUDIT_PAGE_SIZE = 50
REPORTS_PAGE_SIZE = 50
_GEOD = Geod(ellps="WGS84")

ROLE_TEXT = {"planner": "Planificación", "admin": "Administración", "entity": "Entidad"}
KIND_TEXT = registry.REPORT_KIND_TEXT
REPORT_STATUS_TEXT = {"pending": "Pendientes", "accepted": "Resueltos", "rejected": "Descartados"}
VERIFICATION_TEXT = {"pending": "pendiente", "verified": "verificado", "rejected": "rechazado"}
STATUS_TEXT = {
    "active": "en servicio",
    "out_of_service": "fuera de servicio",
    "removed": "retirado",
}
ENTITY_KIND_TEXT = {
    "residence": "residencia", "day_centre": "centro de día", "association": "asociación",
    "foundation": "fundación", "clinic": "clínica", "health_centre": "centro de salud",
    "hospital": "hospital", "pharmacy": "farmacia", "school": "centro educativo",
    "sports_centre": "centro deportivo", "public_building": "edificio público",
    "social_centre": "centro social", "company": "empresa", "other": "otra",
}  # fmt: skip
RECORD_TYPE_TEXT = {
    "device": "Desfibrilador", "report": "Aviso ciudadano", "use": "Uso comunicado",
    "token": "Token", "training": "Formación", "contact": "Contacto de entidad",
    "invitation": "Invitación", "entity": "Acceso de entidad", "reminder": "Recordatorio",
}  # fmt: skip
ACTION_TEXT = {
    "create": "alta", "update": "cambio", "insert": "alta", "delete": "baja",
    "verify": "verificación", "reject": "rechazo", "review": "revisión", "revoke": "revocación",
    "revoke_access": "revocación de acceso", "redeem": "uso de invitación", "send": "envío",
    "import": "importación", "out_of_service": "fuera de servicio",
    "back_in_service": "vuelta al servicio", "check": "revisión del equipo",
}  # fmt: skip
FIELD_TEXT = {
    "name": "nombre", "location_text": "ubicación", "address": "dirección", "access": "acceso",
    "opening_hours": "horario", "indoor": "interior", "level": "planta",
    "operator_entity_id": "entidad", "phone": "teléfono", "status": "estado",
    "verification": "verificación", "installed_on": "instalado", "removed_on": "retirado",
    "check_date": "última revisión", "battery_expiry": "caducidad batería",
    "pads_expiry": "caducidad parches", "is_mobile": "móvil", "source": "fuente",
    "geometry": "posición", "review_note": "nota de revisión", "version": "versión",
    "person": "persona", "email": "correo", "status_text": "estado", "message": "mensaje",
    "kind": "tipo", "reviewed_by": "revisado por", "reviewed_at": "revisado el",
    "status_reason": "motivo",
}  # fmt: skip


@dataclass(frozen=True)
class Desk:
    """A signed-in staff member: who, the session's token and the CSRF value forms echo."""

    principal: Principal
    token: str

    @property
    def csrf(self) -> str:
        return web.csrf_token(self.token)

    @property
    def is_admin(self) -> bool:
        return self.principal.role == "admin"


# --- page frame -------------------------------------------------------------------------------

NAV = (
    ("queue", "/gestion", "Moderación"),
    ("reports", "/gestion/avisos", "Avisos"),
    ("audit", "/gestion/auditoria", "Auditoría"),
    ("upkeep", "/gestion/mantenimiento", "Mantenimiento"),
    ("entities", "/gestion/entidades", "Entidades"),
)


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _city(request: Request) -> CityProfile:
    city: CityProfile = request.app.state.city
    return city


def _today(request: Request) -> dt.date:
    """The city's date by the app's clock."""
    clock: Clock = request.app.state.clock
    return local_today(clock, _city(request).timezone)


def _frame(
    request: Request, desk: Desk | None, *, current: str = "", problem: str | None = None
) -> dict[str, Any]:
    """What base.html.j2 needs on every desk page."""
    store = _store(request)
    nav = []
    if desk is not None:
        nav = [
            {"url": url, "label": label, "current": key == current}
            for key, url, label in NAV
            if key != "entities" or desk.is_admin
        ]
    flash = request.cookies.get(FLASH_COOKIE)
    return {
        "city_name": _city(request).name,
        "area_name": "Gestión",
        "home_url": "/gestion",
        "nav": nav,
        "signed_in": desk is not None,
        "who": (
            f"{ROLE_TEXT.get(desk.principal.role, desk.principal.role)}: {desk.principal.label}"
            if desk
            else ""
        ),
        "logout_url": "/gestion/salir",
        "csrf": desk.csrf if desk else "",
        "notice": data_notice(layer.sources for layer in store.summary()),
        "flash": unquote(flash) if flash and desk is not None else None,
        "problem": problem,
    }


def _page(
    request: Request,
    desk: Desk | None,
    template: str,
    *,
    current: str = "",
    status_code: int = 200,
    problem: str | None = None,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    frame = _frame(request, desk, current=current, problem=problem)
    response = web.render(template, status_code=status_code, headers=headers, **frame, **context)
    if frame["flash"]:
        response.delete_cookie(FLASH_COOKIE, path=SESSION.path, httponly=True, samesite="strict")
    return response


def _signin(
    request: Request, *, status_code: int = 200, problem: str | None = None,
    headers: Mapping[str, str] | None = None, end: bool = False,
) -> HTMLResponse:  # fmt: skip
    response = _page(
        request, None, "desk/signin.html.j2", status_code=status_code, problem=problem,
        headers=headers, title="Entrar",
    )  # fmt: skip
    if end:
        _end_sessions(response)
    return response


def _end_sessions(response: Response) -> None:
    SESSION.end(response)
    response.delete_cookie(
        planners.COOKIE, path=planners.COOKIE_PATH, httponly=True, samesite="strict"
    )


def _status_of(exc: CardiomapaError) -> int:
    return status_of(exc) or 500


def _redirect(url: str, flash: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        FLASH_COOKIE, quote(flash), max_age=120, path=SESSION.path, httponly=True,
        samesite="strict",
    )  # fmt: skip
    return response


def _session(request: Request) -> Desk | HTMLResponse:
    """The signed-in staff member, or the sign-in page (saying why when a session ended)."""
    token = SESSION.token(request)
    if token is None:
        return _signin(request)
    try:
        principal = SESSION.principal(request, _store(request))
    except RateLimitedError as exc:  # the cookie is kept: it may be valid
        return _signin(request, status_code=429, problem=str(exc),
                       headers={"Retry-After": str(exc.retry_after_s)})  # fmt: skip
    if principal is None:
        problem = (
            "Su sesión ha terminado: el token ya no es válido (revocado o caducado) o no es de "
            "planificación ni de administración. Vuelva a entrar."
        )
        return _signin(request, status_code=401, problem=problem, end=True)
    return Desk(principal, token)


def _admin_only(request: Request, desk: Desk, current: str) -> HTMLResponse | None:
    if desk.is_admin:
        return None
    problem = (
        "Esta sección es solo para la administración: su token es de planificación. "
        "Pida a la administración que gestione el acceso de las entidades."
    )
    return _page(request, desk, "desk/forbidden.html.j2", current=current, status_code=403,
                 problem=problem, title="Sin permiso")  # fmt: skip


Action = Callable[[Desk, dict[str, str]], Response]


async def _post(request: Request, action: Action, *, on_error: Callable[..., Response]) -> Response:
    """Read the form, check the session and CSRF, run ``action`` in the thread pool.

    A domain error (refused, not found, already reviewed, invalid input) shows ``on_error``'s
    page with the message and its 4xx status; nothing is changed.
    """
    form = await web.read_form(request)

    def run() -> Response:
        desk = _session(request)
        if isinstance(desk, HTMLResponse):
            return desk
        try:
            web.check_csrf(request, form, desk.token)
        except ForbiddenError as exc:
            return _page(request, desk, "desk/forbidden.html.j2", status_code=403,
                         problem=str(exc), title="Petición rechazada")  # fmt: skip
        try:
            return action(desk, form)
        except CardiomapaError as exc:
            return on_error(request, desk, problem=str(exc), status_code=_status_of(exc))

    return await run_in_threadpool(run)


# --- sign in and out --------------------------------------------------------------------------


@router.post("/gestion/sesion")
async def sign_in(request: Request) -> Response:
    """Recibe el token del formulario y abre la sesión (y la del mapa de planificación)."""
    form = await web.read_form(request)
    token = form.get("token", "").strip()

    def run() -> Response:
        try:
            web.check_origin(request)
        except ForbiddenError as exc:
            return _signin(request, status_code=403, problem=str(exc))
        if not token:
            return _signin(request, status_code=401, problem="Escriba su token.")
        try:
            principal = web.throttled_authenticate(request, _store(request), token)
        except RateLimitedError as exc:
            return _signin(request, status_code=429, problem=str(exc),
                           headers={"Retry-After": str(exc.retry_after_s)})  # fmt: skip
        except AuthenticationError as exc:
            return _signin(request, status_code=401, problem=str(exc))
        if principal.role not in SESSION.roles:
            problem = (
                "Este token es de una entidad y no da acceso a la gestión municipal. Las "
                "entidades gestionan sus desfibriladores en el portal de entidades (/entidades)."
            )
            return _signin(request, status_code=403, problem=problem)
        response = RedirectResponse("/gestion", status_code=303)
        SESSION.start(response, request, token)
        response.set_cookie(
            planners.COOKIE, token, max_age=SESSION.max_age_s, path=planners.COOKIE_PATH,
            httponly=True, samesite="strict", secure=request.url.scheme == "https",
        )  # fmt: skip
        return response

    return await run_in_threadpool(run)


@router.post("/gestion/salir")
async def sign_out(request: Request) -> Response:
    """Cierra la sesión de gestión y la del mapa de planificación."""
    try:
        web.check_origin(request)
    except ForbiddenError as exc:
        problem = str(exc)
        return await run_in_threadpool(lambda: _signin(request, status_code=403, problem=problem))
    response = RedirectResponse("/gestion", status_code=303)
    _end_sessions(response)
    return response


# --- moderation queue -------------------------------------------------------------------------


def _entities(store: Store) -> dict[str, dict[str, Any]]:
    frame = store.query_layer("entities")
    return {str(row["id"]): row for row in (record_from_row(frame, i) for i in range(len(frame)))}


def _coordinates(geometry: Any) -> tuple[float, float] | None:
    """(lon, lat) of a shapely point or a GeoJSON point mapping."""
    if isinstance(geometry, shapely.Point):
        return (float(geometry.x), float(geometry.y))
    if isinstance(geometry, Mapping) and geometry.get("type") == "Point":
        lon, lat = geometry["coordinates"][:2]
        return (float(lon), float(lat))
    return None


def previous_position(store: Store, device: Mapping[str, Any]) -> dict[str, Any] | None:
    """Where a device was before its last move, from the audit log.

    The newest ``update`` entry of the device whose ``before.geometry`` differs from the
    current position; ``None`` if it never moved.
    """
    here = _coordinates(device["geometry"])
    offset = 0
    while True:
        entries, matched = store.audit_entries(
            record_type="device", record_id=str(device["id"]), limit=100, offset=offset
        )
        for entry in entries:
            before = entry.get("before") or {}
            if entry["action"] != "update":
                continue
            then = _coordinates(before.get("geometry"))
            if then is None or here is None:
                continue
            if abs(then[0] - here[0]) > 1e-9 or abs(then[1] - here[1]) > 1e-9:
                distance_m = _GEOD.inv(then[0], then[1], here[0], here[1])[2]
                return {
                    "lon": then[0], "lat": then[1], "distance_m": round(distance_m),
                    "was_verified": before.get("verification") == "verified",
                    "at": entry["at"], "actor": entry["actor"],
                }  # fmt: skip
        offset += len(entries)
        if not entries or offset >= matched:
            return None


def _device_view(
    store: Store, city: CityProfile, record: dict[str, Any], entities: Mapping[str, Any],
    *, today: dt.date, with_move: bool = True,
) -> dict[str, Any]:  # fmt: skip
    entity = entities.get(str(record.get("operator_entity_id") or ""))
    here = _coordinates(record["geometry"])
    return {
        "record": record,
        "path": quote(str(record["id"]), safe=""),
        "entity_name": entity["name"] if entity else None,
        "access_text": ACCESS_TEXT.get(str(record.get("access")), str(record.get("access"))),
        "hours_text": web.hours_in_words(record.get("opening_hours"), city, today=today),
        "verification_text": VERIFICATION_TEXT.get(str(record["verification"]), ""),
        "status_text": STATUS_TEXT.get(str(record.get("status")), str(record.get("status"))),
        "lon": here[0] if here else None,
        "lat": here[1] if here else None,
        "moved": previous_position(store, record) if with_move else None,
    }


def _queue(
    request: Request, desk: Desk, *, problem: str | None = None, status_code: int = 200
) -> HTMLResponse:
    store, city = _store(request), _city(request)
    frame = store.query_layer(
        "defibrillators", where={"verification": ["pending"]}, with_version=True
    )
    entities = _entities(store)
    today = _today(request)
    devices = [
        _device_view(store, city, record_from_row(frame, i), entities, today=today)
        for i in range(len(frame))
    ]
    points = [
        {
            "n": n, "name": view["record"]["name"], "lon": view["lon"], "lat": view["lat"],
            "old": [view["moved"]["lon"], view["moved"]["lat"]] if view["moved"] else None,
        }
        for n, view in enumerate(devices, start=1)
        if view["lon"] is not None
    ]  # fmt: skip
    settings = request.app.state.settings
    return _page(
        request, desk, "desk/queue.html.j2", current="queue", status_code=status_code,
        problem=problem, title="Moderación", devices=devices, points=points,
        tile_url=settings.tile_url or "", tile_attribution=settings.tile_attribution or "",
    )  # fmt: skip


@router.get("/gestion", response_class=HTMLResponse)
def queue_page(request: Request) -> Response:
    """Cola de moderación: desfibriladores pendientes de verificar."""
    desk = _session(request)
    return desk if isinstance(desk, HTMLResponse) else _queue(request, desk)


def _review(request: Request, device_id: str, decision: str) -> Action:
    def action(desk: Desk, form: dict[str, str]) -> Response:
        note = form.get("nota", "").strip() or None
        if decision == "rejected" and note is None:
            msg = "Escriba el motivo del rechazo: la entidad lo verá para corregir el registro."
            raise InputError(msg, code="missing_field", field="nota")
        store = _store(request)
        record = registry.review_device(
            store, desk.principal, device_id, decision=decision, note=note
        )
        request.app.state.finders.invalidate()
        if decision == "verified":
            flash = f"«{record['name']}» verificado: ya aparece en el mapa ciudadano."
        else:
            flash = f"«{record['name']}» rechazado. El motivo queda en el registro de cambios."
        return _redirect("/gestion", flash)

    return action


@router.post("/gestion/desfibriladores/{device_id:path}/verificar")
async def verify_device(request: Request, device_id: str) -> Response:
    """Verifica un desfibrilador pendiente."""
    return await _post(request, _review(request, device_id, "verified"), on_error=_queue)


@router.post("/gestion/desfibriladores/{device_id:path}/rechazar")
async def reject_device(request: Request, device_id: str) -> Response:
    """Rechaza un desfibrilador pendiente con un motivo."""
    return await _post(request, _review(request, device_id, "rejected"), on_error=_queue)


@router.get("/gestion/desfibriladores/{device_id:path}", response_class=HTMLResponse)
def device_page(request: Request, device_id: str) -> Response:
    """Ficha de un desfibrilador para el personal: datos, avisos, servicio y cambios."""
    desk = _session(request)
    return desk if isinstance(desk, HTMLResponse) else _device_page(request, desk, device_id)


#: Audit actions that change whether a device is in service, with what the desk says of them.
SERVICE_ACTIONS = {"out_of_service": "Fuera de servicio", "back_in_service": "Vuelta al servicio"}


def _last_service_change(store: Store, device_id: str) -> dict[str, Any] | None:
    """The newest out-of-service / back-in-service entry of a device: when, who, why."""
    entries, _ = store.audit_entries(record_type="device", record_id=device_id, limit=50)
    for entry in entries:
        if entry["action"] in SERVICE_ACTIONS:
            return {
                "what": SERVICE_ACTIONS[entry["action"]], "at": entry["at"],
                "actor": entry["actor"], "reason": (entry["after"] or {}).get("status_reason"),
            }  # fmt: skip
    return None


def _device_page(
    request: Request, desk: Desk, device_id: str, *, problem: str | None = None,
    status_code: int = 200, errors: Mapping[str, str] | None = None,
    values: Mapping[str, str] | None = None,
) -> HTMLResponse:  # fmt: skip
    store, city = _store(request), _city(request)
    record = store.device(device_id)
    if record is None:
        return _page(request, desk, "desk/forbidden.html.j2", status_code=404,
                     problem=f"No existe el desfibrilador {device_id!r}.",
                     title="No encontrado")  # fmt: skip
    view = _device_view(store, city, record, _entities(store), today=_today(request))
    reports, _ = store.reports(device_id=device_id, limit=20)
    flagged = [_report_view(r) for r in reports
               if r["status"] == "pending" and r["kind"] in DOWNGRADING_REPORTS]  # fmt: skip
    return _page(
        request, desk, "desk/device.html.j2", title=str(record["name"]), device=view,
        status_code=status_code, problem=problem, errors=errors or {}, values=values or {},
        reports=[_report_view(r) for r in reports], flagged=flagged,
        service=_last_service_change(store, device_id),
        audit_url="/gestion/auditoria?" + urlencode({"tipo": "device", "registro": device_id}),
    )  # fmt: skip


def _device_action(request: Request, device_id: str, run: Callable[[Desk, str], str]) -> Action:
    """A form on the device page: ``run(desk, reason)`` writes and returns the flash."""

    def action(desk: Desk, form: dict[str, str]) -> Response:
        flash = run(desk, form.get("motivo", ""))
        request.app.state.finders.invalidate()
        path = quote(device_id, safe="")
        return _redirect(f"/gestion/desfibriladores/{path}", flash)

    return action


async def _device_post(
    request: Request, device_id: str, run: Callable[[Desk, str], str]
) -> Response:
    values: dict[str, str] = {}

    def on_error(request: Request, desk: Desk, *, problem: str, status_code: int) -> HTMLResponse:
        errors = {"motivo": problem} if status_code == 422 else {}
        return _device_page(request, desk, device_id, problem=problem, status_code=status_code,
                            errors=errors, values=values)  # fmt: skip

    def remembered(desk: Desk, reason: str) -> str:
        values["motivo"] = reason
        return run(desk, reason)

    return await _post(request, _device_action(request, device_id, remembered), on_error=on_error)


@router.post("/gestion/desfibriladores/{device_id:path}/fuera-de-servicio")
async def take_out_of_service(request: Request, device_id: str) -> Response:
    """Deja un desfibrilador fuera de servicio, con un motivo (queda en la auditoría)."""

    def run(desk: Desk, reason: str) -> str:
        record = registry.set_in_service(_store(request), desk.principal, device_id,
                                         in_service=False, reason=reason,
                                         today=_today(request))  # fmt: skip
        return (
            f"«{record['name']}» queda fuera de servicio: el mapa ciudadano lo muestra así y "
            "ya no lo cuenta como disponible."
        )

    return await _device_post(request, device_id, run)


@router.post("/gestion/desfibriladores/{device_id:path}/en-servicio")
async def back_in_service(request: Request, device_id: str) -> Response:
    """Vuelve a poner en servicio un desfibrilador, con un motivo (queda en la auditoría)."""

    def run(desk: Desk, reason: str) -> str:
        record = registry.set_in_service(_store(request), desk.principal, device_id,
                                         in_service=True, reason=reason,
                                         today=_today(request))  # fmt: skip
        return f"«{record['name']}» vuelve a estar en servicio."

    return await _device_post(request, device_id, run)


@router.post("/gestion/desfibriladores/{device_id:path}/comprobado")
async def confirm_device(request: Request, device_id: str) -> Response:
    """Anota que el equipo está y funciona (revisado hoy); resuelve sus avisos de falta o avería."""

    def run(desk: Desk, reason: str) -> str:
        record = registry.confirm_device(_store(request), desk.principal, device_id,
                                         today=_today(request))  # fmt: skip
        return f"«{record['name']}»: revisión anotada con fecha de hoy."

    return await _device_post(request, device_id, run)


# --- citizens' reports ------------------------------------------------------------------------


def _report_view(report: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **report,
        "kind_text": KIND_TEXT.get(str(report["kind"]), str(report["kind"])),
        "status_text": {"pending": "pendiente", "accepted": "resuelto",
                        "rejected": "descartado"}.get(str(report["status"]), ""),
    }  # fmt: skip


def _page_number(text: str | None) -> int:
    return int(text) if text and text.isdigit() and 0 < int(text) < 1_000_000 else 1


def _reports(
    request: Request, desk: Desk, *, problem: str | None = None, status_code: int = 200
) -> HTMLResponse:
    store = _store(request)
    status = request.query_params.get("estado", "pending")
    if status not in REVIEW_STATUS:
        status = "pending"
    page = _page_number(request.query_params.get("pagina"))
    items, matched = store.reports(
        status=[status], limit=REPORTS_PAGE_SIZE, offset=(page - 1) * REPORTS_PAGE_SIZE
    )
    names, statuses = {}, {}
    ids = sorted({str(item["device_id"]) for item in items})
    if ids:
        frame = store.query_layer("defibrillators", ids=ids)
        names = dict(zip(frame["id"], frame["name"], strict=True))
        statuses = dict(zip(frame["id"], frame["status"], strict=True))
    views = [
        {**_report_view(item), "device_name": names.get(item["device_id"]),
         "device_path": quote(str(item["device_id"]), safe=""),
         "can_take_out": item["kind"] in DOWNGRADING_REPORTS
         and statuses.get(item["device_id"]) == "active"}
        for item in items
    ]  # fmt: skip
    return _page(
        request, desk, "desk/reports.html.j2", current="reports", status_code=status_code,
        problem=problem, title="Avisos ciudadanos", reports=views, status=status,
        statuses=REPORT_STATUS_TEXT, matched=matched,
        pager=_pager("/gestion/avisos", {"estado": status}, page, matched, REPORTS_PAGE_SIZE),
    )  # fmt: skip


@router.get("/gestion/avisos", response_class=HTMLResponse)
def reports_page(request: Request) -> Response:
    """Avisos de la ciudadanía: pendientes, resueltos o descartados."""
    desk = _session(request)
    return desk if isinstance(desk, HTMLResponse) else _reports(request, desk)


@router.post("/gestion/avisos/{report_id}/revisar")
async def review_report(request: Request, report_id: int) -> Response:
    """Resuelve (acepta) o descarta un aviso, con una nota."""

    def action(desk: Desk, form: dict[str, str]) -> Response:
        decision = form.get("decision", "")
        if decision not in ("accepted", "rejected"):
            msg = "Elija «Resolver» o «Descartar»."
            raise InputError(msg, code="invalid_choice", field="decision")
        note = form.get("nota", "").strip() or None
        out = decision == "accepted" and form.get("fuera_de_servicio") == "si"
        store = _store(request)
        report = store.report(report_id)
        device = store.device(str(report["device_id"])) if report else None
        # Only a device in service can be taken out; otherwise resolving just resolves.
        out = out and device is not None and device["status"] == "active"
        registry.review_report(store, desk.principal, report_id, decision=decision, note=note,
                               out_of_service=out, today=_today(request))  # fmt: skip
        request.app.state.finders.invalidate()
        done = "resuelto" if decision == "accepted" else "descartado"
        flash = f"Aviso {report_id} {done}."
        if out and device is not None:
            flash += f" «{device['name']}» queda fuera de servicio."
        return _redirect("/gestion/avisos", flash)

    return await _post(request, action, on_error=_reports)


# --- audit log --------------------------------------------------------------------------------


def _pager(
    path: str, query: Mapping[str, str], page: int, matched: int, size: int
) -> dict[str, Any]:
    pages_total = max(1, -(-matched // size))
    kept = {k: v for k, v in query.items() if v}

    def url(number: int) -> str:
        return f"{path}?{urlencode({**kept, 'pagina': str(number)})}"

    return {
        "page": page, "pages": pages_total,
        "prev": url(page - 1) if page > 1 else None,
        "next": url(page + 1) if page < pages_total else None,
    }  # fmt: skip


def _plain_value(value: Any) -> str:
    if value is None or value == "":
        return "—"
    point = _coordinates(value) if isinstance(value, Mapping) else None
    if point is not None:
        return f"{point[1]:.6f}, {point[0]:.6f} (lat, lon)"
    if isinstance(value, bool):
        return "sí" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def audit_changes(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> list[dict[str, str]]:
    """The fields an audit entry changed: ``field``, ``label``, ``before``, ``after`` (text)."""
    old, new = dict(before or {}), dict(after or {})
    rows = []
    for name in list(dict.fromkeys([*old, *new])):
        if before is not None and after is not None and old.get(name) == new.get(name):
            continue
        if before is None and new.get(name) in (None, "", {}, []):
            continue
        rows.append({
            "field": name, "label": FIELD_TEXT.get(name, name),
            "before": _plain_value(old.get(name)) if before is not None else "",
            "after": _plain_value(new.get(name)) if after is not None else "",
        })  # fmt: skip
    return rows


@router.get("/gestion/auditoria", response_class=HTMLResponse)
def audit_page(request: Request) -> Response:
    """Registro de cambios: quién, cuándo, qué y cómo era antes."""
    desk = _session(request)
    if isinstance(desk, HTMLResponse):
        return desk
    kind = request.query_params.get("tipo", "")
    if kind not in RECORD_TYPE_TEXT:
        kind = ""
    record_id = request.query_params.get("registro", "").strip()[:200]
    page = _page_number(request.query_params.get("pagina"))
    entries, matched = _store(request).audit_entries(
        record_type=kind or None, record_id=record_id or None, limit=AUDIT_PAGE_SIZE,
        offset=(page - 1) * AUDIT_PAGE_SIZE,
    )  # fmt: skip
    views = [
        {
            **entry,
            "type_text": RECORD_TYPE_TEXT.get(entry["record_type"], entry["record_type"]),
            "action_text": ACTION_TEXT.get(entry["action"], entry["action"]),
            "changes": audit_changes(entry["before"], entry["after"]),
            "link": _record_link(entry["record_type"], entry["record_id"]),
        }
        for entry in entries
    ]
    return _page(
        request, desk, "desk/audit.html.j2", current="audit", title="Registro de cambios",
        entries=views, matched=matched, kind=kind, record_id=record_id,
        kinds=[("", "Todos"), *RECORD_TYPE_TEXT.items()],
        pager=_pager("/gestion/auditoria", {"tipo": kind, "registro": record_id}, page, matched,
                     AUDIT_PAGE_SIZE),
    )  # fmt: skip


def _record_link(record_type: str, record_id: str) -> str | None:
    if record_type == "device":
        return f"/gestion/desfibriladores/{quote(record_id, safe='')}"
    return None


# --- upkeep -----------------------------------------------------------------------------------


def _reasons(
    row: Mapping[str, Any], *, today: dt.date, unchecked_days: int
) -> list[dict[str, Any]]:
    words = []
    for name, what in (("battery_expiry", "La batería"), ("pads_expiry", "Los parches")):
        if name in row["reasons"]:
            day: dt.date = row[name]
            overdue = day < today
            verb = ("caducó" if name == "battery_expiry" else "caducaron") if overdue else (
                "caduca" if name == "battery_expiry" else "caducan")  # fmt: skip
            days = abs((day - today).days)
            when = f"hace {days} días" if overdue else ("hoy" if days == 0 else f"en {days} días")
            text = f"{what} {verb} el {web.spanish_date(day)} ({when})"
            words.append({"text": text, "overdue": overdue})
    if "never_checked" in row["reasons"]:
        words.append({"text": "Nunca revisado: no consta ninguna fecha de revisión",
                      "overdue": False})  # fmt: skip
    if "unchecked" in row["reasons"]:
        checked = row["check_date"]
        words.append({
            "text": f"Sin revisar desde el {web.spanish_date(checked)} "
                    f"({(today - checked).days} días; se pide cada {unchecked_days})",
            "overdue": False,
        })  # fmt: skip
    return words


@router.get("/gestion/mantenimiento", response_class=HTMLResponse)
def upkeep_page(request: Request) -> Response:
    """Mantenimiento: baterías y parches que caducan, equipos sin revisar, por entidad."""
    desk = _session(request)
    if isinstance(desk, HTMLResponse):
        return desk
    store, today = _store(request), _today(request)
    within = request.query_params.get("dias", "30")
    within_days = int(within) if within.isdigit() and int(within) <= 3650 else 30
    devices = store.query_layer("defibrillators", where={"verification": ["pending", "verified"]})
    due = registry.maintenance_due(
        devices, today=today, within_days=within_days, unchecked_days=registry.UNCHECKED_DAYS
    )
    entities = _entities(store)
    contacts = store.contacts()
    groups: dict[str, dict[str, Any]] = {}
    for row in due.to_dict("records"):
        entity_id = row["operator_entity_id"] if isinstance(row["operator_entity_id"], str) else ""
        group = groups.setdefault(entity_id, {
            "entity_id": entity_id,
            "name": entities[entity_id]["name"] if entity_id in entities else None,
            "contact": contacts.get(entity_id), "items": [],
        })  # fmt: skip
        reasons = _reasons(row, today=today, unchecked_days=registry.UNCHECKED_DAYS)
        group["items"].append({
            "id": row["id"], "name": row["name"], "reasons": reasons,
            "overdue": any(r["overdue"] for r in reasons),
            "url": f"/gestion/desfibriladores/{quote(str(row['id']), safe='')}",
        })  # fmt: skip
    ordered = sorted(
        groups.values(),
        key=lambda g: (not any(i["overdue"] for i in g["items"]), g["name"] is None,
                       str(g["name"] or "")),
    )  # fmt: skip
    return _page(
        request, desk, "desk/upkeep.html.j2", current="upkeep", title="Mantenimiento",
        groups=ordered, today=today, within_days=within_days, count=len(due),
        overdue=sum(i["overdue"] for g in ordered for i in g["items"]),
    )  # fmt: skip


# --- entities' access (administrators) --------------------------------------------------------


def _entity_views(store: Store) -> list[dict[str, Any]]:
    now = store.utcnow()
    contacts = store.contacts()
    invitations = store.invitations()
    views = []
    for entity_id, entity in _entities(store).items():
        tokens = store.entity_tokens(entity_id)
        live = [
            t for t in tokens
            if t.revoked_at is None and (t.expires_at is None or t.expires_at > now)
        ]  # fmt: skip
        used = [t.last_used_at for t in tokens if t.last_used_at is not None]
        open_invitations = [
            i for i in invitations
            if i.entity_id == entity_id and i.used_at is None and i.revoked_at is None
            and i.expires_at > now
        ]  # fmt: skip
        views.append({
            "id": entity_id, "name": entity["name"],
            "kind_text": ENTITY_KIND_TEXT.get(str(entity["kind"]), str(entity["kind"])),
            "contact": contacts.get(entity_id) or {}, "live_tokens": len(live),
            "last_used_at": max(used) if used else None, "invitations": open_invitations,
            "path": quote(entity_id, safe=""),
        })  # fmt: skip
    return sorted(views, key=lambda v: str(v["name"]).casefold())


def _entities_page(
    request: Request, desk: Desk, *, problem: str | None = None, status_code: int = 200,
    errors: Mapping[str, str] | None = None, editing: str | None = None,
    values: Mapping[str, str] | None = None,
) -> HTMLResponse:  # fmt: skip
    refused = _admin_only(request, desk, "entities")
    if refused is not None:
        return refused
    return _page(
        request, desk, "desk/entities.html.j2", current="entities", status_code=status_code,
        problem=problem, title="Acceso de las entidades", entities=_entity_views(_store(request)),
        errors=errors or {}, editing=editing, values=values or {},
    )  # fmt: skip


@router.get("/gestion/entidades", response_class=HTMLResponse)
def entities_page(request: Request) -> Response:
    """Entidades: contacto, accesos vivos, invitaciones (solo administración)."""
    desk = _session(request)
    return desk if isinstance(desk, HTMLResponse) else _entities_page(request, desk)


def _require_admin(desk: Desk) -> None:
    if not desk.is_admin:
        msg = "Solo la administración gestiona el acceso y el contacto de las entidades."
        raise ForbiddenError(msg)


def _require_entity(store: Store, entity_id: str) -> dict[str, Any]:
    entity = _entities(store).get(entity_id)
    if entity is None:
        msg = f"No existe la entidad {entity_id!r} en la capa de entidades."
        raise NotFoundError(msg)
    return entity


@router.post("/gestion/entidades/{entity_id:path}/contacto")
async def edit_contact(request: Request, entity_id: str) -> Response:
    """Guarda el contacto privado de una entidad."""
    form: dict[str, str] = {}

    def action(desk: Desk, sent: dict[str, str]) -> Response:
        form.update(sent)
        _require_admin(desk)
        store = _store(request)
        entity = _require_entity(store, entity_id)
        try:
            values = validate_contact({name: sent.get(name, "") for name in CONTACT_FIELDS})
        except CardiomapaError as exc:
            form["__field"] = next(iter(web.field_errors(exc)), "")
            raise
        result = store.set_contacts([{"entity_id": entity_id, **values}],
                                    actor=desk.principal.actor)  # fmt: skip
        done = "sin cambios" if result.get(entity_id) == "unchanged" else "guardado"
        return _redirect("/gestion/entidades", f"Contacto de «{entity['name']}»: {done}.")

    def on_error(request: Request, desk: Desk, *, problem: str, status_code: int) -> HTMLResponse:
        field = None
        if status_code == 422:
            field = form.get("__field") or _field_of(problem, form)
        errors = {field: problem} if field else {}
        return _entities_page(request, desk, problem=problem, status_code=status_code,
                              errors=errors, editing=entity_id, values=form)  # fmt: skip

    return await _post(request, action, on_error=on_error)


def _field_of(problem: str, form: Mapping[str, str]) -> str | None:
    """Which contact field a validation message is about (by the field's name in it)."""
    for name, words in (("email", ("correo", "email")), ("phone", ("teléfono", "phone")),
                        ("person", ("persona", "person"))):  # fmt: skip
        if any(word in problem.casefold() for word in words):
            return name
    return None


@router.post("/gestion/entidades/{entity_id:path}/invitacion")
async def create_invitation(request: Request, entity_id: str) -> Response:
    """Crea un enlace de invitación de un solo uso y lo muestra una única vez."""

    def action(desk: Desk, form: dict[str, str]) -> Response:
        _require_admin(desk)
        store = _store(request)
        entity = _require_entity(store, entity_id)
        invitation = issue_invitation(store, entity_id=entity_id, actor=desk.principal.actor)
        return _page(
            request, desk, "desk/invitation.html.j2", current="entities",
            title="Invitación creada", entity=entity, invitation=invitation.record,
            link=invitation.url(str(request.base_url)),
        )  # fmt: skip

    return await _post(request, action, on_error=_entities_page)


@router.post("/gestion/entidades/{entity_id:path}/revocar")
async def revoke_access(request: Request, entity_id: str) -> Response:
    """Revoca a la vez todos los tokens e invitaciones abiertas de una entidad."""

    def action(desk: Desk, form: dict[str, str]) -> Response:
        _require_admin(desk)
        store = _store(request)
        entity = _require_entity(store, entity_id)
        if form.get("confirmar") != "si":
            msg = (
                f"Para revocar el acceso de «{entity['name']}» marque la casilla de "
                "confirmación: sus sesiones se cerrarán al momento."
            )
            raise InputError(msg, code="missing_field", field="confirmar")
        tokens, invitations = store.revoke_entity_access(entity_id, actor=desk.principal.actor)
        flash = (
            f"Acceso de «{entity['name']}» revocado: {tokens} token(s) y {invitations} "
            "invitación(es) anulados."
        )
        return _redirect("/gestion/entidades", flash)

    return await _post(request, action, on_error=_entities_page)
