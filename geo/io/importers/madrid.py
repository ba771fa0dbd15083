"""Comunidad de Madrid open-data register of defibrillators (JSON) → device records.

The file is ``{"data": [{…}, …]}`` with every value a string: ``codigo_dea`` (the register's id),
``tipo_establecimiento``, ``tipo_titularidad``, ``direccion_ubicacion``, ``direccion_via_codigo``,
``direccion_via_nombre``, ``direccion_portal_numero``, ``direccion_piso``, ``direccion_puerta``,
``direccion_codigo_postal``, ``municipio_codigo``, ``municipio_nombre``, ``horario_acceso`` (free
text) and either ``direccion_coordenada_x``/``direccion_coordenada_y`` (ETRS89 / UTM 30N metres,
EPSG:25830) or ``direccion_latitud``/``direccion_longitud`` (degrees with a decimal comma).

Mapping: ``codigo_dea`` → ``source_id``; ``tipo_establecimiento`` + street and number → ``name``;
``direccion_ubicacion`` → ``location_text``; street, number, floor, door, postcode and town →
``address``; ``horario_acceso`` → ``opening_hours`` through :mod:`geo.io.importers.hours` (when it
cannot be converted the record is flagged and the field left out, so a re-import never clears
hours a planner entered). ``access`` is ``unknown`` (the register does not say who may use a
device) and ``status`` ``active``; ``verification`` is the pipeline's policy
(:data:`geo.io.importers.run.INITIAL_VERIFICATION`). Every original field is kept verbatim in
``tags``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyproj

from geo.city import CityProfile
from geo.errors import ImportFormatError
from geo.io.importers.base import DeviceRecord, ParsedImport, Skip
from geo.io.importers.hours import to_opening_hours

FORMAT = "madrid"
SOURCE = "comunidad-madrid"
# As published on the Comunidad de Madrid open-data portal (datos.comunidad.madrid); this could
# not be verified offline — check the dataset's page before redistributing.
LICENCE = "CC BY 4.0 (Portal de Datos Abiertos de la Comunidad de Madrid)"

UTM_CRS = "EPSG:25830"
ID_FIELD = "codigo_dea"
FIELDS = (
    "codigo_dea", "tipo_establecimiento", "tipo_titularidad", "direccion_ubicacion",
    "direccion_via_codigo", "direccion_via_nombre", "direccion_portal_numero", "direccion_piso",
    "direccion_puerta", "direccion_codigo_postal", "municipio_codigo", "municipio_nombre",
    "horario_acceso", "direccion_coordenada_x", "direccion_coordenada_y", "direccion_latitud",
    "direccion_longitud",
)  # fmt: skip


def parse(path: Path, *, city: CityProfile, **options: Any) -> ParsedImport:
    """Read a Comunidad de Madrid defibrillators JSON file.

    Parameters
    ----------
    path
        The JSON file as downloaded (UTF-8, with or without BOM).
    city
        The city profile (unused by the parser: the pipeline checks the boundary).

    Returns
    -------
    ParsedImport
        One :class:`DeviceRecord` per record with coordinates (EPSG:4326); records without a
        usable coordinate pair are :class:`Skip`\\ s.

    Raises
    ------
    ImportFormatError
        Not JSON, no ``data`` array, a record that is not an object, a value that is not a string
        (or null), or a record without ``codigo_dea``.
    """
    name = path.name
    document = _read_json(path)
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list):
        msg = 'se esperaba un objeto JSON con una lista "data" de registros (formato madrid).'
        raise ImportFormatError(name, msg, field="data")
    to_wgs84 = pyproj.Transformer.from_crs(UTM_CRS, "EPSG:4326", always_xy=True)
    records: list[DeviceRecord] = []
    skipped: list[Skip] = []
    for number, item in enumerate(data, start=1):
        raw = _strings(item, name, number)
        tags = {str(k): v for k, v in item.items() if v is not None}  # verbatim, as published
        source_id = raw[ID_FIELD]
        position = _position(raw, to_wgs84, number, source_id)
        if isinstance(position, Skip):
            skipped.append(position)
            continue
        lon, lat = position
        records.append(_record(raw, tags, number, lon, lat))
    notes = [
        f"{len(records)} de {len(data)} registros con coordenadas; "
        f"{len(skipped)} omitidos (motivo en cada uno).",
    ]
    unconverted = sum(1 for r in records if r.flags)
    if unconverted:
        notes.append(
            f"{unconverted} horarios no se pudieron convertir a opening_hours: se conservan "
            'literalmente en la etiqueta "horario_acceso" y quedan sin horario.'
        )
    return ParsedImport(
        format=FORMAT,
        file=name,
        source=SOURCE,
        licence=LICENCE,
        read=len(data),
        records=records,
        skipped=skipped,
        notes=notes,
    )


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        msg = f"el archivo no está en UTF-8 (byte {exc.start})."
        raise ImportFormatError(path.name, msg) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"no es JSON válido: {exc.msg} (línea {exc.lineno}, columna {exc.colno})."
        raise ImportFormatError(path.name, msg) from None


def _strings(item: Any, file: str, number: int) -> dict[str, str]:
    """The record's values, each a string (null and absent become ``""``)."""
    if not isinstance(item, dict):
        msg = 'cada registro de "data" debe ser un objeto con campos de texto.'
        raise ImportFormatError(file, msg, record=number)
    values: dict[str, str] = {}
    for key, value in item.items():
        if value is None:
            values[str(key)] = ""
        elif isinstance(value, str):
            values[str(key)] = value.strip()
        else:
            msg = (
                f"se esperaba texto (en este formato todos los valores son cadenas) y llegó "
                f"{type(value).__name__} {value!r}."
            )
            raise ImportFormatError(file, msg, record=number, field=str(key))
    for key in FIELDS:
        values.setdefault(key, "")
    if not values[ID_FIELD]:
        msg = "falta el código del desfibrilador, necesario para reconocerlo en otra importación."
        raise ImportFormatError(file, msg, record=number, field=ID_FIELD)
    return values


def parse_number(text: str) -> float | None:
    """A Spanish-published number: decimal comma or point; ``1.234,5`` thousands. None if not."""
    cleaned = text.strip().replace(" ", "")
    if "," in cleaned and "." in cleaned:
        cleaned = cleaned.replace(".", "").replace(",", ".")
    else:
        cleaned = cleaned.replace(",", ".")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _position(
    raw: dict[str, str], to_wgs84: pyproj.Transformer, number: int, source_id: str
) -> tuple[float, float] | Skip:
    """(lon, lat) in EPSG:4326 from the UTM pair if given, else the decimal-comma pair."""
    pairs = (
        ("direccion_coordenada_x", "direccion_coordenada_y", "UTM 30N"),
        ("direccion_longitud", "direccion_latitud", "longitud/latitud"),
    )
    for x_field, y_field, label in pairs:
        x_text, y_text = raw[x_field], raw[y_field]
        if not x_text and not y_text:
            continue
        for field_name, text in ((x_field, x_text), (y_field, y_text)):
            if not text:
                reason = f"coordenada {label} incompleta: falta {field_name}."
                return Skip(number, source_id, reason, field_name)
            if parse_number(text) is None:
                reason = f"coordenada {label} no numérica: {text!r}."
                return Skip(number, source_id, reason, field_name)
        x, y = parse_number(x_text), parse_number(y_text)
        assert x is not None and y is not None
        if x_field == "direccion_coordenada_x":
            lon, lat = to_wgs84.transform(x, y)
            return float(lon), float(lat)
        return x, y
    reason = (
        "sin coordenadas: faltan direccion_coordenada_x/_y (UTM 30N) y "
        "direccion_latitud/direccion_longitud."
    )
    return Skip(number, source_id, reason, "direccion_coordenada_x")


def _record(
    raw: dict[str, str], tags: dict[str, str], number: int, lon: float, lat: float
) -> DeviceRecord:
    street = " ".join(p for p in (raw["direccion_via_nombre"], raw["direccion_portal_numero"]) if p)
    kind = raw["tipo_establecimiento"]
    name = ", ".join(p for p in (kind, street) if p) or f"DEA {raw[ID_FIELD]}"
    hours, reason = to_opening_hours(raw["horario_acceso"])
    flags = () if reason is None else (reason,)
    properties: dict[str, Any] = {
        "name": name,
        "location_text": raw["direccion_ubicacion"] or None,
        "address": _address(raw),
        "opening_hours": hours,
        "status": "active",
        "source": SOURCE,
        "source_id": raw[ID_FIELD],
        "tags": tags,
    }
    if hours is None:
        # Not published or not understood: the source does not own the field, so a re-import
        # never clears hours a planner entered (the text stays in tags, the record is flagged).
        del properties["opening_hours"]
    return DeviceRecord(record=number, lon=lon, lat=lat, properties=properties, flags=flags)


def _address(raw: dict[str, str]) -> str | None:
    street = " ".join(p for p in (raw["direccion_via_nombre"], raw["direccion_portal_numero"]) if p)
    unit = " ".join(p for p in (raw["direccion_piso"], raw["direccion_puerta"]) if p)
    town = " ".join(p for p in (raw["direccion_codigo_postal"], raw["municipio_nombre"]) if p)
    parts = [p for p in (street, unit, town) if p]
    return ", ".join(parts) or None
