"""The open-data page at /datos: every download and the OGC API, with working links, record
counts and the QGIS steps; and every HTML page the app serves links to it. On SpatiaLite and on
PostGIS. (Its accessibility in Chromium: tests/test_open_data_browser.py.)"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from api.app import create_app
from geo.core.layers import Layers
from geo.io.export import FILE_STEMS, PUBLISHED_LAYERS, ExportFormat
from geo.io.store import Store
from geo.services.tokens import issue_token
from geo.settings import Settings
from tests.test_portal import ORIGIN, Portal
from tests.weeks import ORDINARY

PRIVATE = {"cabinet_code": "CLAVE-4711", "key_holder": "Portería", "notes": None}
OPEN_DATA = "/datos"


@pytest.fixture
def store_url(db_url: str, tiny_layers: Layers) -> str:
    """The tiny fixture (3 verified devices) plus a pending one, which the page never counts."""
    with Store.open(db_url) as store:
        store.load(tiny_layers)
        record = store.device("dea-1")
        assert record is not None
        store.insert_device({**record, "id": "dea-pendiente", "verification": "pending"},
                            actor="test", private=PRIVATE)  # fmt: skip
    return db_url


@pytest.fixture
def client(store_url: str) -> Iterator[TestClient]:
    settings = Settings(database_url=store_url, clock_start=ORDINARY)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


class Links(HTMLParser):
    """Every ``<a href>`` of a page, with its text."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._open: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a" and (href := dict(attrs).get("href")):
            self.links.append((href, ""))
            self._open = []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            href, _ = self.links[-1]
            self.links[-1] = (href, " ".join("".join(self._open).split()))
            self._open = None


def links_of(html: str) -> list[tuple[str, str]]:
    parser = Links()
    parser.feed(html)
    return parser.links


def test_the_page_lists_every_download_the_ogc_api_and_how_to_add_it_in_qgis(
    client: TestClient,
) -> None:
    response = client.get(OPEN_DATA)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    links = dict(links_of(html))
    for name in PUBLISHED_LAYERS:
        for fmt in ExportFormat:
            url = f"/api/downloads/{name}.{fmt.value}"
            assert url in links, url
            assert f'download="{FILE_STEMS[name]}.{fmt.value}"' in html
    assert "Desfibriladores en GeoPackage" in links.values()
    # Record counts as published: the pending device is not counted.
    assert re.search(r'id="capa-defibrillators">Desfibriladores</h3>\s*<p>[^<]*</p>\s*<p>3 '
                     r"registros\.", html)  # fmt: skip
    assert re.search(r'id="capa-cohousing">.*?<p>1 registro\.', html, re.S)
    # The OGC API's address in full, ready to paste into QGIS, and the steps.
    assert '<code id="ogc-url">http://testserver/ogc</code>' in html
    assert links["http://testserver/ogc"] == "Ver la página de inicio del servicio"
    for step in ("Capa › Añadir capa › Añadir capa WFS / OGC API - Features…", "Nueva",
                 "Conectar", "Añadir"):  # fmt: skip
        assert step in html
    assert "ODbL" in html and "synthetic" in html
    assert "CLAVE-4711" not in html


def test_every_link_on_the_page_answers(client: TestClient) -> None:
    links = links_of(client.get(OPEN_DATA).text)
    assert len(links) >= len(PUBLISHED_LAYERS) * len(ExportFormat) + 3
    for href, _text in links:
        if href.startswith("#"):
            continue
        url = httpx.URL(href)
        assert url.host in ("", "testserver"), href  # nothing points off the server
        response = client.get(href)
        assert response.status_code == 200, (href, response.text[:200])
        assert response.content


def _html_pages(client: TestClient) -> dict[str, str]:
    """Every GET route of the app that answers HTML, path parameters filled with a device of
    the fixture (or a made-up code), as a visitor who is not signed in gets it."""
    pages: dict[str, str] = {}
    for route in iter_route_contexts(client.app.routes):  # type: ignore[attr-defined]
        if "GET" not in (route.methods or set()):
            continue
        path = re.sub(r"\{device_id(:path)?\}", "dea-1", route.path)
        path = path.replace("{code}", "codigo-inventado")
        if "{" in path:  # the API's records and OGC items: JSON, never HTML
            continue
        response = client.get(path)
        if response.headers.get("content-type", "").startswith("text/html"):
            pages[path] = response.text
    return pages


def _links_to_open_data(html: str) -> bool:
    """A plain link, or (the folium maps build their panel in script: the browser test sees the
    link itself) the maps' option."""
    if OPEN_DATA in [href for href, _ in links_of(html)]:
        return True
    options = re.search(r'<script type="application/json" id="cm-options">(.*?)</script>', html,
                        re.S)  # fmt: skip
    return options is not None and json.loads(options.group(1))["open_data_url"] == OPEN_DATA


def test_every_html_page_the_app_serves_links_to_the_open_data_page(
    client: TestClient, store_url: str
) -> None:
    pages = _html_pages(client)
    expected = {"/", OPEN_DATA, "/planificacion", "/gestion", "/entidades", "/dea/dea-1",
                "/dea/dea-1/hoja", "/docs"}  # fmt: skip
    assert expected <= set(pages), expected - set(pages)
    missing = [path for path, html in pages.items() if not _links_to_open_data(html)]
    assert missing == []
    # Signed in: the planners' map and the entity portal's pages.
    with Store.open(store_url) as store:
        token = issue_token(store, role="planner", label="test").secret
    signed = client.post("/planificacion/sesion", data={"token": token}, headers=ORIGIN,
                         follow_redirects=False)  # fmt: skip
    assert signed.status_code == 303, signed.text
    planners_map = client.get("/planificacion")
    assert planners_map.status_code == 200 and "Cobertura de desfibriladores" in planners_map.text
    assert _links_to_open_data(planners_map.text)
    with Store.open(store_url) as store:
        Portal(client, store).sign_in("ent-1")
    for path in ("/entidades", "/entidades/nuevo", "/entidades/contacto"):
        response = client.get(path)
        assert response.status_code == 200 and "Salir" in response.text, path
        assert _links_to_open_data(response.text), path
