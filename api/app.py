"""The web application: built by :func:`create_app` from explicit settings, never at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from api.schemas import CityPublic, ErrorPublic, IndexPublic, LayerPublic
from geo.city import CityProfile
from geo.errors import CardiomapaError, StorageError
from geo.settings import Settings
from geo.store import Store

#: Domain errors → HTTP status; anything not listed is a 400.
ERROR_STATUS: dict[type[CardiomapaError], int] = {StorageError: 503}

SYNTHETIC_SOURCE = "synthetic"


def create_app(settings: Settings) -> FastAPI:
    """Build the app for ``settings``; the database is opened (and migrated) at start-up."""
    city = settings.load_city()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store.open(settings.database_url)
        app.state.store = store
        try:
            yield
        finally:
            store.close()

    app = FastAPI(
        title="cardiomapa",
        summary=f"Desfibriladores y recursos de cuidados de {city.name}",
        lifespan=lifespan,
    )
    app.state.city = city

    @app.exception_handler(CardiomapaError)
    async def domain_error(request: Request, exc: CardiomapaError) -> JSONResponse:
        status = next((s for cls, s in ERROR_STATUS.items() if isinstance(exc, cls)), 400)
        body = ErrorPublic(code=exc.code, message=str(exc))
        return JSONResponse(body.model_dump(), status_code=status)

    @app.get("/", response_model=IndexPublic, summary="Índice: ciudad y capas cargadas")
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
            notice=_data_notice(layers),
        )

    @app.get("/api/layers", response_model=list[LayerPublic], summary="Capas y registros")
    def layers(store: StoreDep) -> list[LayerPublic]:
        return _layers(store)

    return app


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _city(request: Request) -> CityProfile:
    city: CityProfile = request.app.state.city
    return city


StoreDep = Annotated[Store, Depends(_store)]
CityDep = Annotated[CityProfile, Depends(_city)]


def _data_notice(layers: list[LayerPublic]) -> str:
    """Say plainly how much of what is served is synthetic sample data."""
    total = sum(layer.count for layer in layers)
    synthetic = sum(layer.sources.get(SYNTHETIC_SOURCE, 0) for layer in layers)
    if synthetic == 0:
        return "Ningún registro es sintético; la procedencia de cada uno figura en su campo source."
    return (
        f"{synthetic} de {total} registros son datos de muestra sintéticos (source = synthetic): "
        "no son el registro oficial de la ciudad. La procedencia de los demás figura en su campo "
        "source."
    )


def _layers(store: Store) -> list[LayerPublic]:
    return [
        LayerPublic(name=s.name, title=s.title, count=s.count, sources=dict(s.sources))
        for s in store.summary()
    ]
