"""The planners' map at ``/planificacion``.

It needs a planner or administrator token, like the analysis routes: a browser cannot send a
bearer token when it follows a link, so the token is entered once in a form and kept in an
HttpOnly, SameSite=Strict cookie limited to ``/planificacion``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from html import escape
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import CityDep, ClockDep, SettingsDep, StoreDep
from api.pages.open_data import OPEN_DATA_URL
from api.security import page_headers
from api.web import check_origin, read_form, throttled_authenticate
from geo.clock import local_today
from geo.core.availability import week_start_of
from geo.core.coverage import DEFAULT_RADIUS_M
from geo.errors import AuthenticationError, LocalTimeError, RateLimitedError
from geo.io.store import Store
from geo.render.maps import PlannerForm
from geo.services.publishing import planner_page
from geo.services.tokens import Principal

router = APIRouter()
COOKIE = "cardiomapa_token"
COOKIE_PATH = "/planificacion"
SESSION_S = 8 * 3600
PLANNER_ROLES = ("planner", "admin")


def _planner(request: Request, store: Store) -> Principal | None:
    """Who the planners' cookie stands for, or ``None``; a cookie that is not a valid token
    counts as a failed credential.

    Raises
    ------
    RateLimitedError
        The client is over the failed-credential limit.
    """
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        principal = throttled_authenticate(request, store, token)
    except AuthenticationError:
        return None
    return principal if principal.role in PLANNER_ROLES else None


@router.get("/planificacion", response_class=HTMLResponse, include_in_schema=False)
async def planners_page(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    city: CityDep,
    clock: ClockDep,
    dia: Annotated[str, Query(pattern=r"^[0-6]?$", description="0 = lunes; vacío = 24/7")] = "",
    hora: Annotated[int, Query(ge=0, le=23)] = 10,
    radio_m: Annotated[float, Query(ge=10, le=5000)] = DEFAULT_RADIUS_M,
    nuevos: Annotated[int, Query(ge=1, le=50)] = 10,
    objetivo: Annotated[Literal["residentes", "vidas"], Query()] = "residentes",
    abrir_24h: Annotated[
        bool, Query(description="Proponer también abrir 24 h desfibriladores existentes.")
    ] = False,
) -> HTMLResponse:
    """El mapa de planificación (con token de planificación o administración)."""
    try:
        principal = await run_in_threadpool(_planner, request, store)
    except RateLimitedError as exc:
        return _login_page(city.name, status_code=429, problem=str(exc),
                           headers={"Retry-After": str(exc.retry_after_s)})  # fmt: skip
    if principal is None:
        response = _login_page(city.name, status_code=401)
        if COOKIE in request.cookies:  # ended: not sent (and counted) again
            response.delete_cookie(COOKIE, path=COOKIE_PATH)
        return response
    day = int(dia) if dia else None
    today = local_today(clock, city.timezone)
    at = None
    if day is not None:
        monday = week_start_of(today, city.timezone)
        at = (monday + dt.timedelta(days=day)).replace(hour=hora, minute=30).replace(tzinfo=None)
    objective = "lives" if objetivo == "vidas" else "residents"
    form = PlannerForm(
        action="/planificacion", day=day, hour=hora, radius_m=radio_m, new=nuevos,
        objective=objective, actions=("new", "extend_hours") if abrir_24h else ("new",),
    )  # fmt: skip
    try:
        html = await run_in_threadpool(
            planner_page, settings, store, at=at, form=form, reference_date=today,
            open_data_url=OPEN_DATA_URL,
        )  # fmt: skip
    except LocalTimeError as exc:  # the hour the clocks skip: a page, not a JSON error
        return _problem_page(city.name, str(exc), status_code=422)
    headers = page_headers(settings.tile_url or None, html)
    return HTMLResponse(html, headers={"Cache-Control": "no-store", **headers})


@router.post("/planificacion/sesion", include_in_schema=False)
async def planner_login(request: Request, store: StoreDep, city: CityDep) -> Response:
    """Recibe el token del formulario y lo guarda en una cookie HttpOnly."""
    check_origin(request)
    token = (await read_form(request)).get("token", "").strip()
    if not token:
        return _login_page(city.name, status_code=401, problem="Escriba su token.")
    try:
        principal = await run_in_threadpool(throttled_authenticate, request, store, token)
    except RateLimitedError as exc:
        return _login_page(city.name, status_code=429, problem=str(exc),
                           headers={"Retry-After": str(exc.retry_after_s)})  # fmt: skip
    except AuthenticationError as exc:
        return _login_page(city.name, status_code=401, problem=str(exc))
    if principal.role not in PLANNER_ROLES:
        problem = f"Su token ({principal.role}) no da acceso: hace falta uno de planificación."
        return _login_page(city.name, status_code=403, problem=problem)
    response = RedirectResponse("/planificacion", status_code=303)
    response.set_cookie(
        COOKIE, token, max_age=SESSION_S, path=COOKIE_PATH, httponly=True, samesite="strict",
        secure=request.url.scheme == "https",
    )  # fmt: skip
    return response


@router.post("/planificacion/salir", include_in_schema=False)
async def planner_logout(request: Request) -> Response:
    check_origin(request)
    response = RedirectResponse("/planificacion", status_code=303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response


def _problem_page(city: str, problem: str, *, status_code: int) -> HTMLResponse:
    """A planners' page that says what was wrong with what was asked, and the way back."""
    body = f"""\
<p class="cm-error" role="alert">{escape(problem)}</p>
<p><a href="/planificacion">Volver al mapa de planificación</a> y elegir otra hora.</p>"""
    return _planners_html(city, body, status_code=status_code)


def _login_page(
    city: str, *, status_code: int, problem: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:  # fmt: skip
    message = f'<p class="cm-error" role="alert">{escape(problem)}</p>' if problem else ""
    body = f"""\
<p>El mapa de cobertura, huecos y propuestas es para el personal de planificación. Introduzca
su token (lo emite la administración con <code>cardiomapa token create --role planner</code>).</p>
{message}
<form method="post" action="/planificacion/sesion">
<label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required>
<button class="cm-button" type="submit">Entrar</button>
</form>
<p><a href="/">Volver al mapa de desfibriladores</a></p>"""
    return _planners_html(city, body, status_code=status_code, headers=headers)


def _planners_html(
    city: str, body: str, *, status_code: int, headers: Mapping[str, str] | None = None
) -> HTMLResponse:
    """A small page of the planners' area (sign-in, a problem) around ``body``, never cached."""
    html = f"""<!DOCTYPE html>
<html lang="es"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Planificación — {escape(city)}</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/cardiomapa.css"></head>
<body class="cm-login"><main>
<h1>Planificación de desfibriladores — {escape(city)}</h1>
{body}
<p><a href="{OPEN_DATA_URL}">Datos abiertos</a></p>
</main></body></html>"""
    return HTMLResponse(
        html, status_code=status_code, headers={"Cache-Control": "no-store", **(headers or {})}
    )
