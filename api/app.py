"""The web application: built by :func:`create_app` from explicit settings, never at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html import escape
from typing import Annotated, Any

from fastapi import FastAPI, Path, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from shapely.geometry import mapping

from api import errors
from api.clients import TrustedProxyMiddleware
from api.deps import CityDep, FinderCache, RenderCache, StoreDep
from api.http import ERRORS, BboxQuery, LimitQuery, OffsetQuery, page_links, parse_bbox
from api.pages import cabinet, citizens, desk, open_data, planners, portal
from api.routes import devices, dispatch, hours, ogc, planning, staff, training
from api.schemas import (
    CityPublic,
    IndexPublic,
    LayerCollection,
    LayerFeature,
    LayerPublic,
)
from api.security import BodyLimitMiddleware, SecurityHeadersMiddleware
from geo.core.outputs import data_notice, plain
from geo.errors import NotFoundError
from geo.io import changes
from geo.io.store import Store, record_from_row
from geo.render.maps import STATIC_DIR
from geo.settings import Settings

#: Other layers served read-only: URL segment → layer name.
PUBLIC_LAYERS = {"entities": "entities", "ceas": "ceas", "cohousing": "cohousing"}


def create_app(settings: Settings) -> FastAPI:
    """Build the app for ``settings``; the database is opened (and migrated) at start-up."""
    city = settings.load_city()
    clock = settings.clock(city)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One Store (engine and pool) per process, opened and migrated here, at start-up; a
        # request never opens one, nor migrates.
        store = Store.open(settings.database_url, clock=clock)
        watch = changes.watch(store.engine)
        app.state.store = store
        app.state.finders = FinderCache(store, city, watch=watch)
        try:
            yield
        finally:
            watch.close()
            store.close()

    app = FastAPI(
        title="cardiomapa",
        summary=f"Desfibriladores y recursos de cuidados de {city.name}",
        description=(
            "Ciudadanía: desfibrilador más cercano disponible, listados y descargas, avisos. "
            "Entidades (token): registro y mantenimiento de sus desfibriladores, usos. "
            "Planificación y administración (token con rol): moderación, auditoría, "
            "mantenimiento, cobertura, huecos y propuestas. Centro coordinador de emergencias "
            "112 (token dispatch): desfibriladores con su estado y las notas de emergencia. "
            "Errores: {code, message, problems}."
        ),
        lifespan=lifespan,
        docs_url=None,  # served below with the vendored Swagger UI (FastAPI's loads from a CDN)
        redoc_url=None,
    )
    app.state.city = city
    app.state.clock = clock
    app.state.settings = settings
    errors.install(app)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "If-Match"],
        expose_headers=["ETag", "Location", "Retry-After"],
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeadersMiddleware, tile_url=settings.tile_url or None)
    # Outermost: every route and middleware sees the client a trusted proxy forwards.
    app.add_middleware(TrustedProxyMiddleware, trusted=settings.trusted_proxies)
    app.state.citizen_page = RenderCache[citizens.MapPage](serve_stale=citizens.same_data)
    app.state.map_devices = RenderCache[bytes]()
    app.state.map_offline = RenderCache[bytes]()
    app.state.dispatch_feed = RenderCache[dispatch.Feed]()
    app.include_router(citizens.router)
    app.include_router(cabinet.router)
    app.include_router(planners.router)
    app.include_router(desk.router)
    app.include_router(portal.router)
    app.include_router(open_data.router)
    app.include_router(devices.router)
    app.include_router(hours.router)
    app.include_router(staff.router)
    app.include_router(dispatch.router)
    app.include_router(planning.router)
    app.include_router(training.router)
    app.include_router(ogc.router)
    # One /static for the maps' scripts and styles and the vendored libraries (geo/render/static)
    # and the pages' own (api/static): pages never load anything from a CDN.
    app.mount(
        "/static", StaticFiles(directory=STATIC_DIR, packages=[("api", "static")]), name="static"
    )

    @app.get("/api", response_model=IndexPublic, summary="Índice: ciudad y capas cargadas")
    def index(store: StoreDep, city: CityDep) -> IndexPublic:
        layers = _layers(store)
        return IndexPublic(
            city=CityPublic(
                name=city.name,
                ine_code=city.ine_code,
                population=city.population,
                population_year=city.population_year,
                population_source=city.population_source,
            ),
            layers=layers,
            notice=data_notice(layer.sources for layer in layers),
        )

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(_docs_page(f"cardiomapa — API de {city.name}", "/openapi.json"))

    @app.get("/api/health", summary="El servidor responde (sin tocar la base de datos)")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/layers", response_model=list[LayerPublic], summary="Capas y registros")
    def layers(store: StoreDep) -> list[LayerPublic]:
        return _layers(store)

    for segment, layer in PUBLIC_LAYERS.items():
        _add_layer_routes(app, segment, layer)

    return app


def app_from_environment() -> FastAPI:
    """The app for uvicorn's factory mode, with settings from the environment (``CARDIOMAPA_*``).

    Each worker process calls it once: ``cardiomapa serve --workers N`` does, and so may any
    process manager (``uvicorn --factory api.app:app_from_environment --workers N``). Run
    ``cardiomapa migrate`` first when several workers start on a database that is not up to date
    (they would otherwise upgrade it one at a time while the others wait).
    """
    return create_app(Settings())


def _docs_page(title: str, openapi_url: str) -> str:
    """Swagger UI from the vendored files, started by ``api-docs.js``: FastAPI's
    ``get_swagger_ui_html`` starts it with an inline script, which the pages' policy forbids."""
    return f"""<!DOCTYPE html>
<html lang="es">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css">
</head>
<body>
<p><a href="/datos">Datos abiertos: descargas y cómo añadir el servicio OGC en QGIS</a></p>
<div id="swagger-ui" data-openapi-url="{escape(openapi_url)}"></div>
<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/api-docs.js"></script>
</body>
</html>"""


def _add_layer_routes(app: FastAPI, segment: str, layer: str) -> None:
    @app.get(
        f"/api/{segment}",
        response_model=LayerCollection,
        summary=f"Capa {layer} (GeoJSON), con bbox y paginación",
        tags=["capas"],
        responses=ERRORS,
        name=f"list_{layer}",
    )
    def list_layer(
        request: Request,
        store: StoreDep,
        bbox: BboxQuery = None,
        limit: LimitQuery = 100,
        offset: OffsetQuery = 0,
    ) -> LayerCollection:
        frame = store.query_layer(layer, bbox=parse_bbox(bbox))
        page = frame.iloc[offset : offset + limit]
        return LayerCollection(
            features=[_layer_feature(record_from_row(page, i)) for i in range(len(page))],
            numberMatched=len(frame),
            numberReturned=len(page),
            links=page_links(request, offset=offset, limit=limit, matched=len(frame)),
        )

    @app.get(
        f"/api/{segment}/{{record_id}}",
        response_model=LayerFeature,
        summary=f"Un registro de la capa {layer}",
        tags=["capas"],
        responses=ERRORS,
        name=f"get_{layer}",
    )
    def get_record(
        record_id: Annotated[str, Path(max_length=200)], store: StoreDep
    ) -> LayerFeature:
        frame = store.query_layer(layer, ids=[record_id])
        if frame.empty:
            msg = f"No existe el registro {record_id!r} en la capa {layer}."
            raise NotFoundError(msg)
        return _layer_feature(record_from_row(frame, 0))


def _layer_feature(record: dict[str, Any]) -> LayerFeature:
    geometry = record.pop("geometry")
    return LayerFeature(
        id=record["id"],
        geometry=dict(mapping(geometry)),
        properties={k: plain(v) for k, v in record.items() if k != "id"},
    )


def _layers(store: Store) -> list[LayerPublic]:
    return [
        LayerPublic(name=s.name, title=s.title, count=s.count, sources=dict(s.sources))
        for s in store.summary()
    ]


__all__ = ["create_app"]
