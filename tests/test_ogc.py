"""OGC API – Features (Part 1: Core, GeoJSON) at /ogc: the shapes the standard requires, paging,
bbox, errors as the standard wants them, only public data; and GDAL's OAPIF driver (what QGIS
uses) reading a real server. On SpatiaLite and on PostGIS."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
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
from geo.core.layers import ACCESS_VALUES, Layers
from geo.io.export import PUBLISHED_LAYERS, published_fields
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


def test_conformance_declares_core_geojson_oas30_queryables_and_schemas(
    client: TestClient,
) -> None:
    document = _json(client.get("/ogc/conformance"))
    Conformance.model_validate(document)
    assert set(document["conformsTo"]) == set(CONFORMANCE)
    parts = {c.split("/spec/")[1].split("/")[0] + ":" + c.rsplit("/", 1)[1] for c in CONFORMANCE}
    assert parts == {
        "ogcapi-features-1:core", "ogcapi-features-1:geojson", "ogcapi-features-1:oas30",
        "ogcapi-features-3:queryables", "ogcapi-features-3:queryables-query-parameters",
        "ogcapi-features-5:schemas",
        "ogcapi-features-5:core-roles-features",
    }  # fmt: skip


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
    ceas = "/ogc/collections/ceas"
    for url in ("/ogc", "/ogc/conformance", "/ogc/collections", ceas, f"{ceas}/items/ceas-este",
                f"{ceas}/queryables", f"{ceas}/schema", f"{ceas}/feature-schema"):  # fmt: skip
        response = client.get(url, params={"crs": "EPSG:25830"})
        assert response.status_code == 400, url
        assert OgcException.model_validate(response.json()).code == "InvalidParameterValue"


# --- JSON Schema: queryables, schema, and the feature schema GDAL reads ------------------------

SCHEMA_JSON = "application/schema+json"
#: What the public may never read in a schema either: moderation, maintenance, private notes.
NEVER_PUBLISHED = {"verification", "battery_expiry", "pads_expiry", "cabinet_code", "key_holder",
                   "notes"}  # fmt: skip


def _schema(client: TestClient, url: str) -> dict[str, Any]:
    document: dict[str, Any] = _json(client.get(url), SCHEMA_JSON)
    jsonschema.Draft202012Validator.check_schema(document)
    return document


def _flat(feature: dict[str, Any]) -> dict[str, Any]:
    """A GeoJSON feature as Part 5 describes it: id, properties and geometry side by side."""
    return {"id": feature["id"], **feature["properties"], "geometry": feature["geometry"]}


def test_collections_link_their_queryables_and_schemas(client: TestClient) -> None:
    for name in PUBLISHED_LAYERS:
        links = _links(_json(client.get(f"/ogc/collections/{name}")))
        for rel, path in (
            ("http://www.opengis.net/def/rel/ogc/1.0/queryables", "queryables"),
            ("http://www.opengis.net/def/rel/ogc/1.0/schema", "schema"),
            ("describedBy", "feature-schema"),  # IANA describedby, as GDAL 3.6 spells it
        ):
            assert _path(links[rel]["href"]) == f"/ogc/collections/{name}/{path}"
            assert links[rel]["type"] == SCHEMA_JSON
            assert client.get(links[rel]["href"]).status_code == 200


def test_schema_types_every_published_field_and_the_items_validate_against_it(
    client: TestClient,
) -> None:
    for name in PUBLISHED_LAYERS:
        url = f"/ogc/collections/{name}/schema"
        document = _schema(client, url)
        assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert _path(document["$id"]) == url and document["type"] == "object"
        properties = document["properties"]
        fields = published_fields(name)
        assert list(properties) == [*(f.name for f in fields), "geometry"]
        assert not NEVER_PUBLISHED & set(properties)
        assert properties["id"]["x-ogc-role"] == "id"
        geometry = properties.pop("geometry")
        assert geometry["x-ogc-role"] == "primary-geometry"
        # Every feature served is valid against it (the GeoJSON geometry schemas aside: they
        # live at geojson.org, and the tests make no network call).
        check = jsonschema.Draft202012Validator(
            {**document, "properties": {**properties, "geometry": {"type": "object"}}},
            format_checker=jsonschema.FormatChecker(),
        )
        features = _page(client, f"/ogc/collections/{name}/items")["features"]
        assert features
        for feature in features:
            check.validate(_flat(feature))
        # And it would refuse a date that is not one, or a value not in an enum.
        bad = {**_flat(features[0]), "source": 7}
        assert not check.is_valid(bad)
    devices = _schema(client, "/ogc/collections/defibrillators/schema")["properties"]
    assert devices["installed_on"] == {"title": "installed_on", "type": ["string", "null"],
                                       "format": "date"}  # fmt: skip
    assert devices["access"] == {"title": "access", "type": "string",
                                 "enum": list(ACCESS_VALUES)}  # fmt: skip
    assert devices["status"]["type"] == "string" and "active" in devices["status"]["enum"]
    assert devices["indoor"]["type"] == ["boolean", "null"]
    assert devices["geometry"]["$ref"] == "https://geojson.org/schema/Point.json"
    assert devices["geometry"]["format"] == "geometry-point"
    cohousing = _schema(client, "/ogc/collections/cohousing/schema")["properties"]
    assert cohousing["dwellings"] == {"title": "dwellings", "type": ["integer", "null"],
                                      "minimum": 0}  # fmt: skip
    zones = _schema(client, "/ogc/collections/ceas/schema")["properties"]["geometry"]
    assert zones["format"] == "geometry-polygon-or-multipolygon" and len(zones["oneOf"]) == 2
    entities = _schema(client, "/ogc/collections/entities/schema")
    assert entities["properties"]["member_since"]["format"] == "date"
    assert set(entities["required"]) == {"id", "name", "kind", "source", "licence", "geometry"}


def test_queryables_are_the_properties_without_the_id_nor_tags(client: TestClient) -> None:
    for name in PUBLISHED_LAYERS:
        schema = _schema(client, f"/ogc/collections/{name}/schema")
        queryables = _schema(client, f"/ogc/collections/{name}/queryables")
        assert _path(queryables["$id"]) == f"/ogc/collections/{name}/queryables"
        expected = {k: v for k, v in schema["properties"].items() if k not in ("id", "tags")}
        assert queryables["properties"] == expected
        assert queryables["additionalProperties"] is False and "required" not in queryables


def test_feature_schema_is_a_geojson_feature_with_one_type_per_property(
    client: TestClient,
) -> None:
    document = _schema(client, "/ogc/collections/defibrillators/feature-schema")
    assert document["properties"]["type"]["enum"] == ["Feature"]
    properties = document["properties"]["properties"]["properties"]
    assert list(properties) == [f.name for f in published_fields("defibrillators")][1:]
    assert not NEVER_PUBLISHED & set(properties)
    assert properties["removed_on"] == {"type": "string", "format": "date", "nullable": True}
    assert all(isinstance(p["type"], str) for p in properties.values())  # GDAL 3.6 needs one


def _ids(client: TestClient, url: str, **params: str) -> list[str]:
    return sorted(f["id"] for f in _page(client, url, **params)["features"])


def test_each_queryable_filters_the_items_by_equality(client: TestClient) -> None:
    devices = "/ogc/collections/defibrillators/items"
    assert _ids(client, devices) == VERIFIED
    assert _ids(client, devices, installed_on="2024-05-01") == ["dea-1", "dea-2"]
    assert _ids(client, devices, installed_on="2024-05-01", name="nadie") == []
    everything = _page(client, devices)["features"]
    indoor = sorted(f["id"] for f in everything if f["properties"]["indoor"] is True)
    assert _ids(client, devices, indoor="true") == indoor
    assert _ids(client, devices, indoor="false") == sorted(set(VERIFIED) - set(indoor))
    assert _ids(client, devices, status="active") == VERIFIED
    assert _ids(client, devices, source="synthetic") == VERIFIED
    assert _ids(client, "/ogc/collections/cohousing/items", dwellings="31") == ["coh-1"]
    assert _ids(client, "/ogc/collections/entities/items", kind="association") == ["ent-2"]
    paged = _page(client, devices, installed_on="2024-05-01", limit=1)
    assert paged["numberMatched"] == 2
    after = {link["rel"]: link["href"] for link in paged["links"]}["next"]
    assert "installed_on=2024-05-01" in after  # the next page keeps the filter


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"installed_on": "mayo"}, "installed_on debe ser una fecha AAAA-MM-DD; llegó 'mayo'"),
        ({"installed_on": "2024-5-1"}, "una fecha AAAA-MM-DD"),
        ({"indoor": "sí"}, "indoor debe ser true o false"),
        ({"status": "roto"}, "status debe ser uno de: active, out_of_service, removed"),
        ({"verification": "pending"}, "Parámetro desconocido 'verification'"),
        ({"tags": "{}"}, "Parámetro desconocido 'tags'"),
        ({"id": "dea-1"}, "Parámetro desconocido 'id'"),
    ],
)  # fmt: skip
def test_bad_filters_are_400_naming_the_field(
    client: TestClient, params: dict[str, str], fragment: str
) -> None:
    response = client.get("/ogc/collections/defibrillators/items", params=params)
    assert response.status_code == 400, response.text
    body = OgcException.model_validate(response.json())
    assert body.code == "InvalidParameterValue" and fragment in body.description
    integer = client.get("/ogc/collections/cohousing/items", params={"dwellings": "muchas"})
    assert integer.status_code == 400 and "dwellings debe ser un número entero" in integer.text


def test_schemas_of_unknown_collections_are_404_in_the_ogc_format(client: TestClient) -> None:
    for tail in ("queryables", "schema", "feature-schema"):
        response = client.get(f"/ogc/collections/deas/{tail}")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json"
        body = OgcException.model_validate(response.json())
        assert body.code == "NotFound" and "las colecciones son: defibrillators" in body.description
        assert client.get(f"/ogc/collections/population/{tail}").status_code == 404


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


def _ogrinfo(service: str, layer: str) -> dict[str, str]:
    """The fields of ``layer`` as Debian's ``ogrinfo`` (GDAL 3.6) reads them through OAPIF, after
    checking it said nothing on stderr (no warning, no error)."""
    run = subprocess.run(
        ["/usr/bin/ogrinfo", "-so", service, layer], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr == "", run.stderr
    return dict(re.findall(r"^(\w+): (\S+) \(", run.stdout, re.M))


def test_gdal_3_6_reads_typed_fields_through_the_oapif_driver(server: str) -> None:
    """Every date of the tiny fixture's devices has ``removed_on`` null: GDAL 3.6 types a field
    from the first page of items unless a schema says otherwise, and would make it a string."""
    service = f"OAPIF:{server}/ogc"
    devices = _ogrinfo(service, "defibrillators")
    assert devices["installed_on"] == devices["check_date"] == devices["removed_on"] == "Date"
    assert devices["indoor"] == devices["is_mobile"] == "Integer(Boolean)"
    assert devices["name"] == devices["licence"] == "String"
    assert set(devices) == {"id", *(f.name for f in published_fields("defibrillators"))}
    entities = _ogrinfo(service, "entities")
    assert entities["member_since"] == "Date" and entities["people_served"] == "Integer"
    cohousing = _ogrinfo(service, "cohousing")  # residents: null in every record
    assert cohousing["dwellings"] == cohousing["residents"] == "Integer"
    assert _ogrinfo(service, "ceas")["centre_name"] == "String"
