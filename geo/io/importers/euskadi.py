"""Basque Government open data (Open Data Euskadi) register of defibrillators, GeoJSON → devices.

A FeatureCollection of Points whose properties are ``codigo_dea`` (the register's id),
``direccion``, ``municipio``, ``provincia``, ``organismo`` (who holds the device), ``ubicacion``
(where exactly), ``horario`` (free text), ``numserie`` and ``modelo``. Coordinates are EPSG:4326
or, as Basque open data often publishes them, a projected CRS named in a ``crs`` member
(``{"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::25830"}}``); they are
reprojected to EPSG:4326.

Mapping: ``codigo_dea`` → ``source_id``; ``DEA`` + ``organismo`` (else ``ubicacion``) →
``name``; ``ubicacion`` → ``location_text``; ``direccion`` + ``municipio`` (+ ``provincia``) →
``address``; ``horario`` → ``opening_hours`` through :func:`geo.io.importers.hours.to_opening_hours`
(flagged when it cannot be converted); ``access`` ``unknown`` (the register does not say who may
use a device). A field the register leaves empty, or hours that cannot be converted, are left
out of the record, so a re-import keeps what a planner entered there. Every property is kept
verbatim in ``tags`` (``numserie`` is what duplicate detection compares). Licence: Open Data
Euskadi publishes under CC BY 4.0.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyproj
from pyproj.exceptions import CRSError

from geo.errors import ImportFormatError
from geo.io.importers.base import DeviceRecord, ParsedImport, Skip
from geo.io.importers.hours import to_opening_hours

FORMAT = "euskadi"
SOURCE = "euskadi"
LICENCE = "CC BY 4.0 (Open Data Euskadi, Gobierno Vasco)"
ID_FIELD = "codigo_dea"
FIELDS = (
    "codigo_dea", "direccion", "municipio", "provincia", "organismo", "ubicacion", "horario",
    "numserie", "modelo",
)  # fmt: skip
_WGS84_NAMES = frozenset(
    {"urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:OGC::CRS84", "EPSG:4326",
     "urn:ogc:def:crs:EPSG::4326", "CRS84"}
)  # fmt: skip


def parse(path: Path, **options: Any) -> ParsedImport:
    """Read an Open Data Euskadi defibrillators GeoJSON file.

    Parameters
    ----------
    path
        The GeoJSON file (UTF-8), EPSG:4326 or the projected CRS its ``crs`` member names.
    options
        Ignored (the CLI passes the city to every importer).

    Raises
    ------
    ImportFormatError
        Not JSON, not a FeatureCollection, a ``crs`` that is not understood, a feature that is
        not an object, or coordinates that are not numbers.
    """
    name = path.name
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ImportFormatError(name, f"el archivo no está en UTF-8 (byte {exc.start}).") from None
    except json.JSONDecodeError as exc:
        msg = f"JSON no válido: {exc.msg} (línea {exc.lineno}, columna {exc.colno})."
        raise ImportFormatError(name, msg) from None
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise ImportFormatError(name, 'se esperaba un GeoJSON de tipo "FeatureCollection".')
    features = document.get("features")
    if not isinstance(features, list):
        raise ImportFormatError(name, '"features" debe ser una lista.', field="features")
    transformer = _transformer(document.get("crs"), name)
    items = [_item(f, name, n, transformer) for n, f in enumerate(features, start=1)]
    return ParsedImport.of(items, format=FORMAT, file=name, source=SOURCE, licence=LICENCE)


def _transformer(crs: Any, file: str) -> pyproj.Transformer | None:
    """``None`` for EPSG:4326 (or no ``crs``), else a transformer from the named CRS."""
    if crs is None:
        return None
    crs_name = crs.get("properties", {}).get("name") if isinstance(crs, dict) else None
    if not isinstance(crs_name, str):
        msg = 'se esperaba {"type": "name", "properties": {"name": "EPSG:…"}}.'
        raise ImportFormatError(file, msg, field="crs")
    if crs_name in _WGS84_NAMES:
        return None
    try:
        source = pyproj.CRS.from_user_input(crs_name)
    except CRSError:
        msg = f"CRS {crs_name!r} no reconocido; use EPSG:4326 o un código EPSG (EPSG:25830)."
        raise ImportFormatError(file, msg, field="crs") from None
    return pyproj.Transformer.from_crs(source, "EPSG:4326", always_xy=True)


def _item(
    feature: Any, file: str, number: int, transformer: pyproj.Transformer | None
) -> DeviceRecord | Skip:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise ImportFormatError(file, 'se esperaba un elemento GeoJSON "Feature".', record=number)
    properties = feature.get("properties") or {}
    if not isinstance(properties, dict):
        raise ImportFormatError(file, "debe ser un objeto.", record=number, field="properties")
    raw = {str(key).casefold(): value for key, value in properties.items()}
    text = {key: _text(value) for key, value in raw.items()}
    source_id = text.get(ID_FIELD) or None
    if source_id is None:
        return Skip(number, None, f"falta {ID_FIELD}: sin él no se reconoce al reimportar.",
                    ID_FIELD)  # fmt: skip
    geometry = feature.get("geometry")
    if not isinstance(geometry, dict) or geometry.get("type") != "Point":
        kind = geometry.get("type") if isinstance(geometry, dict) else None
        return Skip(number, source_id, f"geometría {kind!r} no admitida: se espera un Point.",
                    "geometry")  # fmt: skip
    lon, lat = _position(geometry.get("coordinates"), file, number, transformer)
    flags: list[str] = []
    hours, why = to_opening_hours(text.get("horario") or None)
    if why is not None:
        flags.append(f"{why} Se importa sin horario (el texto original queda en tags).")
    organismo, ubicacion = text.get("organismo"), text.get("ubicacion")
    municipio, provincia = text.get("municipio"), text.get("provincia")
    town = ", ".join(p for p in (municipio, provincia if provincia != municipio else None) if p)
    fields = {
        "location_text": ubicacion or None,
        "address": ", ".join(p for p in (text.get("direccion"), town) if p) or None,
        "opening_hours": hours,
    }
    tags = {k: v for k, v in properties.items() if isinstance(v, str | int | float | bool)}
    # A field the register leaves empty (or hours it publishes unreadably) is left out: the
    # source does not own it, so a re-import keeps what a planner entered.
    properties_out = {
        "name": f"DEA {organismo or ubicacion or source_id}",
        "source_id": source_id,
        "tags": tags,
    } | {key: value for key, value in fields.items() if value is not None}
    return DeviceRecord(number, lon, lat, properties_out, tuple(flags))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split())


def _position(
    coordinates: Any, file: str, number: int, transformer: pyproj.Transformer | None
) -> tuple[float, float]:
    if (
        not isinstance(coordinates, list)
        or len(coordinates) < 2
        or not all(
            isinstance(c, int | float) and not isinstance(c, bool) and math.isfinite(c)
            for c in coordinates[:2]
        )
    ):
        msg = "las coordenadas de un Point deben ser dos números [x, y]."
        raise ImportFormatError(file, msg, record=number, field="geometry")
    x, y = float(coordinates[0]), float(coordinates[1])
    if transformer is None:
        return x, y
    lon, lat = transformer.transform(x, y)
    return float(lon), float(lat)
