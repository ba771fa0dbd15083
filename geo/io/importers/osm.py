"""OpenStreetMap defibrillators (raw Overpass JSON, or OpenAEDMap / overpass-turbo GeoJSON).

Two shapes are read:

- **Overpass JSON** (``[out:json]``): ``{"elements": [{"type": "node", "id": 123, "lat": …,
  "lon": …, "tags": {…}}]}``. Ways and relations need a ``center`` (query with ``out center;``);
  without one they are skipped with that advice.
- **GeoJSON** as OpenAEDMap publishes it per country (Point features whose properties are the
  OSM tags plus ``@osm_type``, ``@osm_id``, ``@osm_version``) or as overpass-turbo exports it
  (``@id`` = ``"node/123"``, or the feature's ``id``). Features that are not Points are skipped.

Every element without ``emergency=defibrillator`` is skipped. Every OSM tag is kept verbatim in
``tags`` (``@``-prefixed metadata is not a tag and is left out). The layer fields come from the
tags as OpenAEDMap reads them; a field without a tag (or with an unreadable one) is left out of
the record, so the source does not own it and a re-import keeps what a planner entered there:

==========================  ====================================================================
``name``                    ``name``; else ``DEA`` + ``operator``, else + the location, else the
                            OSM id
``access``                  ``access`` when it is one of the layer's values; otherwise
                            ``unknown`` for a new device (the raw value stays in ``tags``)
``opening_hours``           ``opening_hours`` when it parses; otherwise empty, flagged, and kept
                            in ``tags``: a device is never lost because of its hours
``indoor``                  ``indoor``: ``yes``/``room``/``area``/``corridor`` → true, ``no`` →
                            false
``level``                   ``level``
``location_text``           ``defibrillator:location:es``, else ``defibrillator:location``
``check_date``              ``check_date``, else ``survey:date`` (``AAAA-MM-DD``; else flagged)
``phone``                   ``phone``, else ``contact:phone``
``address``                 ``addr:street`` + ``addr:housenumber``, ``addr:postcode`` +
                            ``addr:city``
``source`` / ``source_id``  ``osm`` / ``node/123``
==========================  ====================================================================

OpenStreetMap data is © OpenStreetMap contributors, under the Open Database Licence 1.0: the
licence is recorded in the :class:`~geo.io.importers.base.ParsedImport` and the API states it for
every ``osm`` record in its downloads.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import opening_hours

from geo.core.layers import ACCESS_VALUES, OpeningHoursParserError
from geo.errors import ImportFormatError
from geo.io.importers.base import DeviceRecord, ParsedImport, Skip

FORMAT = "osm"
SOURCE = "osm"
LICENCE = "ODbL 1.0 © OpenStreetMap contributors"
NOTE = (
    "Datos © colaboradores de OpenStreetMap, disponibles bajo la Open Database License (ODbL) "
    "1.0: https://www.openstreetmap.org/copyright"
)
OSM_TYPES = ("node", "way", "relation")
_INDOOR_TRUE = frozenset({"yes", "room", "area", "corridor", "level"})


def parse(path: Path, **options: Any) -> ParsedImport:
    """Read an Overpass JSON or OpenAEDMap / overpass-turbo GeoJSON file of defibrillators.

    Parameters
    ----------
    path
        The file (UTF-8 JSON). Coordinates are EPSG:4326.
    options
        Ignored (the CLI passes the city to every importer).

    Raises
    ------
    ImportFormatError
        Not JSON; neither ``{"elements": […]}`` nor a FeatureCollection; an element or feature
        that is not an object, without a valid OSM type and id, or with coordinates that are not
        numbers; tags that are not an object.
    """
    name = path.name
    document = _read_json(path)
    if isinstance(document, dict) and isinstance(document.get("elements"), list):
        items = [_from_element(e, name, n) for n, e in enumerate(document["elements"], start=1)]
    elif isinstance(document, dict) and document.get("type") == "FeatureCollection":
        features = document.get("features")
        if not isinstance(features, list):
            raise ImportFormatError(name, '"features" debe ser una lista.', field="features")
        items = [_from_feature(f, name, n) for n, f in enumerate(features, start=1)]
    else:
        msg = (
            'se esperaba JSON de Overpass ({"elements": […]}) o un GeoJSON FeatureCollection '
            "(OpenAEDMap, overpass-turbo)."
        )
        raise ImportFormatError(name, msg)
    return ParsedImport.of(
        items, format=FORMAT, file=name, source=SOURCE, licence=LICENCE, notes=[NOTE]
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        msg = f"el archivo no está en UTF-8 (byte {exc.start})."
        raise ImportFormatError(path.name, msg) from None
    except json.JSONDecodeError as exc:
        msg = f"JSON no válido: {exc.msg} (línea {exc.lineno}, columna {exc.colno})."
        raise ImportFormatError(path.name, msg) from None


# --- the two shapes ----------------------------------------------------------------------------


def _from_element(element: Any, file: str, number: int) -> DeviceRecord | Skip:
    if not isinstance(element, dict):
        raise ImportFormatError(file, "cada elemento debe ser un objeto.", record=number)
    kind, osm_id = element.get("type"), element.get("id")
    source_id = _osm_ref(kind, osm_id, file, number)
    tags = _tags(element.get("tags", {}), file, number)
    if kind == "node":
        lon = _coordinate(element.get("lon"), file, number, "lon")
        lat = _coordinate(element.get("lat"), file, number, "lat")
    else:
        center = element.get("center")
        if not isinstance(center, dict):
            reason = (
                f"{'vía' if kind == 'way' else 'relación'} sin centro: exporte la consulta de "
                "Overpass con «out center;» para obtener su posición."
            )
            return Skip(number, source_id, reason, "center")
        lon = _coordinate(center.get("lon"), file, number, "center.lon")
        lat = _coordinate(center.get("lat"), file, number, "center.lat")
    return _device(tags, source_id, number, lon, lat)


def _from_feature(feature: Any, file: str, number: int) -> DeviceRecord | Skip:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise ImportFormatError(file, 'se esperaba un elemento GeoJSON "Feature".', record=number)
    properties = feature.get("properties") or {}
    if not isinstance(properties, dict):
        raise ImportFormatError(file, "debe ser un objeto.", record=number, field="properties")
    source_id = _feature_ref(feature, properties, file, number)
    tags = _tags({k: v for k, v in properties.items() if not k.startswith("@")}, file, number)
    geometry = feature.get("geometry")
    if not isinstance(geometry, dict) or geometry.get("type") != "Point":
        kind = geometry.get("type") if isinstance(geometry, dict) else None
        reason = f"geometría {kind!r} no admitida: solo se importan puntos (Point)."
        return Skip(number, source_id, reason, "geometry")
    coordinates = geometry.get("coordinates")
    if not isinstance(coordinates, list) or len(coordinates) < 2:
        msg = "las coordenadas de un Point deben ser [longitud, latitud]."
        raise ImportFormatError(file, msg, record=number, field="geometry")
    lon = _coordinate(coordinates[0], file, number, "geometry")
    lat = _coordinate(coordinates[1], file, number, "geometry")
    return _device(tags, source_id, number, lon, lat)


def _osm_ref(kind: Any, osm_id: Any, file: str, number: int) -> str:
    if kind not in OSM_TYPES:
        msg = f"tipo de elemento OSM {kind!r} no válido; se admite node, way o relation."
        raise ImportFormatError(file, msg, record=number, field="type")
    if isinstance(osm_id, str) and osm_id.isdigit():
        osm_id = int(osm_id)
    if isinstance(osm_id, bool) or not isinstance(osm_id, int) or osm_id <= 0:
        msg = f"id OSM {osm_id!r} no válido; se espera un entero positivo."
        raise ImportFormatError(file, msg, record=number, field="id")
    return f"{kind}/{osm_id}"


def _feature_ref(
    feature: dict[str, Any], properties: dict[str, Any], file: str, number: int
) -> str:
    if "@osm_type" in properties or "@osm_id" in properties:
        return _osm_ref(properties.get("@osm_type"), properties.get("@osm_id"), file, number)
    for value in (properties.get("@id"), feature.get("id")):
        if isinstance(value, str) and value.count("/") == 1:
            kind, osm_id = value.split("/")
            return _osm_ref(kind, osm_id, file, number)
    msg = 'falta el id OSM: se espera "@osm_type" y "@osm_id", o "@id" como "node/123".'
    raise ImportFormatError(file, msg, record=number, field="@osm_id")


def _tags(raw: Any, file: str, number: int) -> dict[str, str | int | float | bool]:
    if not isinstance(raw, dict):
        raise ImportFormatError(file, "las etiquetas deben ser un objeto.", record=number,
                                field="tags")  # fmt: skip
    tags: dict[str, str | int | float | bool] = {}
    for key, value in raw.items():
        if value is None:
            continue
        if isinstance(value, str | int | float | bool):
            tags[str(key)] = value
        else:  # tools add lists or objects next to the tags; keep them as JSON text
            tags[str(key)] = json.dumps(value, ensure_ascii=False)
    return tags


def _coordinate(value: Any, file: str, number: int, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        msg = f"coordenada {value!r} no válida; se espera un número en grados (EPSG:4326)."
        raise ImportFormatError(file, msg, record=number, field=field)
    return float(value)


# --- tags → layer fields ------------------------------------------------------------------------


def _device(
    tags: dict[str, Any], source_id: str, number: int, lon: float, lat: float
) -> DeviceRecord | Skip:
    if tags.get("emergency") != "defibrillator":
        reason = "no es un desfibrilador: falta la etiqueta emergency=defibrillator."
        return Skip(number, source_id, reason, "emergency")
    flags: list[str] = []
    text = {key: str(value).strip() for key, value in tags.items()}
    location = text.get("defibrillator:location:es") or text.get("defibrillator:location")
    access = text.get("access")
    hours = text.get("opening_hours") or None
    if hours is not None and not _valid_hours(hours):
        flags.append(
            f"horario opening_hours «{hours}» no válido: se importa sin horario (el texto "
            "original queda en tags)."
        )
        hours = None
    fields: dict[str, Any] = {
        "location_text": location or None,
        "address": _address(text),
        "access": layer_access(access),
        "opening_hours": hours,
        "indoor": _indoor(text.get("indoor")),
        "level": text.get("level") or None,
        "phone": text.get("phone") or text.get("contact:phone") or None,
        "check_date": _check_date(text, flags),
    }
    # A field OSM does not give (or gives unreadably) is left out: the source does not own it,
    # so a re-import never clears what a planner entered (new devices: empty, access unknown).
    properties = {
        "name": _name(text, location, source_id),
        "source_id": source_id,
        "tags": tags,
    } | {key: value for key, value in fields.items() if value is not None}
    return DeviceRecord(number, lon, lat, properties, tuple(flags))


def _valid_hours(value: str) -> bool:
    try:
        opening_hours.OpeningHours(value)
    except OpeningHoursParserError:
        return False
    return True


def _name(text: dict[str, str], location: str | None, source_id: str) -> str:
    if text.get("name"):
        return text["name"]
    for fallback in (text.get("operator"), location):
        if fallback:
            return f"DEA {fallback}"
    return f"DEA (OpenStreetMap {source_id})"


def _address(text: dict[str, str]) -> str | None:
    street = " ".join(p for p in (text.get("addr:street"), text.get("addr:housenumber")) if p)
    town = " ".join(p for p in (text.get("addr:postcode"), text.get("addr:city")) if p)
    return ", ".join(p for p in (street, town) if p) or None


def _indoor(value: str | None) -> bool | None:
    if value is None:
        return None
    if value in _INDOOR_TRUE:
        return True
    return False if value == "no" else None


def _check_date(text: dict[str, str], flags: list[str]) -> str | None:
    for key in ("check_date", "survey:date"):
        value = text.get(key)
        if not value:
            continue
        try:
            if len(value) == 10:
                dt.date.fromisoformat(value)
                return value
        except ValueError:
            pass
        flags.append(f"fecha {key}={value!r} no es AAAA-MM-DD: se importa sin fecha de revisión.")
        return None
    return None


#: OSM values outside the layer's vocabulary that mean one of its values.
ACCESS_SYNONYMS = {"public": "yes"}


def layer_access(value: str | None) -> str | None:
    """The layer's ``access`` for an OSM ``access`` tag (``None``: not stated or not understood).

    ``access=public`` is not in OSM's documented vocabulary but is common on defibrillators, and
    means what ``yes`` means.
    """
    if value is None:
        return None
    value = ACCESS_SYNONYMS.get(value, value)
    return value if value in ACCESS_VALUES else None
