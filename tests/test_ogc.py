"""OGC API – Features (Part 1: Core, GeoJSON) at /ogc: the shapes the standard requires, paging,
bbox, errors as the standard wants them, only public data; and GDAL's OAPIF driver (what QGIS
uses) reading a real server. On SpatiaLite and on PostGIS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyogrio
import pytest
from fastapi.testclient import TestClient
from servers import Server
from shapely.geometry import Point

from api.app import create_app
from api.routes.ogc import (
    CONFORMANCE,
    CRS84,
    Collection,
    Collections,
    Conformance,
    LandingPage,
    OgcException,
    OgcFeature,
    OgcFeatureCollection,
)
from geo.core.layers import Layers
from geo.io.export import PUBLISHED_LAYERS
from geo.io.store import Store
from geo.settings import Settings

VERIFIED = ["dea-1", "dea-2", "dea-3"]
PENDING = "dea-pendiente"
PRIVATE = {"cabinet_code": "CLAVE-4711", "key_holder": "Portería", "notes": None}


@pytest.fixture
def loaded_url(db_url: str, tiny_layers: Layers) -> str:
    """The tiny fixture plus a pending device, away from the others, with private notes."""
    with Store.open(db_url) as store:
        store.load(tiny_layers)
        record = store.device("dea-1")
        assert record is not None
        pending = {**record, "id": PENDING, "verification": "pending",
                   "geometry": Point(-4.505, 42.03)}  # fmt: skip
        store.insert_device(pending, actor="test", private=PRIVATE)
    return db_url


@pytest.fixture
def client(loaded_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=loaded_url))) as test_client:
        yield test_client


def _json(response: httpx.Response, media_type: str = "application/json") -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media_type
    assert response.headers["x-content-type-options"] == "nosniff"  # security headers apply
    return response.json()


def _links(document: dict[str, Any]) -> dict[str, dict[str, str]]:
    links = document["links"]
    for link in links:
        assert {"href", "rel", "type"} <= set(link), link
    return {link["rel"]: link for link in links}


def _path(href: str) -> str:
    url = httpx.URL(href)
    return url.raw_path.decode("ascii")


# --- landing page, conformance, collections ---------------------------------------------------


def test_landing_page_links_to_everything_a_client_needs(client: TestClient) -> None:
    document = _json(client.get("/ogc"))
    LandingPage.model_validate(document)
    assert document["title"] and document["description"]
    links = _links(document)
    assert links["self"]["type"] == "application/json" and _path(links["self"]["href"]) == "/ogc"
    assert _path(links["conformance"]["href"]) == "/ogc/conformance"
    assert _path(links["data"]["href"]) == "/ogc/collections"
    assert _path(links["service-desc"]["href"]) == "/openapi.json"
    assert links["service-desc"]["type"].startswith("application/vnd.oai.openapi+json")
    described = client.get(links["service-desc"]["href"]).json()["paths"]
    assert "/ogc/collections/{collectionId}/items" in described
    assert _json(client.get("/ogc", params={"f": "json"})) == document


def test_conformance_declares_core_geojson_and_oas30(client: TestClient) -> None:
    document = _json(client.get("/ogc/conformance"))
    Conformance.model_validate(document)
    assert set(document["conformsTo"]) == set(CONFORMANCE)
    assert {c.rsplit("/", 1)[1] for c in CONFORMANCE} == {"core", "geojson", "oas30"}


def test_collections_describe_each_published_layer_with_its_extent(client: TestClient) -> None:
    document = _json(client.get("/ogc/collections"))
    Collections.model_validate(document)
    assert _path(_links(document)["self"]["href"]) == "/ogc/collections"
    collections = {c["id"]: c for c in document["collections"]}
    assert list(collections) == list(PUBLISHED_LAYERS)
    for name, collection in collections.items():
        assert collection["title"] and collection["description"]
        assert collection["itemType"] == "feature" and collection["crs"] == [CRS84]
        links = _links(collection)
        assert _path(links["items"]["href"]) == f"/ogc/collections/{name}/items"
        assert links["items"]["type"] == "application/geo+json"
        spatial = collection["extent"]["spatial"]
        assert spatial["crs"] == CRS84
        [bbox] = spatial["bbox"]
        assert len(bbox) == 4 and bbox[0] <= bbox[2] and bbox[1] <= bbox[3]
        assert "temporal" not in collection["extent"]  # no time dimension
        one = _json(client.get(f"/ogc/collections/{name}"))
        Collection.model_validate(one)
        assert one == collection
    # The extent is the verified devices' one: the pending device (at -4.505, 42.03) is not in it.
    assert collections["defibrillators"]["extent"]["spatial"]["bbox"] == [
        [-4.535, 42.0096, -4.518, 42.015]
    ]


# --- items --------------------------------------------------------------------------------------


def _page(client: TestClient, url: str, **params: Any) -> dict[str, Any]:
    answer = client.get(url, params=params or None)
    document: dict[str, Any] = _json(answer, "application/geo+json")
    OgcFeatureCollection.model_validate(document)
    assert document["numberReturned"] == len(document["features"])
    assert document["timeStamp"].endswith("Z")
    return document


def test_paging_through_next_links_returns_every_feature_once(client: TestClient) -> None:
    for name, limit in (("defibrillators", 1), ("defibrillators", 2), ("entities", 1)):
        document = _page(client, f"/ogc/collections/{name}/items", limit=limit)
        seen, pages = [], [document]
        while True:
            assert document["numberReturned"] <= limit
            seen += [feature["id"] for feature in document["features"]]
            links = _links(document)
            assert links["self"]["type"] == "application/geo+json"
            if "next" not in links:
                break
            assert links["next"]["type"] == "application/geo+json"
            document = _page(client, links["next"]["href"])
            pages.append(document)
        expected = VERIFIED if name == "defibrillators" else ["ent-1", "ent-2"]
        assert seen == expected
        assert {page["numberMatched"] for page in pages} == {len(expected)}
        assert "prev" not in _links(pages[0])
        if len(pages) > 1:
            back = _page(client, _links(pages[-1])["prev"]["href"])
            assert back["features"] == pages[-2]["features"]


def test_default_page_and_public_fields_only(client: TestClient) -> None:
    document = _page(client, "/ogc/collections/defibrillators/items")
    assert document["numberMatched"] == 3 and document["numberReturned"] == 3
    assert [f["id"] for f in document["features"]] == VERIFIED
    properties = document["features"][0]["properties"]
    assert properties["name"] and properties["licence"].startswith("CC0-1.0")
    assert not {"verification", "battery_expiry", "pads_expiry", "emergency"} & set(properties)
    everything = client.get("/ogc/collections/defibrillators/items", params={"limit": 10000})
    assert PENDING not in everything.text and "CLAVE-4711" not in everything.text


def test_bbox_returns_what_it_covers_and_nothing_far(client: TestClient) -> None:
    url = "/ogc/collections/defibrillators/items"
    around_dea_3 = _page(client, url, bbox="-4.519,42.014,-4.517,42.016")
    assert [f["id"] for f in around_dea_3["features"]] == ["dea-3"]
    assert around_dea_3["numberMatched"] == 1
    around_pending = _page(client, url, bbox="-4.506,42.029,-4.504,42.031")
    assert around_pending["features"] == [] and around_pending["numberMatched"] == 0
    west_zone = _page(client, "/ogc/collections/ceas/items", bbox="-4.544,42.001,-4.540,42.002")
    assert [f["id"] for f in west_zone["features"]] == ["ceas-oeste"]
    assert west_zone["features"][0]["geometry"]["type"] == "MultiPolygon"


def test_one_feature_and_what_is_not_there(client: TestClient) -> None:
    response = client.get("/ogc/collections/defibrillators/items/dea-2")
    document = _json(response, "application/geo+json")
    OgcFeature.model_validate(document)
    assert document["id"] == "dea-2" and document["geometry"]["coordinates"] == [-4.5288, 42.0096]
    links = _links(document)
    assert _path(links["self"]["href"]) == "/ogc/collections/defibrillators/items/dea-2"
    assert _path(links["collection"]["href"]) == "/ogc/collections/defibrillators"
    missing = [
        "/ogc/collections/defibrillators/items/nada",
        f"/ogc/collections/defibrillators/items/{PENDING}",  # not verified: not public
        "/ogc/collections/population",  # not published
        "/ogc/collections/population/items",
        "/ogc/collections/deas/items/dea-1",
    ]
    for url in missing:
        answer = client.get(url)
        assert answer.status_code == 404, url
        assert answer.headers["content-type"] == "application/json"
        body = OgcException.model_validate(answer.json())
        assert body.code == "NotFound" and "No existe" in body.description


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"bbox": "-4.6,41.9,-4.5"}, "bbox debe ser minlon,minlat,maxlon,maxlat"),
        ({"bbox": "a,b,c,d"}, "bbox debe ser"),
        ({"bbox": "-4.5,41.9,-4.6,42.1"}, "mínimos mayores que los máximos"),
        ({"bbox": "-4.6,91,-4.5,92"}, "fuera de rango"),
        ({"limit": "0"}, "limit debe ser un número entero entre 1 y 10000"),
        ({"limit": "10001"}, "entre 1 y 10000"),
        ({"limit": "diez"}, "limit debe ser"),
        ({"offset": "-1"}, "offset debe ser"),
        ({"limite": "5"}, "Parámetro desconocido 'limite'"),
        ({"f": "html"}, "solo sirve JSON"),
    ],
)
def test_invalid_parameters_are_400_with_an_ogc_exception(
    client: TestClient, params: dict[str, str], fragment: str
) -> None:
    # OGC API – Features requires 400 here (our other routes answer 422).
    response = client.get("/ogc/collections/defibrillators/items", params=params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    body = OgcException.model_validate(response.json())
    assert body.code == "InvalidParameterValue" and fragment in body.description
    assert set(response.json()) == {"code", "description"}


def test_every_ogc_route_refuses_unknown_parameters(client: TestClient) -> None:
    for url in ("/ogc", "/ogc/conformance", "/ogc/collections", "/ogc/collections/ceas",
                "/ogc/collections/ceas/items/ceas-este"):  # fmt: skip
        response = client.get(url, params={"crs": "EPSG:25830"})
        assert response.status_code == 400, url
        assert OgcException.model_validate(response.json()).code == "InvalidParameterValue"


# --- GDAL's OAPIF driver, as QGIS reads the service ---------------------------------------------


@pytest.fixture
def server(loaded_url: str, tmp_path: Path) -> Iterator[str]:
    running = Server(loaded_url, tmp_path / "server.log")
    yield running.base
    running.stop()


def test_gdal_reads_every_collection_through_the_oapif_driver(server: str) -> None:
    assert "OAPIF" in pyogrio.list_drivers()
    service = f"OAPIF:{server}/ogc"
    assert [list(layer) for layer in pyogrio.list_layers(service)] == [
        ["defibrillators", "Point"], ["ceas", "MultiPolygon"], ["entities", "Point"],
        ["cohousing", "Point"],
    ]  # fmt: skip
    devices = pyogrio.read_dataframe(service, layer="defibrillators")
    assert sorted(devices["id"]) == VERIFIED
    assert devices.crs == "EPSG:4326"
    dea_2 = devices.set_index("id").loc["dea-2"]
    assert (dea_2.geometry.x, dea_2.geometry.y) == (-4.5288, 42.0096)
    assert dea_2["licence"].startswith("CC0-1.0")
    # One feature per page: GDAL follows the next links to the end.
    paged = pyogrio.read_dataframe(service, layer="defibrillators", PAGE_SIZE=1)
    assert sorted(paged["id"]) == VERIFIED
    # bbox goes to the server as the bbox parameter.
    around_dea_3 = (-4.519, 42.014, -4.517, 42.016)
    near = pyogrio.read_dataframe(service, layer="defibrillators", bbox=around_dea_3)
    assert list(near["id"]) == ["dea-3"]
    zones = pyogrio.read_dataframe(service, layer="ceas")
    assert sorted(zones["id"]) == ["ceas-este", "ceas-oeste"]
