"""The maps as pages: the citizens' map at ``/``, the planners' map at ``/planificacion``.

The citizens' page is public; it is rendered again when the minute or the devices change (from
the same :class:`geo.core.nearest.DeviceFinder` snapshot that answers ``/api/nearest``), in the
background while the previous page is served. The planners' page needs a
planner or administrator token, like the analysis routes: a browser cannot send a bearer token
when it follows a link, so the token is entered once in a form and kept in an HttpOnly,
SameSite=Strict cookie limited to ``/planificacion``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html import escape
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import CityDep, ClockDep, FinderCache, FindersDep, SettingsDep, StoreDep
from api.http import ERRORS
from api.security import page_headers
from api.web import check_origin, read_form, throttled_authenticate
from geo.clock import local_now, local_today
from geo.core.availability import week_start_of
from geo.core.coverage import DEFAULT_RADIUS_M
from geo.core.nearest import DeviceFinder
from geo.core.outputs import data_notice
from geo.errors import AuthenticationError, LocalTimeError, RateLimitedError
from geo.io.store import Store
from geo.render.maps import PlannerForm, basemap_of, citizen_data, citizen_map
from geo.services.publishing import planner_page
from geo.services.tokens import Principal

router = APIRouter()
logger = logging.getLogger(__name__)
COOKIE = "cardiomapa_token"
COOKIE_PATH = "/planificacion"
SESSION_S = 8 * 3600
PLANNER_ROLES = ("planner", "admin")
T = TypeVar("T")


@dataclass(frozen=True)
class MapPage:
    """A rendered map page and its own headers: the Content-Security-Policy that allows its
    inline scripts by their hashes (computed once per render, so the cached page keeps them)."""

    html: str
    headers: dict[str, str]


class RenderCache(Generic[T]):
    """The last thing rendered and what it was rendered from (one per process).

    A key that has not changed gets the cached value. When it changes: if ``serve_stale`` says
    the previous value may still be served (the citizens' page: when only the minute changed; it
    reloads its device states itself when they change by the clock), it is rendered again in the
    background while callers keep getting the previous one, so no visitor waits (about 1 s with
    50,000 devices); otherwise (new data: a write through any worker) the first caller renders
    and the others wait for that one render. The very first value is always rendered while
    waiting.
    """

    def __init__(
        self, *, serve_stale: Callable[[tuple[Any, ...], tuple[Any, ...]], bool] | None = None
    ) -> None:
        self.serve_stale = serve_stale
        self._lock = threading.Lock()  # guards the fields below
        self._render_lock = threading.Lock()  # one render at a time
        self._key: tuple[Any, ...] | None = None
        self._value: T | None = None
        self._refreshing = False

    def get(self, key: tuple[Any, ...], render: Callable[[], T]) -> T:
        with self._lock:
            stale_ok = (
                self._key is not None
                and self.serve_stale is not None
                and self.serve_stale(self._key, key)
            )
            if self._value is not None and (key == self._key or (self._refreshing and stale_ok)):
                return self._value
            if self._value is not None and stale_ok:
                self._refreshing = True
                threading.Thread(
                    target=self._refresh, args=(key, render), name="page-render", daemon=True
                ).start()
                return self._value
        with self._render_lock:
            with self._lock:
                if self._value is not None and key == self._key:
                    return self._value  # rendered by the caller this one waited for
            value = render()
            with self._lock:
                self._key, self._value = key, value
            return value

    def _refresh(self, key: tuple[Any, ...], render: Callable[[], T]) -> None:
        try:
            with self._render_lock:
                value = render()
            with self._lock:
                self._key, self._value = key, value
        except (
            Exception
        ):  # a thread's last stop: keep the last good value; the next request retries
            logger.exception("no se pudo volver a dibujar el mapa ciudadano")
        finally:
            with self._lock:
                self._refreshing = False


async def _finder(finders: FinderCache) -> DeviceFinder:
    finder = finders.fresh()
    return finder if finder is not None else await run_in_threadpool(finders.get)


def _notice(store: Store) -> str:
    return data_notice(layer.sources for layer in store.summary())


def same_data(cached: tuple[Any, ...], wanted: tuple[Any, ...]) -> bool:
    """Whether a page rendered for key ``cached`` shows the same data as ``wanted`` would: the
    same device snapshot (the key's first item, by identity) and the same zones (its last)."""
    return cached[0] is wanted[0] and cached[-1] == wanted[-1]


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def citizens_page(
    request: Request, finders: FindersDep, store: StoreDep, settings: SettingsDep, clock: ClockDep
) -> HTMLResponse:
    """El mapa ciudadano: desfibriladores por disponibilidad ahora y el más cercano."""
    finder = await _finder(finders)
    minute = local_now(clock, finder.city.timezone).replace(second=0, microsecond=0)
    cache: RenderCache[MapPage] = request.app.state.citizen_page

    def render() -> MapPage:
        html = citizen_map(
            finder,
            zones=store.read_layer("ceas"),
            at=minute,
            basemap=basemap_of(settings),
            static_url="/static",
            api_url="/api",
            notice=_notice(store),
        )
        return MapPage(html, page_headers(settings.tile_url or None, html))

    def page() -> MapPage:
        # The finder itself in the key (compared by identity): a new snapshot is new data.
        return cache.get((finder, minute, store.revision("ceas")), render)

    rendered = await run_in_threadpool(page)
    return HTMLResponse(rendered.html, headers={"Cache-Control": "no-cache", **rendered.headers})


@router.get(
    "/api/map/devices",
    tags=["desfibriladores"],
    summary="Todos los desfibriladores del mapa ciudadano con su estado ahora (compacto)",
    responses=ERRORS,
)
async def map_devices(request: Request, finders: FindersDep, clock: ClockDep) -> Response:
    """Filas compactas (columnas en ``columns``) para dibujar decenas de miles de equipos; el
    mapa las vuelve a pedir en ``refresh_at``, cuando cambia el estado de alguno."""
    finder = await _finder(finders)
    minute = local_now(clock, finder.city.timezone).replace(second=0, microsecond=0)
    cache: RenderCache[bytes] = request.app.state.map_devices

    def render() -> bytes:
        document = citizen_data(finder, at=minute, api_url="/api")
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()

    # Every open page asks at the same instant (a device opening or closing): computed once.
    body = await run_in_threadpool(cache.get, (finder, minute), render)
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-cache"})


# --- planners ---------------------------------------------------------------------------------


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
        objective=objective,
    )  # fmt: skip
    try:
        html = await run_in_threadpool(
            planner_page, settings, store, at=at, form=form, reference_date=today
        )
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
    html = f"""<!DOCTYPE html>
<html lang="es"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Planificación — {escape(city)}</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/cardiomapa.css"></head>
<body class="cm-login"><main>
<h1>Planificación de desfibriladores — {escape(city)}</h1>
<p class="cm-error" role="alert">{escape(problem)}</p>
<p><a href="/planificacion">Volver al mapa de planificación</a> y elegir otra hora.</p>
</main></body></html>"""
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def _login_page(
    city: str, *, status_code: int, problem: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:  # fmt: skip
    message = f'<p class="cm-error" role="alert">{escape(problem)}</p>' if problem else ""
    html = f"""<!DOCTYPE html>
<html lang="es"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Planificación — {escape(city)}</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/cardiomapa.css"></head>
<body class="cm-login"><main>
<h1>Planificación de desfibriladores — {escape(city)}</h1>
<p>El mapa de cobertura, huecos y propuestas es para el personal de planificación. Introduzca
su token (lo emite la administración con <code>cardiomapa token create --role planner</code>).</p>
{message}
<form method="post" action="/planificacion/sesion">
<label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required>
<button class="cm-button" type="submit">Entrar</button>
</form>
<p><a href="/">Volver al mapa de desfibriladores</a></p>
</main></body></html>"""
    return HTMLResponse(
        html, status_code=status_code, headers={"Cache-Control": "no-store", **(headers or {})}
    )
