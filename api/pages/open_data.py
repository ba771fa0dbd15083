"""The open-data page at ``/datos``: every download, the OGC API – Features endpoint and how to
add it in QGIS, with each layer's record count and licences.

Public and static in shape: it lists what :data:`geo.io.export.PUBLISHED_LAYERS` publishes, in
every :class:`~geo.io.export.ExportFormat`, at the API's download routes, so a link on this page
is a download that exists. Every page of the app links here (the shared footer of the people's
pages, the maps' panels, the planners' sign-in page and the API console).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from api import web
from api.deps import CityDep, SettingsDep, StoreDep
from api.routes.ogc import DESCRIPTIONS
from geo.core.layers import LAYERS_BY_NAME
from geo.core.outputs import data_notice
from geo.io.export import FILE_STEMS, PUBLISHED_LAYERS, ExportFormat, export_frame
from geo.io.store import Store
from geo.settings import Settings

router = APIRouter(include_in_schema=False)

#: Where the page is; the pages and maps link here.
OPEN_DATA_URL = "/datos"

#: Each format as a person reads it: name and what it is for.
FORMAT_LABELS: dict[ExportFormat, tuple[str, str]] = {
    ExportFormat.GEOJSON: ("GeoJSON", "para la web y la mayoría de programas SIG"),
    ExportFormat.CSV: ("CSV", "para hojas de cálculo: UTF-8, separado por comas, punto decimal"),
    ExportFormat.GPKG: ("GeoPackage", "para QGIS y ArcGIS: un archivo con fechas y tipos"),
}


@dataclass(frozen=True)
class Download:
    label: str
    purpose: str
    url: str
    file_name: str


@dataclass(frozen=True)
class PublishedLayer:
    """One layer as the page lists it."""

    name: str
    title: str
    description: str
    count: int
    licences: tuple[str, ...]
    downloads: tuple[Download, ...]


def published_layers(store: Store, settings: Settings) -> list[PublishedLayer]:
    """The published layers with what they hold now (records and licences, as downloaded)."""
    layers = []
    for name in PUBLISHED_LAYERS:
        frame = export_frame(store, name, public_only=True, data_licence=settings.data_licence)
        downloads = tuple(
            Download(
                label=FORMAT_LABELS[fmt][0],
                purpose=FORMAT_LABELS[fmt][1],
                url=f"/api/downloads/{name}.{fmt.value}",
                file_name=f"{FILE_STEMS[name]}.{fmt.value}",
            )
            for fmt in ExportFormat
        )
        layers.append(
            PublishedLayer(
                name=name,
                title=LAYERS_BY_NAME[name].title,
                description=DESCRIPTIONS.get(name, LAYERS_BY_NAME[name].title),
                count=len(frame),
                licences=tuple(sorted(set(frame["licence"]))),
                downloads=downloads,
            )
        )
    return layers


@router.get(OPEN_DATA_URL, response_class=HTMLResponse)
async def open_data_page(
    request: Request, store: StoreDep, settings: SettingsDep, city: CityDep
) -> HTMLResponse:
    """Datos abiertos: descargas, OGC API – Features y cómo añadirla en QGIS."""
    layers = await run_in_threadpool(published_layers, store, settings)
    notice = await run_in_threadpool(lambda: data_notice(s.sources for s in store.summary()))
    return web.render(
        "open_data.html.j2",
        title="Datos abiertos",
        city_name=city.name,
        area_name="Datos abiertos",
        home_url=OPEN_DATA_URL,
        nav=[],
        signed_in=False,
        notice=notice,
        flash=None,
        problem=None,
        layers=layers,
        ogc_url=str(request.url_for("ogc_landing")),
        data_licence=settings.data_licence,
    )
