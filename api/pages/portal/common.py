"""What every page of the entity portal shares: the session, the page frame, the messages after a
change, the pages that say something went wrong, and the entity's own device."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from api import web
from api.deps import city_today
from geo.city import CityProfile
from geo.core.layers import upkeep_warnings
from geo.core.outputs import data_notice
from geo.errors import ForbiddenError, NotFoundError, RateLimitedError
from geo.io.store import Store
from geo.services import registry
from geo.services.tokens import ENTITY_SESSION_DAYS, Principal

SESSION = web.Session(
    cookie="cardiomapa_entidad",
    path="/entidades",
    max_age_s=ENTITY_SESSION_DAYS * 86_400,
    roles=("entity",),
)


# --- context shared by every page -------------------------------------------------------------


def _nav(current: str) -> list[dict[str, Any]]:
    items = [
        ("/entidades", "Mis desfibriladores"),
        ("/entidades/nuevo", "Registrar uno"),
        ("/entidades/contacto", "Contacto"),
    ]
    return [{"url": url, "label": label, "current": url == current} for url, label in items]


def entity_name(store: Store, entity_id: str | None) -> str:
    if entity_id is None:
        return "—"
    frame = store.query_layer("entities", ids=[entity_id])
    return str(frame.iloc[0]["name"]) if not frame.empty else entity_id


def page(
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
        "timezone": city.timezone,
        "area_name": "Portal de entidades",
        "home_url": "/entidades",
        "nav": _nav(current) if principal else [],
        "signed_in": principal is not None,
        "who": entity_name(store, principal.entity_id) if principal else "",
        "logout_url": "/entidades/salir",
        "csrf": web.csrf_token(token) if token and principal else "",
        "notice": data_notice(layer.sources for layer in store.summary()),
        "flash": DONE.get(request.query_params.get("hecho", "")),
        "warnings": _saved_warnings(request, store, principal),
        "problem": None,
    }
    return web.render(template, status_code=status_code, **(base | context))


def signed_out(
    request: Request, store: Store, city: CityProfile, *, problem: str | None = None,
    status_code: int = 401, end: bool = True, headers: Mapping[str, str] | None = None,
) -> HTMLResponse:  # fmt: skip
    """The sign-in page; ``end``: also end the session a cookie held."""
    had_cookie = SESSION.token(request) is not None
    if had_cookie and problem is None:
        problem = "Su sesión ha terminado (caducó o se revocó el acceso). Vuelva a entrar."
    response = page(
        "portal/login.html.j2", request=request, store=store, city=city, principal=None,
        status_code=status_code, title="Entrar", problem=problem,
    )  # fmt: skip
    if headers:
        response.headers.update(headers)
    if had_cookie and end:
        SESSION.end(response)
    return response


async def entity_session(
    request: Request, store: Store, city: CityProfile
) -> Principal | HTMLResponse:
    """The entity signed in, or the page to show instead: sign-in (no session, or it ended) or
    429 (the client is over the failed-credential limit; the cookie is kept)."""
    try:
        principal = await run_in_threadpool(SESSION.principal, request, store)
    except RateLimitedError as exc:
        return refused_page(request, store, city, exc)
    return principal if principal is not None else signed_out(request, store, city)


def refused_page(
    request: Request, store: Store, city: CityProfile, exc: RateLimitedError
) -> HTMLResponse:
    """The sign-in page saying why nothing is accepted now (429, ``Retry-After``)."""
    return signed_out(
        request, store, city, problem=str(exc), status_code=429, end=False,
        headers={"Retry-After": str(exc.retry_after_s)},
    )  # fmt: skip


async def checked_form(request: Request) -> dict[str, str]:
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


def done(url: str, key: str, *, warn: str | None = None) -> RedirectResponse:
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


def warn_about(request: Request, record: dict[str, Any]) -> str | None:
    """The device's id if something needs attention about it after a save, for :func:`done`."""
    warnings = upkeep_warnings(record, today=city_today(request), file="portal")
    return str(record["id"]) if warnings else None


def not_found_page(
    request: Request, store: Store, city: CityProfile, principal: Principal, exc: Exception
) -> HTMLResponse:
    return page(
        "portal/message.html.j2", request=request, store=store, city=city, principal=principal,
        status_code=404, title="No encontrado", problem=str(exc),
    )  # fmt: skip


def forbidden_page(
    request: Request, store: Store, city: CityProfile, principal: Principal | None, exc: Exception
) -> HTMLResponse:
    return page(
        "portal/message.html.j2", request=request, store=store, city=city, principal=principal,
        status_code=403, title="No permitido", problem=str(exc),
    )  # fmt: skip


# --- the entity's devices ----------------------------------------------------------------------


def own_device(store: Store, principal: Principal, device_id: str) -> dict[str, Any]:
    """The entity's own device (another entity's is "not found": no hint that it exists)."""
    record = registry.visible_device(store, principal, device_id)
    if record["operator_entity_id"] != principal.entity_id:
        msg = f"No existe el desfibrilador {device_id!r}."
        raise NotFoundError(msg)
    return record


async def entity_and_device(
    request: Request, store: Store, city: CityProfile, device_id: str
) -> tuple[Principal, dict[str, Any]] | HTMLResponse:
    """The entity signed in and its device ``device_id``, or the page to show instead: sign-in
    (or 429, :func:`entity_session`) or 404 (not one of the entity's devices)."""
    principal = await entity_session(request, store, city)
    if isinstance(principal, HTMLResponse):
        return principal
    try:
        device = await run_in_threadpool(own_device, store, principal, device_id)
    except NotFoundError as exc:
        return not_found_page(request, store, city, principal, exc)
    return principal, device


async def posted_about_device(
    request: Request, store: Store, city: CityProfile, device_id: str
) -> tuple[Principal, dict[str, str], dict[str, Any]] | HTMLResponse:
    """The entity signed in, the form it posted about its device ``device_id`` (after both CSRF
    checks) and that device, or the page to show instead: sign-in (or 429,
    :func:`entity_session`), 403 (a CSRF check failed) or 404 (not one of the entity's devices)."""
    principal = await entity_session(request, store, city)
    if isinstance(principal, HTMLResponse):
        return principal
    try:
        form = await checked_form(request)
        device = await run_in_threadpool(own_device, store, principal, device_id)
    except ForbiddenError as exc:
        return forbidden_page(request, store, city, principal, exc)
    except NotFoundError as exc:
        return not_found_page(request, store, city, principal, exc)
    return principal, form, device
