"""What every page of the staff desk shares: the session, the page frame, one-shot messages,
the form post (session, CSRF, then the action), the entities, points and paging."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlencode

import shapely
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api import web
from api.errors import status_of
from api.pages import planners
from geo.city import CityProfile
from geo.core.outputs import data_notice
from geo.errors import CardiomapaError, ForbiddenError, RateLimitedError
from geo.io.store import Store, record_from_row
from geo.services.tokens import Principal

SESSION = web.Session(
    cookie="cardiomapa_gestion", path="/gestion", max_age_s=8 * 3600, roles=("planner", "admin")
)
#: A one-shot message for the page a form redirects to (URL-quoted text, read once).
FLASH_COOKIE = "cardiomapa_gestion_aviso"

ROLE_TEXT = {"planner": "Planificación", "admin": "Administración", "entity": "Entidad"}


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


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def city_of(request: Request) -> CityProfile:
    city: CityProfile = request.app.state.city
    return city


def _frame(
    request: Request, desk: Desk | None, *, current: str = "", problem: str | None = None
) -> dict[str, Any]:
    """What base.html.j2 needs on every desk page."""
    store = store_of(request)
    nav = []
    if desk is not None:
        nav = [
            {"url": url, "label": label, "current": key == current}
            for key, url, label in NAV
            if key != "entities" or desk.is_admin
        ]
    flash = request.cookies.get(FLASH_COOKIE)
    return {
        "city_name": city_of(request).name,
        "timezone": city_of(request).timezone,
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


def render_page(
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


def signin_page(
    request: Request, *, status_code: int = 200, problem: str | None = None,
    headers: Mapping[str, str] | None = None, end: bool = False,
) -> HTMLResponse:  # fmt: skip
    response = render_page(
        request, None, "desk/signin.html.j2", status_code=status_code, problem=problem,
        headers=headers, title="Entrar",
    )  # fmt: skip
    if end:
        end_sessions(response)
    return response


def end_sessions(response: Response) -> None:
    SESSION.end(response)
    response.delete_cookie(
        planners.COOKIE, path=planners.COOKIE_PATH, httponly=True, samesite="strict"
    )


def _status_of(exc: CardiomapaError) -> int:
    return status_of(exc) or 500


def redirect(url: str, flash: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        FLASH_COOKIE, quote(flash), max_age=120, path=SESSION.path, httponly=True,
        samesite="strict",
    )  # fmt: skip
    return response


def desk_session(request: Request) -> Desk | HTMLResponse:
    """The signed-in staff member, or the sign-in page (saying why when a session ended)."""
    token = SESSION.token(request)
    if token is None:
        return signin_page(request)
    try:
        principal = SESSION.principal(request, store_of(request))
    except RateLimitedError as exc:  # the cookie is kept: it may be valid
        return signin_page(request, status_code=429, problem=str(exc),
                       headers={"Retry-After": str(exc.retry_after_s)})  # fmt: skip
    if principal is None:
        problem = (
            "Su sesión ha terminado: el token ya no es válido (revocado o caducado) o no es de "
            "planificación ni de administración. Vuelva a entrar."
        )
        return signin_page(request, status_code=401, problem=problem, end=True)
    return Desk(principal, token)


def admin_only(request: Request, desk: Desk, current: str) -> HTMLResponse | None:
    if desk.is_admin:
        return None
    problem = (
        "Esta sección es solo para la administración: su token es de planificación. "
        "Pida a la administración que gestione el acceso de las entidades."
    )
    return render_page(request, desk, "desk/forbidden.html.j2", current=current, status_code=403,
                 problem=problem, title="Sin permiso")  # fmt: skip


Action = Callable[[Desk, dict[str, str]], Response]


async def post(request: Request, action: Action, *, on_error: Callable[..., Response]) -> Response:
    """Read the form, check the session and CSRF, run ``action`` in the thread pool.

    A domain error (refused, not found, already reviewed, invalid input) shows ``on_error``'s
    page with the message and its 4xx status; nothing is changed.
    """
    form = await web.read_form(request)

    def run() -> Response:
        desk = desk_session(request)
        if isinstance(desk, HTMLResponse):
            return desk
        try:
            web.check_csrf(request, form, desk.token)
        except ForbiddenError as exc:
            return render_page(request, desk, "desk/forbidden.html.j2", status_code=403,
                         problem=str(exc), title="Petición rechazada")  # fmt: skip
        try:
            return action(desk, form)
        except CardiomapaError as exc:
            return on_error(request, desk, problem=str(exc), status_code=_status_of(exc))

    return await run_in_threadpool(run)


def entities_by_id(store: Store) -> dict[str, dict[str, Any]]:
    frame = store.query_layer("entities")
    return {str(row["id"]): row for row in (record_from_row(frame, i) for i in range(len(frame)))}


def coordinates(geometry: Any) -> tuple[float, float] | None:
    """(lon, lat) of a shapely point or a GeoJSON point mapping."""
    if isinstance(geometry, shapely.Point):
        return (float(geometry.x), float(geometry.y))
    if isinstance(geometry, Mapping) and geometry.get("type") == "Point":
        lon, lat = geometry["coordinates"][:2]
        return (float(lon), float(lat))
    return None


def page_number(text: str | None) -> int:
    return int(text) if text and text.isdigit() and 0 < int(text) < 1_000_000 else 1


def pager(
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
