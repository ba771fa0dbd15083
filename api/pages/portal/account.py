"""Signing in to the entity portal: a pasted token or an invitation link, and signing out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api import web
from api.deps import CityDep, StoreDep
from api.pages.portal.common import SESSION, done, entity_name, page, refused_page, signed_out
from geo.errors import AuthenticationError, ForbiddenError, RateLimitedError
from geo.services.tokens import check_invitation, redeem_invitation

router = APIRouter(prefix="/entidades", include_in_schema=False)


@router.post("/sesion")
async def sign_in(request: Request, store: StoreDep, city: CityDep) -> Response:
    """A pasted token (for entities that were given one)."""
    try:
        web.check_origin(request)
    except ForbiddenError as exc:
        return signed_out(request, store, city, problem=str(exc), status_code=403)
    form = await web.read_form(request)
    token = form.get("token", "").strip()
    if not token:
        return signed_out(request, store, city, problem="Escriba su clave de acceso.")
    try:
        principal = await run_in_threadpool(web.throttled_authenticate, request, store, token)
    except RateLimitedError as exc:
        return refused_page(request, store, city, exc)
    except AuthenticationError as exc:
        return signed_out(request, store, city, problem=str(exc))
    if principal.role == "dispatch":
        return signed_out(request, store, city, problem=web.DISPATCH_TOKEN_PROBLEM, status_code=403)
    if principal.role != "entity":
        problem = (
            "Esta clave es del personal municipal: entre por la página de gestión "
            "(/gestion). Aquí se entra con la clave o la invitación de una entidad."
        )
        return signed_out(request, store, city, problem=problem, status_code=403)
    response = RedirectResponse("/entidades", status_code=303)
    SESSION.start(response, request, token)
    return response


@router.get("/invitacion/{code}", response_class=HTMLResponse)
async def invitation(code: str, request: Request, store: StoreDep, city: CityDep) -> HTMLResponse:
    """The link of an invitation: says who it is for; a button uses it (a GET never does, so a
    mail scanner following links cannot spend it)."""
    zone = city.timezone
    try:
        record = await run_in_threadpool(
            web.guarded, request, store, lambda: check_invitation(store, code, timezone=zone)
        )
    except RateLimitedError as exc:
        return refused_page(request, store, city, exc)
    except AuthenticationError as exc:
        return signed_out(request, store, city, problem=str(exc))
    return page(
        "portal/invitation.html.j2", request=request, store=store, city=city, principal=None,
        title="Invitación", entity_name=entity_name(store, record.entity_id), code=code,
        expires_at=record.expires_at,
    )  # fmt: skip


@router.post("/invitacion/{code}")
async def use_invitation(code: str, request: Request, store: StoreDep, city: CityDep) -> Response:
    zone = city.timezone
    try:
        web.check_origin(request)
        issued = await run_in_threadpool(
            web.guarded, request, store, lambda: redeem_invitation(store, code, timezone=zone)
        )
    except ForbiddenError as exc:
        return signed_out(request, store, city, problem=str(exc), status_code=403)
    except RateLimitedError as exc:
        return refused_page(request, store, city, exc)
    except AuthenticationError as exc:
        return signed_out(request, store, city, problem=str(exc))
    response = done("/entidades", "entrada")
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
