"""The citizens' map at ``/`` and the compact device rows it reloads (``/api/map/devices``).

The page is public; it is rendered again when the minute or the devices change (from the same
:class:`geo.core.nearest.DeviceFinder` snapshot that answers ``/api/nearest``), in the
background while the previous page is served.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from api.deps import (
    ClockDep,
    FinderCache,
    FindersDep,
    RenderCache,
    SettingsDep,
    StoreDep,
    current_finder,
)
from api.http import ERRORS
from api.pages.open_data import OPEN_DATA_URL
from api.security import page_headers
from geo.clock import Clock, local_now
from geo.core.nearest import DeviceFinder
from geo.core.outputs import data_notice
from geo.io.store import Store
from geo.render.maps import OFFLINE_DAYS, basemap_of, citizen_data, citizen_map, citizen_offline

router = APIRouter()


@dataclass(frozen=True)
class MapPage:
    """A rendered map page and its own headers: the Content-Security-Policy that allows its
    inline scripts by their hashes (computed once per render, so the cached page keeps them)."""

    html: str
    headers: dict[str, str]


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
    finder = await current_finder(finders)
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
            open_data_url=OPEN_DATA_URL,
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
    # Every open page asks at the same instant (a device opening or closing): computed once.
    return await _minute_json(
        request.app.state.map_devices, finders, clock,
        lambda finder, minute: citizen_data(finder, at=minute, api_url="/api"),
    )  # fmt: skip


@router.get(
    "/api/map/offline",
    tags=["desfibriladores"],
    summary="Copia para usar sin conexión: los desfibriladores y cuándo se pueden usar 7 días",
    responses=ERRORS,
)
async def map_offline(request: Request, finders: FindersDep, clock: ClockDep) -> Response:
    """Las filas de ``/api/map/devices`` y, para cada una, en ``spans``, los intervalos en que se
    puede usar durante los próximos días (minutos desde ``at``, por pares). La página la guarda
    para encontrar sin red el desfibrilador disponible más cercano; solo datos públicos."""
    return await _minute_json(
        request.app.state.map_offline, finders, clock,
        lambda finder, minute: {**citizen_offline(finder, at=minute), "api_url": "/api"},
    )  # fmt: skip


async def _minute_json(
    cache: RenderCache[bytes],
    finders: FinderCache,
    clock: Clock,
    document: Callable[[DeviceFinder, dt.datetime], dict[str, Any]],
) -> Response:
    """``document`` of the current device snapshot at this minute, as compact JSON rendered once
    per (snapshot, minute) in ``cache`` and answered with ``no-cache``."""
    finder = await current_finder(finders)
    minute = local_now(clock, finder.city.timezone).replace(second=0, microsecond=0)

    def render() -> bytes:
        text = json.dumps(document(finder, minute), ensure_ascii=False, separators=(",", ":"))
        return text.encode()

    body = await run_in_threadpool(cache.get, (finder, minute), render)
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-cache"})


#: The service worker: served from the root so that it may keep the citizens' page at ``/``.
SERVICE_WORKER = Path(__file__).resolve().parent.parent / "static" / "sw.js"


@router.get("/sw.js", include_in_schema=False)
def service_worker() -> Response:
    """The citizens' page's service worker (offline copy of the page, its assets and data)."""
    return Response(
        SERVICE_WORKER.read_bytes(),
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )


@router.get("/manifest.webmanifest", include_in_schema=False)
def manifest(finders: FindersDep) -> Response:
    """The web app manifest: the citizens' map installs on a phone's home screen."""
    city = finders.city
    document = {
        "name": f"Desfibriladores de {city.name}",
        "short_name": "Desfibriladores",
        "description": (
            "El desfibrilador disponible más cercano, ahora; funciona sin conexión con los datos "
            f"de los últimos {OFFLINE_DAYS} días."
        ),
        "lang": "es",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#0a8f3c",
        "icons": [
            {"src": f"/static/icons/{kind}-{size}.png", "sizes": f"{size}x{size}",
             "type": "image/png", "purpose": "maskable" if kind == "maskable" else "any"}
            for kind in ("icon", "maskable")
            for size in (192, 512)
        ],
    }  # fmt: skip
    return Response(
        json.dumps(document, ensure_ascii=False), media_type="application/manifest+json"
    )
