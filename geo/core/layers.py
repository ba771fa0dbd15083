"""Layer schemas, and validating GeoJSON layers into GeoDataFrames (files are read by geo.io.files).

Each layer is one GeoJSON FeatureCollection in EPSG:4326 (RFC 7946), one feature per record. The
schemas below are the single definition of what a layer holds: the storage models, the loader and
``data/README.md`` follow them.

Validation collects every problem in every file before raising once, so a user fixes a broken file
in one pass. Each problem names the file, the feature index, the field, what was wrong and what is
accepted.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import geopandas as gpd
import opening_hours
import pandas as pd
import shapely
from shapely.geometry import MultiPolygon, Point, shape
from shapely.geometry.base import BaseGeometry

from geo.city import CityProfile
from geo.core.text import describe
from geo.errors import InputError, Problem

# The package's type stub omits its exception class.
OpeningHoursParserError: type[Exception] = opening_hours.ParserError  # type: ignore[attr-defined]

WGS84 = "EPSG:4326"
_ACCEPTED_CRS_NAMES = frozenset(
    {"urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:OGC::CRS84", "EPSG:4326",
     "urn:ogc:def:crs:EPSG::4326"}
)  # fmt: skip


class Kind(StrEnum):
    """The value kinds a layer field can hold."""

    TEXT = "text"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    DATE = "date"
    CHOICE = "choice"
    OPENING_HOURS = "opening_hours"
    TAGS = "tags"


@dataclass(frozen=True)
class Field:
    """One property of a layer's features.

    ``required`` fields must be present and not null; optional ones may be absent or null and then
    take ``default``.
    """

    name: str
    kind: Kind
    description: str
    required: bool = False
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    default: Any = None


@dataclass(frozen=True)
class LayerSchema:
    """What one layer file holds."""

    name: str
    file_name: str
    title: str
    geometry_types: tuple[str, ...]
    fields: tuple[Field, ...]

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


ACCESS_VALUES = ("yes", "permissive", "customers", "permit", "private", "no", "unknown")
DEVICE_STATUS_VALUES = ("active", "out_of_service", "removed")
VERIFICATION_VALUES = ("pending", "verified", "rejected")
ENTITY_KIND_VALUES = (
    "residence", "day_centre", "association", "foundation", "clinic", "health_centre",
    "hospital", "pharmacy", "school", "sports_centre", "public_building", "social_centre",
    "company", "other",
)  # fmt: skip
COHOUSING_STATUS_VALUES = ("idea", "planned", "building", "active")

_ID = Field("id", Kind.TEXT, "Stable identifier, unique within the layer.", required=True)
_NAME = Field("name", Kind.TEXT, "Name shown to users.", required=True)
_SOURCE = Field(
    "source",
    Kind.TEXT,
    "Where the record comes from: `synthetic` for generated sample data, else the real origin.",
    required=True,
)
_ADDRESS = Field("address", Kind.TEXT, "Postal address.")

DEFIBRILLATORS = LayerSchema(
    name="defibrillators",
    file_name="defibrillators.geojson",
    title="Desfibriladores",
    geometry_types=("Point",),
    fields=(
        _ID,
        _NAME,
        Field("location_text", Kind.TEXT, "Where exactly: 'hall, next to reception'."),
        _ADDRESS,
        Field(
            "access",
            Kind.CHOICE,
            "Who may use it (OSM `access` vocabulary).",
            required=True,
            choices=ACCESS_VALUES,
        ),
        Field(
            "opening_hours",
            Kind.OPENING_HOURS,
            "When it can be reached, OSM opening_hours syntax (`24/7`, `Mo-Fr 08:00-15:00`).",
        ),
        Field("indoor", Kind.BOOLEAN, "Inside a building."),
        Field("level", Kind.TEXT, "Floor, OSM `level` (`0`, `-1`, `1;2`)."),
        Field("operator_entity_id", Kind.TEXT, "Id of the entity (entities layer) that holds it."),
        Field("phone", Kind.TEXT, "Contact phone."),
        Field(
            "status",
            Kind.CHOICE,
            "Operational state.",
            required=True,
            choices=DEVICE_STATUS_VALUES,
        ),
        Field(
            "verification",
            Kind.CHOICE,
            "Moderation state of the record.",
            required=True,
            choices=VERIFICATION_VALUES,
        ),
        Field("installed_on", Kind.DATE, "Date installed (YYYY-MM-DD)."),
        Field("removed_on", Kind.DATE, "Date removed (YYYY-MM-DD), if it was."),
        Field(
            "check_date",
            Kind.DATE,
            "Last time someone checked it was there and working: not after the city's today, "
            "not before `installed_on`.",
        ),
        Field(
            "battery_expiry",
            Kind.DATE,
            "Battery expiry date (one already past is accepted with a warning: maintenance "
            "overdue).",
        ),
        Field(
            "pads_expiry",
            Kind.DATE,
            "Electrode pads expiry date (one already past is accepted with a warning: maintenance "
            "overdue).",
        ),
        Field("is_mobile", Kind.BOOLEAN, "Carried around (patrol car, event).", default=False),
        _SOURCE,
        Field("source_id", Kind.TEXT, "Identifier of the record in its source."),
        Field(
            "tags",
            Kind.TAGS,
            "Any other attribute an import brought (e.g. every OSM tag), kept verbatim.",
            default={},
        ),
    ),
)

CEAS = LayerSchema(
    name="ceas",
    file_name="ceas.geojson",
    title="Zonas CEAS",
    geometry_types=("Polygon", "MultiPolygon"),
    fields=(
        _ID,
        _NAME,
        Field("centre_name", Kind.TEXT, "Name of the zone's social-action centre (CEAS)."),
        Field("centre_address", Kind.TEXT, "Address of the centre."),
        _SOURCE,
    ),
)

ENTITIES = LayerSchema(
    name="entities",
    file_name="entities.geojson",
    title="Entidades del clúster",
    geometry_types=("Point",),
    fields=(
        _ID,
        _NAME,
        Field("kind", Kind.CHOICE, "Kind of entity.", required=True, choices=ENTITY_KIND_VALUES),
        _ADDRESS,
        Field("member_since", Kind.DATE, "Date it joined the care cluster."),
        Field("people_served", Kind.INTEGER, "People it serves, if known.", minimum=0),
        _SOURCE,
    ),
)

COHOUSING = LayerSchema(
    name="cohousing",
    file_name="cohousing.geojson",
    title="Cohousing y coliving",
    geometry_types=("Point",),
    fields=(
        _ID,
        _NAME,
        Field(
            "status",
            Kind.CHOICE,
            "Stage of the project.",
            required=True,
            choices=COHOUSING_STATUS_VALUES,
        ),
        _ADDRESS,
        Field("dwellings", Kind.INTEGER, "Number of dwellings.", minimum=0),
        Field("residents", Kind.INTEGER, "Number of residents (planned or actual).", minimum=0),
        _SOURCE,
    ),
)

POPULATION = LayerSchema(
    name="population",
    file_name="population.geojson",
    title="Población",
    geometry_types=("Point",),
    fields=(
        _ID,
        Field("residents", Kind.INTEGER, "People living in the unit.", required=True, minimum=0),
        Field(
            "residents_65_plus",
            Kind.INTEGER,
            "Of them, aged 65 or more.",
            required=True,
            minimum=0,
        ),
        Field("section_code", Kind.TEXT, "Census section (INE CUSEC, 10 digits) it belongs to."),
        _SOURCE,
    ),
)

LAYERS: tuple[LayerSchema, ...] = (CEAS, ENTITIES, DEFIBRILLATORS, COHOUSING, POPULATION)
LAYERS_BY_NAME: Mapping[str, LayerSchema] = {s.name: s for s in LAYERS}


@dataclass(frozen=True)
class Layers:
    """The five layers of a city, each a GeoDataFrame in EPSG:4326 with the schema's columns."""

    frames: Mapping[str, gpd.GeoDataFrame] = field(default_factory=dict)

    def __getitem__(self, name: str) -> gpd.GeoDataFrame:
        return self.frames[name]

    def counts(self) -> dict[str, int]:
        return {name: len(frame) for name, frame in self.frames.items()}


# --- value checks -----------------------------------------------------------------------------


class _Invalid(Exception):  # an internal signal: never escapes this module
    def __init__(self, message: str, code: str = "invalid_value") -> None:
        self.message = message
        self.code = code


def _check_text(value: Any, spec: Field) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"se esperaba texto y llegó {describe(value)}.")
    if spec.required and not value.strip():
        raise _Invalid("no puede estar vacío.", "missing_field")
    return value


def _check_integer(value: Any, spec: Field) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"se esperaba un número entero y llegó {describe(value)}.")
    if spec.minimum is not None and value < spec.minimum:
        raise _Invalid(f"el valor {value} es menor que el mínimo admitido ({spec.minimum}).")
    return value


def _check_boolean(value: Any, spec: Field) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"se esperaba true o false y llegó {describe(value)}.")
    return value


def _check_date(value: Any, spec: Field) -> dt.date:
    if not isinstance(value, str):
        raise _Invalid(
            f"se esperaba una fecha AAAA-MM-DD y llegó {describe(value)}.", "invalid_date"
        )
    try:
        return dt.date.fromisoformat(value) if len(value) == 10 else _bad_date(value)
    except ValueError:
        return _bad_date(value)


def _bad_date(value: str) -> dt.date:
    raise _Invalid(
        f"fecha no válida {value!r}; se admite AAAA-MM-DD, p. ej. 2026-03-01.", "invalid_date"
    )


def _check_choice(value: Any, spec: Field) -> str:
    if value not in spec.choices:
        raise _Invalid(
            f"valor {value!r} no admitido; se admite uno de: {', '.join(spec.choices)}.",
            "invalid_choice",
        )
    return str(value)


def _check_opening_hours(value: Any, spec: Field) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"se esperaba un horario en texto y llegó {describe(value)}.")
    try:
        opening_hours.OpeningHours(value)
    except OpeningHoursParserError:
        raise _Invalid(
            f"horario {value!r} no válido en la sintaxis opening_hours de OpenStreetMap; "
            "ejemplos válidos: '24/7', 'Mo-Fr 08:00-15:00', 'Mo-Sa 09:00-21:00; Su off'.",
            "invalid_opening_hours",
        ) from None
    return value


def _check_tags(value: Any, spec: Field) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(f"se esperaba un objeto clave-valor y llegó {describe(value)}.")
    for key, item in value.items():
        if not isinstance(item, str | int | float | bool):
            raise _Invalid(f"la etiqueta {key!r} debe ser texto, número o booleano.")
    return dict(value)


_DTYPES: dict[Kind, str] = {kind: "object" for kind in Kind} | {Kind.INTEGER: "Int64"}

_CHECKS: dict[Kind, Callable[[Any, Field], Any]] = {
    Kind.TEXT: _check_text,
    Kind.INTEGER: _check_integer,
    Kind.BOOLEAN: _check_boolean,
    Kind.DATE: _check_date,
    Kind.CHOICE: _check_choice,
    Kind.OPENING_HOURS: _check_opening_hours,
    Kind.TAGS: _check_tags,
}


# --- geometry checks --------------------------------------------------------------------------


def _check_geometry(raw: Any, schema: LayerSchema, city: CityProfile) -> BaseGeometry:
    if not isinstance(raw, dict):
        raise _Invalid("falta la geometría (se esperaba un objeto GeoJSON).", "invalid_geometry")
    kind = raw.get("type")
    if kind not in schema.geometry_types:
        raise _Invalid(
            f"geometría de tipo {kind!r} no admitida; "
            f"se admite: {', '.join(schema.geometry_types)}.",
            "invalid_geometry",
        )
    try:
        geom = shape(raw)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, shapely.GEOSException):
        raise _Invalid(
            f"coordenadas mal formadas para una geometría {kind}.", "invalid_geometry"
        ) from None
    coords = shapely.get_coordinates(geom)
    if geom.is_empty or len(coords) == 0:
        raise _Invalid("la geometría está vacía.", "invalid_geometry")
    if not all(math.isfinite(c) for c in coords.ravel()):
        raise _Invalid("hay coordenadas que no son números finitos.", "invalid_geometry")
    if not geom.is_valid:
        raise _Invalid(f"geometría no válida: {shapely.is_valid_reason(geom)}.", "invalid_geometry")
    if not city.boundary.covers(geom):
        raise _Invalid(*_outside_message(geom, city))
    if isinstance(geom, shapely.Polygon):
        geom = MultiPolygon([geom])
    return geom


def check_inside(lon: float, lat: float, city: CityProfile, *, field: str = "geometry") -> None:
    """Refuse a point outside the municipality, with a hint when lat/lon look swapped.

    Raises
    ------
    InputError
        Codes ``outside_municipality``, ``swapped_coordinates``, ``not_degrees`` or
        ``invalid_geometry`` (not finite numbers).
    """
    if not (math.isfinite(lon) and math.isfinite(lat)):
        msg = "Las coordenadas deben ser números finitos (longitud y latitud en grados)."
        raise InputError(msg, code="invalid_geometry", field=field)
    point = Point(lon, lat)
    if not city.boundary.covers(point):
        message, code = _outside_message(point, city)
        raise InputError(message[0].upper() + message[1:], code=code, field=field)


def _outside_message(geom: BaseGeometry, city: CityProfile) -> tuple[str, str]:
    """The message and code for a geometry outside the municipality, with a hint if it can."""
    point = geom if isinstance(geom, Point) else geom.representative_point()
    lon, lat = point.x, point.y
    swapped = Point(lat, lon)
    where = f"({lon:.5f}, {lat:.5f})"
    if city.boundary.covers(swapped):
        return (
            f"las coordenadas {where} caen fuera del término municipal de {city.name}; parecen "
            "tener latitud y longitud intercambiadas: GeoJSON exige [longitud, latitud], "
            f"p. ej. [{city.centre_lon}, {city.centre_lat}].",
            "swapped_coordinates",
        )
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        return (
            f"las coordenadas {where} no son longitud/latitud en grados (EPSG:4326); "
            "¿están en metros (UTM)? Convierta el archivo a EPSG:4326.",
            "not_degrees",
        )
    return (
        f"las coordenadas {where} caen fuera del término municipal de {city.name}; "
        "se esperan puntos dentro del municipio "
        f"(en torno a [{city.centre_lon}, {city.centre_lat}]).",
        "outside_municipality",
    )


# --- reading ----------------------------------------------------------------------------------


def parse_feature(
    feature: Any,
    schema: LayerSchema,
    city: CityProfile,
    *,
    file: str,
    index: int | None = None,
    today: dt.date | None = None,
) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Validate one GeoJSON feature against a layer schema.

    Parameters
    ----------
    today
        The city's local date (from the caller's clock, see :mod:`geo.clock`): a device's
        ``check_date`` after it is refused. ``None`` skips only that rule (records already
        accepted, read back); every edge that takes new data passes it.

    Returns
    -------
    tuple
        The record (schema fields plus ``geometry``, a shapely geometry in EPSG:4326) or ``None``
        when the feature has problems, and the list of those problems.
    """
    problems: list[Problem] = []

    def problem(message: str, field_name: str | None = None, code: str = "invalid_value") -> None:
        problems.append(Problem(file, message, feature=index, field=field_name, code=code))

    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        problem('no es un objeto GeoJSON de tipo "Feature".', code="invalid_geojson")
        return None, problems
    properties = feature.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        problem('"properties" debe ser un objeto.', "properties", "invalid_geojson")
        return None, problems

    record: dict[str, Any] = {}
    for spec in schema.fields:
        value = properties.get(spec.name)
        if value is None:
            if spec.required:
                problem("falta este campo obligatorio.", spec.name, "missing_field")
            record[spec.name] = spec.default
            continue
        try:
            record[spec.name] = _CHECKS[spec.kind](value, spec)
        except _Invalid as exc:
            problem(exc.message, spec.name, exc.code)
    unknown = sorted(set(properties) - set(schema.field_names))
    for name in unknown:
        accepted = ", ".join(schema.field_names)
        problem(f"campo desconocido; los campos admitidos son: {accepted}.", name, "unknown_field")
    try:
        record["geometry"] = _check_geometry(feature.get("geometry"), schema, city)
    except _Invalid as exc:
        problem(exc.message, "geometry", exc.code)
    problems.extend(_check_record_rules(record, schema, city, file=file, index=index, today=today))
    return (None if problems else record), problems


def _check_record_rules(
    record: Mapping[str, Any],
    schema: LayerSchema,
    city: CityProfile,
    *,
    file: str,
    index: int | None,
    today: dt.date | None,
) -> list[Problem]:
    """Rules that relate two fields of one record, or a field and the city's date."""
    problems = []
    if schema is POPULATION:
        residents, seniors = record.get("residents"), record.get("residents_65_plus")
        if isinstance(residents, int) and isinstance(seniors, int) and seniors > residents:
            problems.append(Problem(
                file,
                f"{seniors} residentes de 65 o más superan el total de residentes ({residents}).",
                feature=index,
                field="residents_65_plus",
                code="inconsistent_counts",
            ))  # fmt: skip
    if schema is DEFIBRILLATORS:
        installed, removed = record.get("installed_on"), record.get("removed_on")
        if isinstance(installed, dt.date) and isinstance(removed, dt.date) and removed < installed:
            problems.append(Problem(
                file,
                f"la fecha de retirada {removed} es anterior a la de instalación {installed}.",
                feature=index,
                field="removed_on",
                code="dates_out_of_order",
            ))  # fmt: skip
        problems.extend(_check_check_date(record, city, file=file, index=index, today=today))
    return problems


def _day(value: dt.date) -> str:
    """A date as people read it here and as files write it: ``15/01/2027 (2027-01-15)``."""
    return f"{value:%d/%m/%Y} ({value.isoformat()})"


def _check_check_date(
    record: Mapping[str, Any],
    city: CityProfile,
    *,
    file: str,
    index: int | None,
    today: dt.date | None,
) -> list[Problem]:
    """A last check cannot be in the future (it would silence the "unchecked" reminder) nor
    before the device was installed."""
    checked, installed = record.get("check_date"), record.get("installed_on")
    if not isinstance(checked, dt.date):
        return []
    if today is not None and checked > today:
        message = (
            f"la revisión del {_day(checked)} está en el futuro: hoy es {today:%d/%m/%Y} en "
            f"{city.name}; se admite la fecha de una revisión ya hecha, hoy o antes."
        )
        return [Problem(file, message, feature=index, field="check_date", code="date_in_future")]
    if isinstance(installed, dt.date) and checked < installed:
        message = (
            f"la revisión del {_day(checked)} es anterior a la instalación, el "
            f"{installed:%d/%m/%Y}; se admite una fecha desde la instalación hasta hoy."
        )
        return [
            Problem(file, message, feature=index, field="check_date", code="dates_out_of_order")
        ]
    return []


#: Expiry fields of a device, and how a warning says each has passed.
_EXPIRED_TEXT = {
    "pads_expiry": ("Los parches caducaron", "los cambie"),
    "battery_expiry": ("La batería caducó", "la cambie"),
}


def upkeep_warnings(
    record: Mapping[str, Any], *, today: dt.date, file: str, index: int | None = None
) -> list[Problem]:
    """Expiry dates of a valid device record that have already passed.

    They are accepted (a device whose pads expired is still on the map and better than none),
    but the device counts as overdue for maintenance from that day: whoever enters them is told
    so. A removed device has nothing to maintain.

    Parameters
    ----------
    record
        A device record as :func:`parse_feature` returns it (dates as ``datetime.date``).
    today
        The city's local date; an expiry before it has passed.

    Returns
    -------
    list of Problem
        One per expiry already past, code ``expired``, naming its field.
    """
    if record.get("status") == "removed":
        return []
    warnings = []
    for name, (subject, until) in _EXPIRED_TEXT.items():
        day = record.get(name)
        if isinstance(day, dt.date) and day < today:
            message = (
                f"{subject} el {day:%d/%m/%Y}: el desfibrilador aparece como mantenimiento "
                f"vencido hasta que {until}."
            )
            warnings.append(Problem(file, message, feature=index, field=name, code="expired"))
    return warnings


def parse_layer_text(
    text: str, schema: LayerSchema, city: CityProfile, *, name: str, today: dt.date | None
) -> tuple[list[dict[str, Any]], list[Problem]]:
    """The records of one layer's GeoJSON text, and every problem in it (each naming ``name``).

    The file readers (:mod:`geo.io.files`) hand the text in; :func:`records_frame` turns the
    records into a frame.
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"JSON no válido: {exc.msg} (columna {exc.colno})."
        return [], [Problem(name, message, line=exc.lineno)]
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        return [], [Problem(name, 'se esperaba un GeoJSON de tipo "FeatureCollection".')]
    crs_problem = _check_declared_crs(document.get("crs"))
    if crs_problem:
        return [], [Problem(name, crs_problem, field="crs")]
    features = document.get("features")
    if not isinstance(features, list):
        return [], [Problem(name, '"features" debe ser una lista de elementos.', field="features")]

    records: list[dict[str, Any]] = []
    problems: list[Problem] = []
    first_index: dict[str, int] = {}
    first_source: dict[tuple[str, str], int] = {}
    for index, feature in enumerate(features):
        record, feature_problems = parse_feature(
            feature, schema, city, file=name, index=index, today=today
        )
        problems.extend(feature_problems)
        if record is None:
            continue
        seen = first_index.setdefault(record["id"], index)
        if seen != index:
            problems.append(Problem(
                name, f"id {record['id']!r} repetido (ya usado en el elemento {seen}).",
                feature=index, field="id",
            ))  # fmt: skip
            continue
        if schema is DEFIBRILLATORS and record["source_id"] is not None:
            # An imported device is recognised by its source and source id (unique in storage).
            seen = first_source.setdefault((record["source"], record["source_id"]), index)
            if seen != index:
                problems.append(Problem(
                    name, f"source_id {record['source_id']!r} de {record['source']!r} repetido "
                    f"(ya usado en el elemento {seen}).", feature=index, field="source_id",
                ))  # fmt: skip
                continue
        records.append(record)
    return records, problems


def _check_declared_crs(crs: Any) -> str | None:
    if crs is None:
        return None
    name = crs.get("properties", {}).get("name") if isinstance(crs, dict) else None
    if name in _ACCEPTED_CRS_NAMES:
        return None
    return (
        f"el archivo declara el CRS {name or crs!r}; cardiomapa lee GeoJSON en EPSG:4326 "
        "(longitud, latitud en grados), como exige RFC 7946. Reproyecte el archivo."
    )


def records_frame(records: list[dict[str, Any]], schema: LayerSchema) -> gpd.GeoDataFrame:
    data = {name: [r[name] for r in records] for name in schema.field_names}
    return to_frame(data, [r["geometry"] for r in records], schema)


def to_frame(
    data: Mapping[str, list[Any]], geometry: list[BaseGeometry], schema: LayerSchema
) -> gpd.GeoDataFrame:
    """Build a layer's GeoDataFrame with its canonical dtypes.

    Integer fields are nullable ``Int64``; every other field is ``object`` holding Python values
    (``str``, ``bool``, ``datetime.date``, ``dict``) or ``None``. CRS EPSG:4326.
    """
    frame = gpd.GeoDataFrame(
        {f.name: pd.Series(data[f.name], dtype=_DTYPES[f.kind]) for f in schema.fields},
        geometry=gpd.GeoSeries(geometry, crs=WGS84),
    )
    return frame


def check_references(layers: Mapping[str, gpd.GeoDataFrame]) -> list[Problem]:
    """Problems between layers: dangling entity references and overlapping CEAS zones."""
    problems: list[Problem] = []
    devices, entities = layers.get(DEFIBRILLATORS.name), layers.get(ENTITIES.name)
    if devices is not None and entities is not None:
        known = set(entities["id"])
        for index, entity_id in enumerate(devices["operator_entity_id"]):
            if entity_id is not None and entity_id not in known:
                problems.append(Problem(
                    DEFIBRILLATORS.file_name,
                    f"la entidad {entity_id!r} no existe en {ENTITIES.file_name}.",
                    feature=index, field="operator_entity_id",
                ))  # fmt: skip
    zones = layers.get(CEAS.name)
    if zones is not None and len(zones) > 1:
        problems.extend(_zone_overlaps(zones))
    return problems


def _zone_overlaps(zones: gpd.GeoDataFrame, *, tolerance_m2: float = 1.0) -> list[Problem]:
    # Areas in degrees² mean nothing: measure overlaps in a local metric projection.
    metric = zones.to_crs(zones.estimate_utm_crs())
    tree = shapely.STRtree(metric.geometry.values)
    left, right = tree.query(metric.geometry.values, predicate="intersects")
    problems = []
    for i, j in zip(left, right, strict=True):
        if i >= j:
            continue
        area = metric.geometry.iloc[i].intersection(metric.geometry.iloc[j]).area
        if area > tolerance_m2:
            problems.append(Problem(
                CEAS.file_name,
                f"la zona {zones['id'].iloc[i]!r} se solapa {area:,.0f} m² con la zona "
                f"{zones['id'].iloc[j]!r} (elemento {j}); las zonas no pueden solaparse.",
                feature=int(i), field="geometry",
            ))  # fmt: skip
    return problems
