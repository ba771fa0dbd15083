"""Signing in to the staff desk (and to the planners' map with it) and signing out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from api import web
from api.pages import planners
from api.pages.desk import common
from geo.errors import AuthenticationError, ForbiddenError, RateLimitedError

router = APIRouter(include_in_schema=False)


@router.post("/gestion/sesion")
async def sign_in(request: Request) -> Response:
    """Recibe el token del formulario y abre la sesión (y la del mapa de planificación)."""
    form = await web.read_form(request)
    token = form.get("token", "").strip()

    def run() -> Response:
        try:
            web.check_origin(request)
        except ForbiddenError as exc:
            return common.signin_page(request, status_code=403, problem=str(exc))
        if not token:
            return common.signin_page(request, status_code=401, problem="Escriba su token.")
        try:
            principal = web.throttled_authenticate(request, common.store_of(request), token)
        except RateLimitedError as exc:
            return common.signin_page(request, status_code=429, problem=str(exc),
                                      headers={"Retry-After": str(exc.retry_after_s)})  # fmt: skip
        except AuthenticationError as exc:
            return common.signin_page(request, status_code=401, problem=str(exc))
        if principal.role == "dispatch":
            return common.signin_page(request, status_code=403, problem=web.DISPATCH_TOKEN_PROBLEM)
        if principal.role not in common.SESSION.roles:
            problem = (
                "Este token es de una entidad y no da acceso a la gestión municipal. Las "
                "entidades gestionan sus desfibriladores en el portal de entidades (/entidades)."
            )
            return common.signin_page(request, status_code=403, problem=problem)
        response = RedirectResponse("/gestion", status_code=303)
        common.SESSION.start(response, request, token)
        response.set_cookie(
            planners.COOKIE, token, max_age=common.SESSION.max_age_s, path=planners.COOKIE_PATH,
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
        return await run_in_threadpool(
            lambda: common.signin_page(request, status_code=403, problem=problem)
        )
    response = RedirectResponse("/gestion", status_code=303)
    common.end_sessions(response)
    return response
