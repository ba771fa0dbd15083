"""Open data out: every layer as GeoJSON, CSV or GeoPackage, for QGIS, spreadsheets and reuse.

An edge module, like the API: it reads through the :class:`~geo.io.store.Store` and writes files.
The same records and writers serve the ``cardiomapa export`` command and the API's downloads.

What an export holds
--------------------
- Every layer: its schema's fields plus ``licence`` (the licence the record is published under,
  from its ``source``). Coordinates in EPSG:4326 (longitude, latitude in degrees) in every format.
- ``defibrillators``, public (the default, and what the API serves): only *verified* devices, and
  only the fields of the public download (:data:`PUBLIC_DEVICE_FIELDS`: no moderation state, no
  battery or pads expiry). Staff exports (``public_only=False``) hold every device (pending and
  rejected too) and every field. Neither ever holds the private notes (cabinet code, key holder):
  they live in another table, which is never read here.

Formats
-------
GeoJSON
    RFC 7946 FeatureCollection in EPSG:4326 (no ``crs`` member), with top-level ``name``,
    ``notice`` (how many records are synthetic sample data) and ``licence_by_source``.
CSV
    RFC 4180 (comma separator, ``.`` decimals, quoted where needed), UTF-8 **with a BOM**. Points
    as ``lon``/``lat`` columns (7 decimals, ~1 cm), polygons as a WKT ``geometry`` column;
    ``tags`` as JSON text; dates ``AAAA-MM-DD``. The BOM is what makes Excel read the accents
    (without it Excel in Spanish decodes the file as Windows-1252); GDAL, and so QGIS's OGR
    reader, and pandas with ``utf-8-sig`` skip it. Commas and ``.`` decimals rather than the
    Spanish ``;`` and ``,``: QGIS and GDAL read them without options, while ``,`` decimals would
    make coordinates text for them. In Excel, open it with *Datos → Desde el texto/CSV*
    (double-clicking splits columns at ``;`` in a Spanish locale).
    Text cells starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return get a leading
    ``'`` (:func:`geo.core.outputs.csv_safe`), so a spreadsheet never runs a name or a phone number
    as a formula; numeric columns (coordinates, counts) are written as numbers.
GeoPackage
    One table per file, named after the layer (``defibrillators``…), in EPSG:4326 like every
    other output, so it lies exactly on the GeoJSON, the CSV and the OGC API layers; QGIS
    reprojects it on the fly (for metric work, reproject it to the city's metric CRS, EPSG:25830
    for Palencia). Dates as DATE, booleans as BOOLEAN, ``tags`` as JSON text. Written by pyogrio,
    geopandas' I/O engine (through its low-level writer: the data-frame writer cannot declare a
    DATE column), as GeoPackage **1.2** (:data:`GPKG_VERSION`): the GDAL that pyogrio bundles
    writes 1.4 by default, which the GDAL 3.6 of Debian 12 (and so its QGIS LTR) opens with a
    warning that it "may only be partially supported"; nothing here needs 1.3 or 1.4.
    :func:`write_gpkg` is the one writer of GeoPackages (the CLI's export and the API's
    downloads both go through it).

Files are written atomically: to a temporary file in the same folder, then renamed over ``out``
(an existing file is replaced).
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyogrio.raw import write as write_raw

from geo.core.layers import DEFIBRILLATORS, LAYERS_BY_NAME, WGS84, Field, Kind, LayerSchema
from geo.core.outputs import csv_safe, feature_collection, plain
from geo.errors import InputError
from geo.io.importers import LICENCES
from geo.io.store import Store

__all__ = [
    "FILE_STEMS",
    "GPKG_VERSION",
    "MEDIA_TYPES",
    "PUBLIC_DEVICE_FIELDS",
    "PUBLISHED_LAYERS",
    "ExportFormat",
    "ExportResult",
    "check_format",
    "check_layer",
    "export_bytes",
    "export_frame",
    "export_layer",
    "geojson_document",
    "licence_of",
    "published_fields",
    "records_notice",
    "write_gpkg",
]


class ExportFormat(StrEnum):
    GEOJSON = "geojson"
    CSV = "csv"
    GPKG = "gpkg"


#: Media type of each format, as the API serves it.
MEDIA_TYPES: Mapping[ExportFormat, str] = {
    ExportFormat.GEOJSON: "application/geo+json",
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.GPKG: "application/geopackage+sqlite3",
}

#: File name (without extension) of each layer's download, and the GeoJSON ``name`` member.
FILE_STEMS: Mapping[str, str] = {
    "defibrillators": "desfibriladores",
    "ceas": "zonas_ceas",
    "entities": "entidades",
    "cohousing": "cohousing",
    "population": "poblacion",
}

#: Layers the API publishes (downloads, OGC API). The population units are left out, as they are
#: from ``/api/{layer}``: resident counts per address point are for planners (CLI export).
PUBLISHED_LAYERS: tuple[str, ...] = ("defibrillators", "ceas", "entities", "cohousing")

#: Fields of a device in the public download (and the OGC API).
PUBLIC_DEVICE_FIELDS: tuple[str, ...] = (
    "id", "name", "location_text", "address", "access", "opening_hours", "indoor", "level",
    "operator_entity_id", "phone", "status", "installed_on", "removed_on", "check_date",
    "is_mobile", "source", "source_id", "tags",
)  # fmt: skip

#: GeoPackage version written (GDAL's ``VERSION`` creation option): one every GDAL since 2.2
#: (Debian 12 has 3.6) and every QGIS reads without a warning.
GPKG_VERSION = "1.2"

CSV_ENCODING = "utf-8-sig"
COORDINATE_DECIMALS = 7


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_layer` wrote: how many records, where, in which format."""

    count: int
    path: Path
    fmt: ExportFormat


# --- checks -----------------------------------------------------------------------------------


def check_layer(name: str) -> LayerSchema:
    """The schema of layer ``name``.

    Raises
    ------
    InputError
        ``unknown_layer``, listing the valid names.
    """
    schema = LAYERS_BY_NAME.get(name)
    if schema is None:
        valid = ", ".join(LAYERS_BY_NAME)
        msg = f"Capa {name!r} desconocida; las capas son: {valid}."
        raise InputError(msg, code="unknown_layer", field="layer")
    return schema


def check_format(fmt: str) -> ExportFormat:
    """``fmt`` as an :class:`ExportFormat`.

    Raises
    ------
    InputError
        ``unknown_format``, listing the valid ones.
    """
    try:
        return ExportFormat(fmt)
    except ValueError:
        valid = ", ".join(f.value for f in ExportFormat)
        msg = f"Formato {fmt!r} desconocido; los formatos son: {valid}."
        raise InputError(msg, code="unknown_format", field="format") from None


# --- what is exported -------------------------------------------------------------------------


def licence_of(source: str, data_licence: str) -> str:
    """The licence a record is published under, from where it came.

    Imported records keep their register's licence (:data:`geo.io.importers.LICENCES`: ODbL for
    OpenStreetMap…); ``data_licence`` is the licence of the city's own records (settings
    ``data_licence``).
    """
    if source == "synthetic":
        return "CC0-1.0 (datos de muestra sintéticos, no son el registro oficial)"
    if source in LICENCES:
        return LICENCES[source]
    if source.startswith("osm"):
        return LICENCES["osm"]
    return data_licence


#: The field every export adds after the layer's own (see :func:`licence_of`).
LICENCE_FIELD = Field(
    "licence", Kind.TEXT, "Licence the record is published under, from its source.", required=True
)


def published_fields(name: str, *, public_only: bool = True) -> tuple[Field, ...]:
    """The fields of layer ``name``'s export, in its columns' order (``geometry`` aside).

    The same selection as :func:`export_frame`: of the defibrillators, with ``public_only``,
    only :data:`PUBLIC_DEVICE_FIELDS`; then :data:`LICENCE_FIELD`. The OGC API describes its
    collections with these (JSON Schema), so what it declares is what it serves.

    Raises
    ------
    InputError
        ``unknown_layer``.
    """
    schema = check_layer(name)
    fields = schema.fields
    if schema is DEFIBRILLATORS and public_only:
        fields = tuple(f for f in fields if f.name in PUBLIC_DEVICE_FIELDS)
    return (*fields, LICENCE_FIELD)


def export_frame(
    store: Store,
    name: str,
    *,
    public_only: bool = True,
    data_licence: str,
    bbox: tuple[float, float, float, float] | None = None,
    ids: Sequence[str] | None = None,
) -> gpd.GeoDataFrame:
    """The records of layer ``name`` as exported: see the module's docstring.

    Parameters
    ----------
    bbox, ids
        Only records whose bounding box intersects ``bbox`` (``min_lon, min_lat, max_lon,
        max_lat`` in EPSG:4326), or with these ids: filtered in the database, as by
        :meth:`~geo.io.store.Store.query_layer`.

    Returns
    -------
    geopandas.GeoDataFrame
        The exported fields, ``licence`` and ``geometry`` (EPSG:4326), ordered by id.

    Raises
    ------
    InputError
        ``unknown_layer``.
    """
    schema = check_layer(name)
    if schema is DEFIBRILLATORS and public_only:
        where = {"verification": ["verified"]}
        frame = store.query_layer(name, where=where, bbox=bbox, ids=ids)
        frame = frame[[*PUBLIC_DEVICE_FIELDS, "geometry"]]
    else:
        frame = store.query_layer(name, bbox=bbox, ids=ids)
    frame = frame.copy()
    frame.insert(
        len(frame.columns) - 1,
        "licence",
        pd.Series([licence_of(s, data_licence) for s in frame["source"]], dtype="object"),
    )
    return frame


def records_notice(frame: pd.DataFrame) -> str:
    """How many of ``frame``'s records are synthetic sample data (Spanish)."""
    synthetic = int((frame["source"] == "synthetic").sum()) if len(frame) else 0
    if synthetic == 0:
        return "La procedencia de cada registro figura en su campo source."
    return (
        f"{synthetic} de {len(frame)} registros son datos de muestra sintéticos "
        "(source = synthetic): no son el registro oficial de la ciudad."
    )


def _licences(frame: pd.DataFrame) -> dict[str, str]:
    pairs = zip(frame["source"], frame["licence"], strict=True)
    return dict(sorted(set(pairs)))


# --- writers ----------------------------------------------------------------------------------


def geojson_document(frame: gpd.GeoDataFrame, name: str) -> dict[str, Any]:
    """An export frame as an RFC 7946 FeatureCollection with ``name``, notice and licences."""
    return feature_collection(
        frame,
        name=FILE_STEMS.get(name, name),
        notice=records_notice(frame),
        licence_by_source=_licences(frame),
    )


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(plain(value), ensure_ascii=False, sort_keys=True)


def _tag_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c == "tags"]


def csv_bytes(frame: gpd.GeoDataFrame, schema: LayerSchema) -> bytes:
    """An export frame as CSV (see the module's docstring), UTF-8 with a BOM."""
    table = pd.DataFrame(frame.drop(columns="geometry"))
    for column in _tag_columns(table):
        table[column] = table[column].map(_json_text)
    geometry = frame.geometry
    if schema.geometry_types == ("Point",):
        table["lon"] = geometry.x.round(COORDINATE_DECIMALS)
        table["lat"] = geometry.y.round(COORDINATE_DECIMALS)
    else:
        table["geometry"] = shapely.to_wkt(
            geometry.values, rounding_precision=COORDINATE_DECIMALS, trim=True
        )
    # Text a spreadsheet would run as a formula gets a leading ' (see geo.core.outputs.csv_safe).
    return csv_safe(table).to_csv(index=False, lineterminator="\n").encode(CSV_ENCODING)


def _kinds(schema: LayerSchema) -> dict[str, Kind]:
    return {f.name: f.kind for f in schema.fields}


def write_gpkg(frame: gpd.GeoDataFrame, schema: LayerSchema, path: Path) -> None:
    """Write an export frame as a one-table GeoPackage at ``path`` (which must not exist)."""
    kinds = _kinds(schema)
    names = [c for c in frame.columns if c != "geometry"]
    data: list[np.ndarray[Any, Any]] = []
    masks: list[np.ndarray[Any, Any] | None] = []
    for name in names:
        values = list(frame[name])
        missing = np.array([v is None or v is pd.NA for v in values], dtype=bool)
        kind = kinds.get(name, Kind.TEXT)
        if kind is Kind.DATE:
            column = np.array(
                [None if m else v.isoformat() for v, m in zip(values, missing, strict=True)],
                dtype="datetime64[D]",
            )
        elif kind is Kind.BOOLEAN:
            column = np.array(
                [bool(v) if not m else False for v, m in zip(values, missing, strict=True)]
            )
        elif kind is Kind.INTEGER:
            column = np.array([0 if m else int(v) for v, m in zip(values, missing, strict=True)],
                              dtype=np.int64)  # fmt: skip
        elif kind is Kind.TAGS:
            column = np.array([_json_text(v) for v in values], dtype=object)
        else:
            column = np.array(values, dtype=object)
        data.append(column)
        masks.append(missing if missing.any() else None)
    geometry_type = "Point" if schema.geometry_types == ("Point",) else "MultiPolygon"
    write_raw(
        str(path),
        shapely.to_wkb(frame.geometry.values),
        data,
        names,
        field_mask=masks,
        layer=schema.name,
        driver="GPKG",
        geometry_type=geometry_type,
        crs=WGS84,
        promote_to_multi=geometry_type == "MultiPolygon",
        layer_options={"IDENTIFIER": schema.title, "DESCRIPTION": records_notice(frame)},
        dataset_options={"VERSION": GPKG_VERSION},
    )


# --- entry points -----------------------------------------------------------------------------


def export_bytes(
    store: Store,
    name: str,
    fmt: ExportFormat | str,
    *,
    public_only: bool = True,
    data_licence: str,
) -> tuple[bytes, int]:
    """Layer ``name`` in format ``fmt``, in memory (for the API): the bytes and the record count.

    Raises
    ------
    InputError
        ``unknown_layer`` or ``unknown_format``.
    """
    schema = check_layer(name)
    export_format = check_format(fmt)
    frame = export_frame(store, name, public_only=public_only, data_licence=data_licence)
    if export_format is ExportFormat.GEOJSON:
        text = json.dumps(geojson_document(frame, name), ensure_ascii=False)
        return text.encode("utf-8"), len(frame)
    if export_format is ExportFormat.CSV:
        return csv_bytes(frame, schema), len(frame)
    with tempfile.TemporaryDirectory(prefix="cardiomapa-export-") as folder:
        path = Path(folder) / f"{FILE_STEMS[name]}.gpkg"
        write_gpkg(frame, schema, path)
        return path.read_bytes(), len(frame)


def export_layer(
    store: Store,
    name: str,
    *,
    fmt: ExportFormat | str,
    out: Path,
    public_only: bool = True,
    data_licence: str,
) -> ExportResult:
    """Write layer ``name`` to ``out`` in format ``fmt``, atomically; ``out`` is replaced.

    Parameters
    ----------
    public_only
        Defibrillators only: export what the public download holds (verified devices, public
        fields). ``False``: every device and field (staff export). Private notes never.
    data_licence
        Licence of the city's own records, stated per record and in the GeoJSON.

    Raises
    ------
    InputError
        ``unknown_layer``, ``unknown_format``, or ``missing_folder`` (``out``'s folder does not
        exist).
    """
    schema = check_layer(name)
    export_format = check_format(fmt)
    folder = out.parent
    if not folder.is_dir():
        msg = f"La carpeta {folder} no existe; créela antes de exportar."
        raise InputError(msg, code="missing_folder", field="out")
    frame = export_frame(store, name, public_only=public_only, data_licence=data_licence)
    # A name of our own in the same folder: renaming over ``out`` is then atomic.
    temporary = folder / f".{out.name}.{uuid.uuid4().hex[:8]}.{export_format.value}"
    try:
        if export_format is ExportFormat.GPKG:
            write_gpkg(frame, schema, temporary)
        elif export_format is ExportFormat.CSV:
            temporary.write_bytes(csv_bytes(frame, schema))
        else:
            document = geojson_document(frame, name)
            temporary.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
        os.replace(temporary, out)
    finally:
        temporary.unlink(missing_ok=True)
    return ExportResult(count=len(frame), path=out, fmt=export_format)
