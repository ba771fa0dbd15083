"""OGC API – Features, Part 1: Core, in GeoJSON: the published layers for QGIS, GDAL and others.

QGIS adds them with *Capa → Añadir capa → Añadir capa WFS / OGC API – Features* and the URL
``http://host:8000/ogc``. Read-only and public: the layers of
:data:`geo.io.export.PUBLISHED_LAYERS`, of the defibrillators only the verified ones, with the same
fields as the public download (never the private notes). Every collection is in CRS84
(longitude, latitude in degrees, EPSG:4326 order).

Conformance: ``core``, ``geojson`` and ``oas30`` (the OpenAPI document at ``/openapi.json``
describes these routes and their parameters); Part 3's ``queryables`` and Part 5's ``schemas``
and ``core-roles-features``: each collection describes its features as JSON Schema 2020-12
(``application/schema+json``) at ``…/schema`` (every property, ``x-ogc-role`` for the id and the
geometry) and ``…/queryables`` (the properties but the id and ``tags``; each is also a filter
of ``…/items``: ``?status=active&indoor=false`` keeps the features equal to every value),
typed from the fields the exports use (:func:`geo.io.export.published_fields`): dates
``format: date``, integers, booleans, enums.

GDAL up to 3.6 (Debian 12's, and so its QGIS LTR) reads neither: it types the fields from the
first page of items, so a date that is null on that page comes out as a string. What it does read
is a collection link ``rel="describedBy"`` of type ``application/schema+json`` to the schema of a
GeoJSON *Feature* (properties under ``properties``, as Part 1's schemas are written: OpenAPI 3.0
schema objects, ``nullable`` for optional fields). ``…/feature-schema`` serves that document, so
every date reaches QGIS as a date. Only JSON is served: ``f=json`` (or no ``f``) is
accepted, any other ``f`` (``html``…) is a 400 that says so, rather than JSON under an HTML label.

Errors here follow the OGC standard, not the rest of our API: an invalid or unknown query
parameter is a **400** (``/req/core/query-param-invalid`` and ``…-unknown``), where our other
routes answer 422, and the body is an OGC exception ``{code, description}``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Literal

import geopandas as gpd
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from shapely.geometry import mapping

from api.deps import CityDep, ClockDep, SettingsDep, StoreDep
from api.http import GeoJSONResponse, parse_bbox
from geo.city import CityProfile
from geo.clock import Clock
from geo.core.layers import LAYERS_BY_NAME, Field, Kind
from geo.core.outputs import plain
from geo.errors import InputError
from geo.io.export import PUBLISHED_LAYERS, export_frame, published_fields
from geo.io.store import Store
from geo.settings import Settings

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-5/1.0/conf/schemas",
    "http://www.opengis.net/spec/ogcapi-features-5/1.0/conf/core-roles-features",
)
JSON = "application/json"
GEOJSON = "application/geo+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
SCHEMA_JSON = "application/schema+json"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
REL_QUERYABLES = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
REL_SCHEMA = "http://www.opengis.net/def/rel/ogc/1.0/schema"
#: IANA's ``describedby``; relation types compare case-insensitively (RFC 8288), and GDAL up to
#: 3.6 looks for this spelling only.
REL_DESCRIBED_BY = "describedBy"
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
MAX_OFFSET = 10_000_000

#: Spanish descriptions of the published layers.
DESCRIPTIONS: Mapping[str, str] = {
    "defibrillators": (
        "Desfibriladores (DEA/DESA) verificados: ubicación, acceso, horario (sintaxis "
        "opening_hours de OpenStreetMap), estado, procedencia (source) y licencia."
    ),
    "ceas": "Zonas de los Centros de Acción Social (CEAS), con su centro.",
    "entities": "Entidades del clúster de cuidados: residencias, centros, asociaciones…",
    "cohousing": "Proyectos de cohousing y coliving: fase, viviendas y residentes.",
}


# --- the answers ------------------------------------------------------------------------------


class OgcLink(BaseModel):
    href: str
    rel: str
    type: str | None = None
    title: str | None = None


class OgcException(BaseModel):
    """An OGC API exception: a machine code and a Spanish description."""

    code: str
    description: str


class LandingPage(BaseModel):
    title: str
    description: str
    links: list[OgcLink]


class Conformance(BaseModel):
    conformsTo: list[str]


class SpatialExtent(BaseModel):
    bbox: list[list[float]]
    crs: str = CRS84


class Extent(BaseModel):
    """Spatial extent only: the layers have no time dimension, so ``temporal`` is left out."""

    spatial: SpatialExtent


class Collection(BaseModel):
    id: str
    title: str
    description: str
    links: list[OgcLink]
    extent: Extent
    itemType: Literal["feature"] = "feature"
    crs: list[str] = [CRS84]


class Collections(BaseModel):
    links: list[OgcLink]
    collections: list[Collection]


class OgcFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: str
    geometry: dict[str, Any]
    properties: dict[str, Any]
    links: list[OgcLink] | None = None


class OgcFeatureCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[OgcFeature]
    numberMatched: int
    numberReturned: int
    timeStamp: str
    links: list[OgcLink]


# --- errors -----------------------------------------------------------------------------------


class OgcError(Exception):
    """Answered as an :class:`OgcException` with ``status`` (never escapes this router)."""

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description


class OgcRoute(APIRoute):
    """A route whose :class:`OgcError` becomes an OGC exception body (other errors go on to the
    app's handlers)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except OgcError as exc:
                body = OgcException(code=exc.code, description=exc.description)
                return JSONResponse(body.model_dump(), status_code=exc.status)

        return handle


router = APIRouter(prefix="/ogc", tags=["OGC API – Features"], route_class=OgcRoute)

_EXCEPTION = {"$ref": "#/components/schemas/OgcException"}
#: Errors of the JSON routes (OgcException enters the OpenAPI components through ``model``).
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": OgcException, "description": "Parámetro no válido o desconocido."},
    404: {"model": OgcException, "description": "No existe."},
}
#: The same for the GeoJSON routes, whose errors are still plain JSON.
GEOJSON_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": answer["description"], "content": {JSON: {"schema": _EXCEPTION}}}
    for status, answer in ERRORS.items()
}

_F = {
    "name": "f",
    "in": "query",
    "required": False,
    "description": "Formato de la respuesta: solo json.",
    "schema": {"type": "string", "enum": ["json"]},
}
_ITEMS_PARAMETERS = [
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "style": "form",
        "explode": False,
        "description": f"Elementos por página (1 a {MAX_LIMIT}).",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    },
    {
        "name": "offset",
        "in": "query",
        "required": False,
        "description": "Elementos que se saltan (lo usan los enlaces next y prev).",
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
    },
    {
        "name": "bbox",
        "in": "query",
        "required": False,
        "style": "form",
        "explode": False,
        "description": (
            "minlon,minlat,maxlon,maxlat en CRS84 (grados), p. ej. -4.56,41.99,-4.51,42.03."
        ),
        "schema": {"type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "number"}},
    },
    _F,
]


def _params(request: Request, allowed: frozenset[str]) -> dict[str, str]:
    """The query parameters, each once; unknown ones and any ``f`` but json are a 400."""
    params = request.query_params
    unknown = sorted(set(params) - allowed)
    if unknown:
        accepted = ", ".join(sorted(allowed))
        msg = f"Parámetro desconocido {unknown[0]!r}; se admiten: {accepted}."
        raise OgcError(400, "InvalidParameterValue", msg)
    repeated = sorted(name for name in set(params) if len(params.getlist(name)) > 1)
    if repeated:
        msg = f"El parámetro {repeated[0]!r} aparece más de una vez."
        raise OgcError(400, "InvalidParameterValue", msg)
    if params.get("f", "json") != "json":
        msg = f"Formato f={params['f']!r} no disponible: esta API solo sirve JSON (f=json)."
        raise OgcError(400, "InvalidParameterValue", msg)
    return dict(params)


def _integer(text: str | None, name: str, default: int, low: int, high: int) -> int:
    if text is None:
        return default
    value = int(text) if text.isascii() and text.isdigit() and len(text) <= 12 else None
    if value is None or not low <= value <= high:
        msg = f"{name} debe ser un número entero entre {low} y {high}; llegó {text!r}."
        raise OgcError(400, "InvalidParameterValue", msg)
    return value


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    try:
        return parse_bbox(text)
    except InputError as exc:
        raise OgcError(400, "InvalidParameterValue", str(exc)) from None


def _schema_of(collection_id: str) -> str:
    if collection_id not in PUBLISHED_LAYERS:
        msg = (
            f"No existe la colección {collection_id!r}; las colecciones son: "
            f"{', '.join(PUBLISHED_LAYERS)}."
        )
        raise OgcError(404, "NotFound", msg)
    return collection_id


def _link(href: Any, rel: str, media_type: str, title: str | None = None) -> OgcLink:
    return OgcLink(href=str(href), rel=rel, type=media_type, title=title)


def _json(model: BaseModel) -> Response:
    return JSONResponse(model.model_dump(mode="json", exclude_none=True))


def _geojson(model: BaseModel) -> Response:
    return GeoJSONResponse(model.model_dump(mode="json", exclude_none=True))


class SchemaResponse(JSONResponse):
    """A JSON Schema, sent (and documented) as ``application/schema+json``."""

    media_type = SCHEMA_JSON


# --- JSON Schema of the collections -------------------------------------------------------------

#: GeoJSON geometry type(s) a layer's features carry, and OGC API Features Part 5's ``format``.
_GEOMETRY_FORMATS: Mapping[tuple[str, ...], str] = {
    ("Point",): "geometry-point",
    ("Polygon", "MultiPolygon"): "geometry-polygon-or-multipolygon",
}


def _value_schema(field: Field) -> dict[str, Any]:
    """The JSON Schema of one field's value, without nullability."""
    if field.kind is Kind.INTEGER:
        value: dict[str, Any] = {"type": "integer"}
        if field.minimum is not None:
            value["minimum"] = field.minimum
        return value
    if field.kind is Kind.BOOLEAN:
        return {"type": "boolean"}
    if field.kind is Kind.DATE:
        return {"type": "string", "format": "date"}
    if field.kind is Kind.TAGS:
        return {"type": "object", "additionalProperties": {"type": "string"}}
    if field.kind is Kind.CHOICE:
        return {"type": "string", "enum": list(field.choices)}
    return {"type": "string"}


def _nullable(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` that may also be null (JSON Schema 2020-12: a type list; enums list null)."""
    nullable = {**value, "type": [value["type"], "null"]}
    if "enum" in value:
        nullable["enum"] = [*value["enum"], None]
    return nullable


def _geometry_schema(name: str) -> dict[str, Any]:
    types = LAYERS_BY_NAME[name].geometry_types
    refs = [{"$ref": f"https://geojson.org/schema/{kind}.json"} for kind in types]
    geometry: dict[str, Any] = refs[0] if len(refs) == 1 else {"oneOf": refs}
    return {**geometry, "format": _GEOMETRY_FORMATS[types]}


def _queryable_fields(name: str) -> dict[str, Field]:
    """The fields of collection ``name`` that filter its items (Part 3 queryables): every
    published one but the id and the free ``tags``."""
    return {f.name: f for f in published_fields(name) if f.name != "id" and f.kind is not Kind.TAGS}


def _filter_value(field: Field, text: str) -> str:
    """``text`` as the items' property would read as text (the filter compares text), or a 400
    saying what the field accepts."""
    wrong = None
    if field.kind is Kind.INTEGER:
        if text.lstrip("-").isascii() and text.lstrip("-").isdigit() and len(text) <= 18:
            return str(int(text))
        wrong = "un número entero"
    elif field.kind is Kind.BOOLEAN:
        if text in ("true", "false"):
            return text
        wrong = "true o false"
    elif field.kind is Kind.DATE:
        try:
            if len(text) == 10:
                return dt.date.fromisoformat(text).isoformat()
        except ValueError:
            pass
        wrong = "una fecha AAAA-MM-DD"
    elif field.kind is Kind.CHOICE:
        if text in field.choices:
            return text
        wrong = "uno de: " + ", ".join(field.choices)
    else:
        return text
    msg = f"{field.name} debe ser {wrong}; llegó {text!r}."
    raise OgcError(400, "InvalidParameterValue", msg)


def _as_text(value: Any) -> str | None:
    value = plain(value)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _filtered(frame: gpd.GeoDataFrame, name: str, params: Mapping[str, str]) -> gpd.GeoDataFrame:
    """The features whose queryable properties equal every one given in ``params``."""
    fields = _queryable_fields(name)
    for key in sorted(set(params) & set(fields)):
        wanted = _filter_value(fields[key], params[key])
        keep = [_as_text(v) == wanted for v in frame[key]]
        frame = frame[keep]
    return frame


def collection_schema(name: str, url: str, *, queryables: bool = False) -> dict[str, Any]:
    """The features of collection ``name`` as JSON Schema 2020-12 (Part 5 ``schema``, or with
    ``queryables`` Part 3's queryables: no id, nothing required)."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in published_fields(name):
        if queryables and field.name not in _queryable_fields(name):
            continue
        value = _value_schema(field)
        if field.name == "id":
            value["x-ogc-role"] = "id"
        elif not field.required:
            value = _nullable(value)
        properties[field.name] = {"title": field.name, **value}
        if field.required and not queryables:
            required.append(field.name)
    properties["geometry"] = {
        "title": "geometry", "x-ogc-role": "primary-geometry", **_geometry_schema(name)
    }  # fmt: skip
    document: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": url,
        "type": "object",
        "title": LAYERS_BY_NAME[name].title,
        "description": DESCRIPTIONS.get(name, LAYERS_BY_NAME[name].title),
        "properties": properties,
    }
    if queryables:
        document["additionalProperties"] = False
    else:
        document["required"] = [*required, "geometry"]
    return document


def feature_schema(name: str) -> dict[str, Any]:
    """A GeoJSON Feature of collection ``name``, for GDAL (see the module's docstring).

    An OpenAPI 3.0 schema object, like the schemas of OGC API Features Part 1: one ``type`` per
    property (what GDAL 3.6 reads) and ``nullable`` for the optional ones.
    """
    fields = [f for f in published_fields(name) if f.name != "id"]
    properties: dict[str, Any] = {}
    for field in fields:
        value = _value_schema(field)
        if not field.required:
            value["nullable"] = True
        properties[field.name] = value
    geometry = {"type": "object", "format": _GEOMETRY_FORMATS[LAYERS_BY_NAME[name].geometry_types]}
    return {
        "title": LAYERS_BY_NAME[name].title,
        "type": "object",
        "required": ["type", "id", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": {"type": "string"},
            "geometry": geometry,
            "properties": {
                "type": "object",
                "required": [f.name for f in fields if f.required],
                "properties": properties,
            },
        },
    }


# --- routes -----------------------------------------------------------------------------------

_ONLY_F = frozenset({"f"})
_ITEMS_QUERY = frozenset({"f", "limit", "offset", "bbox"})


@router.get(
    "",
    name="ogc_landing",
    response_model=LandingPage,
    summary="OGC API – Features: página de inicio",
    responses=ERRORS,
    openapi_extra={"parameters": [_F]},
)
def landing(request: Request, city: CityDep) -> Response:
    _params(request, _ONLY_F)
    openapi = str(request.base_url) + (request.app.openapi_url or "/openapi.json").lstrip("/")
    docs = str(request.base_url) + "docs"
    return _json(
        LandingPage(
            title=f"cardiomapa — {city.name}",
            description=(
                f"Desfibriladores y recursos de cuidados de {city.name} como OGC API – "
                "Features (GeoJSON, CRS84). En QGIS: Capa → Añadir capa → Añadir capa WFS / "
                "OGC API – Features, con esta dirección."
            ),
            links=[
                _link(request.url_for("ogc_landing"), "self", JSON, "Esta página"),
                _link(openapi, "service-desc", OPENAPI, "Definición OpenAPI 3.0"),
                _link(docs, "service-doc", "text/html", "Documentación de la API"),
                _link(request.url_for("ogc_conformance"), "conformance", JSON, "Conformidad"),
                _link(request.url_for("ogc_collections"), "data", JSON, "Colecciones"),
            ],
        )
    )


@router.get(
    "/conformance",
    name="ogc_conformance",
    response_model=Conformance,
    summary="Clases de conformidad que cumple",
    responses=ERRORS,
    openapi_extra={"parameters": [_F]},
)
def conformance(request: Request) -> Response:
    _params(request, _ONLY_F)
    return _json(Conformance(conformsTo=list(CONFORMANCE)))


@router.get(
    "/collections",
    name="ogc_collections",
    response_model=Collections,
    summary="Colecciones: las capas publicadas",
    responses=ERRORS,
    openapi_extra={"parameters": [_F]},
)
def collections(
    request: Request, store: StoreDep, city: CityDep, settings: SettingsDep
) -> Response:
    _params(request, _ONLY_F)
    return _json(
        Collections(
            links=[_link(request.url_for("ogc_collections"), "self", JSON, "Colecciones")],
            collections=[
                _collection(request, store, city, settings, name) for name in PUBLISHED_LAYERS
            ],
        )
    )


@router.get(
    "/collections/{collectionId}",
    name="ogc_collection",
    response_model=Collection,
    summary="Una colección",
    responses=ERRORS,
    openapi_extra={"parameters": [_F]},
)
def collection(
    collectionId: str,  # the OGC standard's names (camelCase), as QGIS reads them
    request: Request,
    store: StoreDep,
    city: CityDep,
    settings: SettingsDep,
) -> Response:
    _params(request, _ONLY_F)
    name = _schema_of(collectionId)
    return _json(_collection(request, store, city, settings, name))


def _collection(
    request: Request, store: Store, city: CityProfile, settings: Settings, name: str
) -> Collection:
    frame = export_frame(store, name, public_only=True, data_licence=settings.data_licence)
    bounds = frame.total_bounds if len(frame) else city.boundary.bounds
    here = request.url_for("ogc_collection", collectionId=name)
    items = request.url_for("ogc_items", collectionId=name)
    return Collection(
        id=name,
        title=LAYERS_BY_NAME[name].title,
        description=DESCRIPTIONS.get(name, LAYERS_BY_NAME[name].title),
        links=[
            _link(here, "self", JSON, "Esta colección"),
            _link(items, "items", GEOJSON, "Elementos (GeoJSON)"),
            _link(
                request.url_for("ogc_queryables", collectionId=name),
                REL_QUERYABLES,
                SCHEMA_JSON,
                "Propiedades consultables (JSON Schema)",
            ),
            _link(
                request.url_for("ogc_schema", collectionId=name),
                REL_SCHEMA,
                SCHEMA_JSON,
                "Esquema de los elementos (JSON Schema)",
            ),
            _link(
                request.url_for("ogc_feature_schema", collectionId=name),
                REL_DESCRIBED_BY,
                SCHEMA_JSON,
                "Esquema de un elemento GeoJSON",
            ),
        ],
        extent=Extent(spatial=SpatialExtent(bbox=[[round(float(b), 7) for b in bounds]])),
    )


_SCHEMA_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"content": {SCHEMA_JSON: {"schema": {"type": "object"}}}},
    **GEOJSON_ERRORS,
}


@router.get(
    "/collections/{collectionId}/queryables",
    name="ogc_queryables",
    summary="Propiedades consultables de una colección (JSON Schema)",
    response_class=SchemaResponse,
    responses=_SCHEMA_ANSWER,
    openapi_extra={"parameters": [_F]},
)
def queryables(collectionId: str, request: Request) -> Response:
    _params(request, _ONLY_F)
    name = _schema_of(collectionId)
    url = str(request.url_for("ogc_queryables", collectionId=name))
    return SchemaResponse(collection_schema(name, url, queryables=True))


@router.get(
    "/collections/{collectionId}/schema",
    name="ogc_schema",
    summary="Esquema de los elementos de una colección (JSON Schema)",
    response_class=SchemaResponse,
    responses=_SCHEMA_ANSWER,
    openapi_extra={"parameters": [_F]},
)
def schema(collectionId: str, request: Request) -> Response:
    _params(request, _ONLY_F)
    name = _schema_of(collectionId)
    url = str(request.url_for("ogc_schema", collectionId=name))
    return SchemaResponse(collection_schema(name, url))


@router.get(
    "/collections/{collectionId}/feature-schema",
    name="ogc_feature_schema",
    summary="Esquema de un elemento GeoJSON de una colección (para GDAL y QGIS)",
    response_class=SchemaResponse,
    responses=_SCHEMA_ANSWER,
    openapi_extra={"parameters": [_F]},
)
def feature_schema_route(collectionId: str, request: Request) -> Response:
    _params(request, _ONLY_F)
    return SchemaResponse(feature_schema(_schema_of(collectionId)))


@router.get(
    "/collections/{collectionId}/items",
    name="ogc_items",
    response_model=OgcFeatureCollection,
    summary="Elementos de una colección (GeoJSON), con bbox, filtros y paginación",
    description=(
        "Además de bbox, limit y offset, cada propiedad consultable de la colección (ver "
        "/collections/{collectionId}/queryables) filtra por igualdad: p. ej. "
        "?status=active&indoor=false. Fechas AAAA-MM-DD; booleanos true o false."
    ),
    response_class=GeoJSONResponse,
    responses=GEOJSON_ERRORS,
    openapi_extra={"parameters": _ITEMS_PARAMETERS},
)
def items(
    collectionId: str,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    queryable = _queryable_fields(collectionId) if collectionId in PUBLISHED_LAYERS else {}
    params = _params(request, _ITEMS_QUERY | frozenset(queryable))
    name = _schema_of(collectionId)
    limit = _integer(params.get("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _integer(params.get("offset"), "offset", 0, 0, MAX_OFFSET)
    bbox = _bbox(params.get("bbox"))
    frame = export_frame(
        store, name, public_only=True, data_licence=settings.data_licence, bbox=bbox
    )
    frame = _filtered(frame, name, params)
    page = frame.iloc[offset : offset + limit]
    matched = len(frame)
    url = request.url
    links = [
        _link(url, "self", GEOJSON, "Esta página"),
        _link(request.url_for("ogc_collection", collectionId=name), "collection", JSON),
    ]
    if offset + limit < matched:
        after = url.include_query_params(offset=offset + limit, limit=limit)
        links.append(_link(after, "next", GEOJSON, "Página siguiente"))
    if offset > 0:
        before = url.include_query_params(offset=max(0, offset - limit), limit=limit)
        links.append(_link(before, "prev", GEOJSON, "Página anterior"))
    return _geojson(
        OgcFeatureCollection(
            features=[_feature(record) for record in _records(page)],
            numberMatched=matched,
            numberReturned=len(page),
            timeStamp=_timestamp(clock),
            links=links,
        )
    )


@router.get(
    "/collections/{collectionId}/items/{featureId}",
    name="ogc_item",
    response_model=OgcFeature,
    summary="Un elemento (GeoJSON Feature)",
    response_class=GeoJSONResponse,
    responses=GEOJSON_ERRORS,
    openapi_extra={"parameters": [_F]},
)
def item(
    collectionId: str,
    featureId: str,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
) -> Response:
    _params(request, _ONLY_F)
    name = _schema_of(collectionId)
    missing = OgcError(404, "NotFound", f"No existe el elemento {featureId!r} en {name}.")
    if "\x00" in featureId or len(featureId) > 500:  # no id can hold them; the database refuses
        raise missing
    frame = export_frame(
        store, name, public_only=True, data_licence=settings.data_licence, ids=[featureId]
    )
    if frame.empty:
        raise missing
    feature = _feature(_records(frame)[0])
    feature.links = [
        _link(request.url_for("ogc_item", collectionId=name, featureId=featureId), "self",
              GEOJSON),
        _link(request.url_for("ogc_collection", collectionId=name), "collection", JSON),
    ]  # fmt: skip
    return _geojson(feature)


def _records(frame: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    columns = [c for c in frame.columns if c != "geometry"]
    rows = frame[columns].to_dict(orient="records")
    return [{**row, "geometry": geom} for row, geom in zip(rows, frame.geometry, strict=True)]


def _feature(record: dict[str, Any]) -> OgcFeature:
    geometry = record.pop("geometry")
    return OgcFeature(
        id=str(record["id"]),
        geometry=dict(mapping(geometry)),
        properties={k: plain(v) for k, v in record.items() if k != "id"},
    )


def _timestamp(clock: Clock) -> str:
    """The clock's instant in UTC to the second, ``…Z`` (OGC API Features' ``timeStamp``)."""
    now = clock.now().astimezone(dt.UTC).replace(microsecond=0)
    return now.isoformat().replace("+00:00", "Z")


__all__ = ["router"]
